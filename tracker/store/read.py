"""Reading a results store: the queries the exports, search and the review UI use."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracker.errors import InputError
from tracker.geometry import iou_matrix, xywh_to_xyxy
from tracker.store.codec import decode_image
from tracker.store.schema import CAMERA_SEPARATOR, Database
from tracker.types import CameraInfo, Crop, Tracklet

SORT_KEYS = ("global_id", "first_time", "last_time", "duration", "num_cameras", "num_tracklets", "label")
"""Columns :meth:`Queries.identities` may sort by."""


@dataclass(frozen=True)
class Identity:
    """One global identity with its cached statistics (a row of the ``identities`` table)."""

    global_id: int
    label: str
    cameras: tuple[str, ...]  # in camera (store) order
    first_time: float
    last_time: float
    num_tracklets: int

    @property
    def num_cameras(self) -> int:
        return len(self.cameras)

    @property
    def duration(self) -> float:
        return self.last_time - self.first_time


@dataclass(frozen=True)
class TrackletInfo:
    """A tracklet's summary row (no per-frame arrays): what the UI lists and search ranks."""

    camera: str
    track_id: int
    global_id: int
    first_frame: int
    last_frame: int
    first_time: float
    last_time: float
    num_frames: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.camera, self.track_id)


@dataclass(frozen=True)
class EvidenceRow:
    """Why two tracklets are in one identity: ``reason`` in words, ``distance`` and its ``terms``."""

    id: int
    global_id: int
    a: tuple[str, int]
    b: tuple[str, int]
    distance: float | None
    terms: dict[str, float]
    reason: str


@dataclass(frozen=True)
class Edit:
    """One correction from the edit log: ``action`` merge | split | label (made in the Corrections page or
    :class:`~tracker.store.ResultsStore` directly), answer (a review answer) or revert (an older edit taken
    back); ``params`` as the action recorded them."""

    id: int
    time: str
    action: str
    params: dict[str, Any]
    undone: bool


@dataclass(frozen=True)
class Question:
    """A review question about two tracklets ``a`` and ``b`` (``(camera, track_id)``): are they one person?

    ``kind``: join (the association joined them close to its threshold), near_miss (it left them apart
    although they were close), fit (``a`` fits ``b``'s identity almost as well as its own), one_camera
    (``a``'s identity is seen by one camera only and ``b``'s is a plausible partner elsewhere).
    ``distance``: the association's average-linkage distance of that decision (None when unknown);
    ``size``: boxes that change identity if the decision is wrong (0: taken from the identities' sizes);
    ``status``: open, answered or dropped (the decision changed under it); ``edit_id``: the answer's edit;
    ``terms``: what the queue orders by besides the distance (``gap`` in seconds, ``speed`` in m/s on the
    ground when calibrated, see :func:`tracker.review.queue.pair_terms`).
    """

    id: int
    kind: str
    a: tuple[str, int]
    b: tuple[str, int]
    distance: float | None
    size: int
    reason: str
    status: str
    edit_id: int | None
    terms: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CropChoice:
    """A stored crop picked for display: the crop, the fraction of its box that other people's boxes cover
    in that frame (0: it shows one person), and whether its box touches the image border (cut off)."""

    crop: Crop
    covered: float
    cut: bool


@dataclass(frozen=True)
class FrameBoxes:
    """The tracked boxes of one camera at one moment: ``frame`` (1-based) and parallel arrays.

    ``xywh`` (N, 4) float32, ``track_ids`` / ``global_ids`` (N,) int64, ``conf`` (N,) float32.
    ``frame`` is the camera's frame at the asked time, ``None`` when the camera was not recording then
    (before its first or after its last frame); ``box_frame`` the processed frame the boxes come from
    (the nearest one within the frame stride), ``None`` when there are no boxes near that time.
    """

    camera: str
    frame: int | None
    box_frame: int | None
    xywh: np.ndarray
    track_ids: np.ndarray
    global_ids: np.ndarray
    conf: np.ndarray


def _crop(
    frame: int, x1: float, y1: float, x2: float, y2: float, score: float, quality: float, jpeg: bytes
) -> Crop:
    return Crop(frame, np.array([x1, y1, x2, y2], np.float32), score, quality, decode_image(jpeg))


COVERED_MAX = 0.15
"""A crop whose box other people's boxes cover by more than this fraction may show two people."""


def crop_rank(quality: np.ndarray, covered: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """(N,) float64 display score of crops: their quality, down-weighted steeply by the fraction of the box
    other people cover (a crop showing two people is a poor picture of either) and halved for a box cut off
    by the image border (head or feet missing)."""
    quality, covered = np.asarray(quality, np.float64), np.asarray(covered, np.float64)
    return quality * (1.0 - np.clip(covered, 0, 1)) ** 3 * np.where(np.asarray(cut, bool), 0.5, 1.0)


def spread_pick(frames: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    """Indices of up to ``n`` items spread over time: the frames' span cut into ``n`` equal parts, the best
    ``score`` in each part, then the best of the rest where a part is empty; returned in frame order."""
    frames = np.asarray(frames, np.int64)
    if len(frames) <= n:
        return np.argsort(frames, kind="stable")
    edges = np.linspace(frames.min(), frames.max() + 1, n + 1)
    part = np.clip(np.searchsorted(edges, frames, "right") - 1, 0, n - 1)
    chosen = []
    for k in range(n):
        idx = np.flatnonzero(part == k)
        if len(idx):
            chosen.append(int(idx[np.argmax(score[idx])]))
    rest = [int(i) for i in np.argsort(-score, kind="stable") if int(i) not in chosen]
    chosen += rest[: n - len(chosen)]
    return np.array(sorted(chosen, key=lambda i: (frames[i], i)), np.int64)


class Queries(Database):
    """The read side of a results store."""

    def meta(self) -> dict:
        """The run.json dict the pipeline stored (``{}`` when none)."""
        row = self._conn.execute("SELECT value FROM run WHERE key = 'meta'").fetchone()
        return json.loads(row[0]) if row else {}

    def associated(self) -> bool:
        """Whether association gave the tracklets their global ids in this run."""
        row = self._conn.execute("SELECT value FROM run WHERE key = 'associated'").fetchone()
        return bool(row and json.loads(row[0]))

    def uses_global_ids(self) -> bool:
        """Whether exports label boxes with global ids (association ran or a correction is in effect)
        rather than per-camera track ids."""
        if self.associated():
            return True
        return self._conn.execute("SELECT 1 FROM edit_log WHERE undone = 0 LIMIT 1").fetchone() is not None

    def cameras(self) -> list[CameraInfo]:
        """The cameras in pipeline order."""
        out = []
        for row in self._conn.execute(
            "SELECT name, source, width, height, fps, time_offset, frames_total, "
            "frames_processed, homography FROM cameras ORDER BY idx"
        ):
            h = None if row[8] is None else np.asarray(json.loads(row[8]), np.float64)
            out.append(CameraInfo(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], h))
        return out

    def counts(self) -> dict[str, int]:
        """Numbers of cameras, tracklets, identities, track boxes, crops and evidence rows (keys ``cameras``,
        ``tracklets``, ``identities``, ``boxes``, ``crops``, ``evidence``)."""
        tables = {
            "cameras": "cameras",
            "tracklets": "tracklets",
            "identities": "identities",
            "boxes": "track_boxes",
            "crops": "crops",
            "evidence": "evidence",
        }
        return {k: self._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for k, t in tables.items()}

    def time_range(self) -> tuple[float, float]:
        """First and last common-clock time with a tracked box ((0, 0) when there are none)."""
        lo, hi = self._conn.execute("SELECT MIN(first_time), MAX(last_time) FROM tracklets").fetchone()
        return (0.0, 0.0) if lo is None else (float(lo), float(hi))

    def mot_rows(self, camera: str) -> np.ndarray:
        """(N, 7) float64 rows ``frame, id, x, y, w, h, conf`` of one camera sorted by frame then id.

        ``id`` is the global id when :meth:`uses_global_ids`, else the per-camera track id.
        """
        col = "global_id" if self.uses_global_ids() else "track_id"
        rows = self._conn.execute(
            f"SELECT frame, {col}, x, y, w, h, conf FROM track_boxes WHERE camera = ? ORDER BY frame, {col}",
            (camera,),
        ).fetchall()
        return np.asarray(rows, np.float64).reshape(-1, 7)

    _IDENTITY_COLS = "global_id, label, cameras, first_time, last_time, num_tracklets"

    @staticmethod
    def _identity(row: tuple) -> Identity:
        gid, label, cams, first, last, n = row
        return Identity(
            gid,
            label,
            tuple(c for c in cams.split(CAMERA_SEPARATOR) if c),
            float(first or 0.0),
            float(last or 0.0),
            n,
        )

    @staticmethod
    def _identity_filter(
        camera: str | None, min_cameras: int | None, min_duration: float | None, text: str | None
    ) -> tuple[str, list]:
        clauses, args = [], []
        if camera:
            clauses.append("global_id IN (SELECT global_id FROM tracklets WHERE camera = ?)")
            args.append(camera)
        if min_cameras:
            clauses.append("num_cameras >= ?")
            args.append(int(min_cameras))
        if min_duration:
            clauses.append("duration >= ?")
            args.append(float(min_duration))
        if text:
            clauses.append("(label LIKE ? ESCAPE '\\' OR CAST(global_id AS TEXT) = ?)")
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args += [f"%{escaped}%", text.strip()]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def identities(
        self,
        sort: str = "global_id",
        descending: bool = False,
        camera: str | None = None,
        min_cameras: int | None = None,
        min_duration: float | None = None,
        text: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Identity]:
        """A page of identities, filtered and sorted in SQL.

        Filters: seen by ``camera``; at least ``min_cameras`` cameras; at least ``min_duration`` seconds
        from first to last sighting; ``text`` in the label or equal to the global id. ``sort`` is one of
        :data:`SORT_KEYS` (ties by global id).
        """
        if sort not in SORT_KEYS:
            raise InputError(f"sort '{sort}': not one of {', '.join(SORT_KEYS)}")
        where, args = self._identity_filter(camera, min_cameras, min_duration, text)
        direction = "DESC" if descending else "ASC"
        sql = f"SELECT {self._IDENTITY_COLS} FROM identities{where} ORDER BY {sort} {direction}, global_id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [int(limit), int(offset)]
        return [self._identity(r) for r in self._conn.execute(sql, args)]

    def count_identities(
        self,
        camera: str | None = None,
        min_cameras: int | None = None,
        min_duration: float | None = None,
        text: str | None = None,
    ) -> int:
        """How many identities pass the same filters as :meth:`identities`."""
        where, args = self._identity_filter(camera, min_cameras, min_duration, text)
        return self._conn.execute(f"SELECT COUNT(*) FROM identities{where}", args).fetchone()[0]

    def identity(self, global_id: int) -> Identity | None:
        row = self._conn.execute(
            f"SELECT {self._IDENTITY_COLS} FROM identities WHERE global_id = ?", (int(global_id),)
        ).fetchone()
        return None if row is None else self._identity(row)

    _TRACKLET_COLS = "camera, track_id, global_id, first_frame, last_frame, first_time, last_time, num_frames"

    def tracklet_infos(self, global_id: int | None = None) -> list[TrackletInfo]:
        """Summary rows of all tracklets, or of one identity's, ordered by first time then camera."""
        where, args = ("WHERE global_id = ?", [int(global_id)]) if global_id is not None else ("", [])
        rows = self._conn.execute(
            f"SELECT {self._TRACKLET_COLS} FROM tracklets {where} ORDER BY first_time, camera, track_id", args
        )
        return [TrackletInfo(*r) for r in rows]

    def tracklet_info(self, camera: str, track_id: int) -> TrackletInfo | None:
        row = self._conn.execute(
            f"SELECT {self._TRACKLET_COLS} FROM tracklets WHERE camera = ? AND track_id = ?",
            (camera, int(track_id)),
        ).fetchone()
        return None if row is None else TrackletInfo(*row)

    def crops(self, camera: str, track_id: int) -> list[Crop]:
        """The stored crops of one tracklet in frame order (images decoded from JPEG, so lossy)."""
        rows = self._conn.execute(
            "SELECT frame, x1, y1, x2, y2, score, quality, jpeg FROM crops WHERE "
            "camera = ? AND track_id = ? ORDER BY frame, id",
            (camera, int(track_id)),
        )
        return [_crop(*r) for r in rows]

    def best_crops(self, global_ids: Sequence[int]) -> dict[int, list[tuple[str, np.ndarray]]]:
        """For each identity, its best crop in each camera it was seen by (camera order), the best being the
        one that pictures one whole person (:func:`crop_rank`: quality, not covered by other people's boxes,
        not cut off by the border): ``{global_id: [(camera, image BGR uint8), ...]}``."""
        gids = [int(g) for g in global_ids]
        if not gids:
            return {}
        marks = ",".join("?" * len(gids))
        rows = self._conn.execute(
            "SELECT c.id, t.global_id, t.camera, c.track_id, c.frame, c.x1, c.y1, c.x2, c.y2, c.quality "
            "FROM crops c JOIN tracklets t ON t.camera = c.camera AND t.track_id = c.track_id "
            f"JOIN cameras k ON k.name = t.camera WHERE t.global_id IN ({marks}) "
            "ORDER BY t.global_id, k.idx, c.id",
            gids,
        ).fetchall()
        best: dict[tuple[int, str], tuple[float, int]] = {}
        by_track: dict[tuple[str, int], list[tuple]] = {}
        for r in rows:
            by_track.setdefault((r[2], r[3]), []).append(r)
        for (cam, tid), group in by_track.items():
            boxes = np.asarray([g[5:9] for g in group], np.float64)
            covered = self._covered(cam, tid, [g[4] for g in group], boxes)
            cut = _cut(boxes, *self._camera_size(cam))
            score = crop_rank([g[9] for g in group], covered, cut)
            for g, sc in zip(group, score.tolist()):
                key = (g[1], cam)
                if key not in best or sc > best[key][0]:
                    best[key] = (sc, g[0])
        order = {c.name: i for i, c in enumerate(self.cameras())}
        chosen = {k: best[k][1] for k in sorted(best, key=lambda k: (k[0], order.get(k[1], 0)))}
        if not chosen:
            return {}
        ids = list(chosen.values())
        marks = ",".join("?" * len(ids))
        jpegs = dict(self._conn.execute(f"SELECT id, jpeg FROM crops WHERE id IN ({marks})", ids).fetchall())
        out: dict[int, list[tuple[str, np.ndarray]]] = {}
        for (gid, cam), cid in chosen.items():
            out.setdefault(gid, []).append((cam, decode_image(jpegs[cid])))
        return out

    def boxes_at(self, time: float, tolerance: int | None = None) -> list[FrameBoxes]:
        """Every camera's tracked boxes at one common-clock ``time``.

        The camera's frame is ``round((time - offset) * fps) + 1``; boxes come from the nearest frame with
        boxes at most ``tolerance`` frames away (default: half the run's frame stride, rounded down, so
        skipped frames show the boxes of the processed frame beside them).
        """
        if tolerance is None:
            stride = int(self.meta().get("config", {}).get("video", {}).get("stride", 1) or 1)
            tolerance = stride // 2
        out = []
        for cam in self.cameras():
            frame = int(round((time - cam.offset) * cam.fps)) + 1
            last = cam.frames_total or cam.frames_processed
            if frame < 1 or (last and frame > last):
                empty = np.zeros(0, np.int64)
                out.append(
                    FrameBoxes(
                        cam.name,
                        None,
                        None,
                        np.zeros((0, 4), np.float32),
                        empty,
                        empty,
                        np.zeros(0, np.float32),
                    )
                )
                continue
            near = self._conn.execute(
                "SELECT frame FROM track_boxes WHERE camera = ? AND frame BETWEEN ? AND ? "
                "ORDER BY ABS(frame - ?), frame LIMIT 1",
                (cam.name, frame - tolerance, frame + tolerance, frame),
            ).fetchone()
            rows = (
                []
                if near is None
                else self._conn.execute(
                    "SELECT x, y, w, h, track_id, global_id, conf FROM track_boxes "
                    "WHERE camera = ? AND frame = ? ORDER BY global_id, track_id",
                    (cam.name, near[0]),
                ).fetchall()
            )
            arr = np.asarray(rows, np.float64).reshape(-1, 7)
            out.append(
                FrameBoxes(
                    cam.name,
                    frame,
                    None if near is None else int(near[0]),
                    arr[:, :4].astype(np.float32),
                    arr[:, 4].astype(np.int64),
                    arr[:, 5].astype(np.int64),
                    arr[:, 6].astype(np.float32),
                )
            )
        return out

    _EVIDENCE_COLS = "id, global_id, a_camera, a_track, b_camera, b_track, distance, terms, reason"

    def evidence(self, global_id: int, merge_order: bool = False) -> list[EvidenceRow]:
        """The evidence rows of one identity, closest distances first (user merges last), or in the order the
        merges were made (``merge_order``)."""
        order = "id" if merge_order else "distance IS NULL, distance, id"
        rows = self._conn.execute(
            f"SELECT {self._EVIDENCE_COLS} FROM evidence WHERE global_id = ? ORDER BY {order}",
            (int(global_id),),
        )
        return [
            EvidenceRow(i, g, (ac, at), (bc, bt), d, json.loads(terms), reason)
            for i, g, ac, at, bc, bt, d, terms, reason in rows
        ]

    def embedding_batches(self, size: int = 8192) -> Iterator[tuple[list[TrackletInfo], np.ndarray]]:
        """The tracklets that have an embedding with their (n, D) float32 matrix, ``size`` at a time
        (so a search over 100,000 tracklets never holds them all)."""
        cur = self._conn.execute(
            f"SELECT {self._TRACKLET_COLS}, embedding FROM tracklets "
            "WHERE embedding IS NOT NULL ORDER BY camera, track_id"
        )
        while rows := cur.fetchmany(size):
            vecs = [np.frombuffer(r[-1], np.float32) for r in rows]
            dims = {len(v) for v in vecs}
            if len(dims) > 1:
                raise InputError(f"{self.path}: tracklet embeddings have different sizes {sorted(dims)}")
            yield [TrackletInfo(*r[:-1]) for r in rows], np.stack(vecs)

    def embeddings(self) -> tuple[list[TrackletInfo], np.ndarray]:
        """All tracklets that have an embedding and their (N, D) float32 matrix ((0, 0) when none)."""
        infos, mats = [], []
        for i, m in self.embedding_batches():
            infos += i
            mats.append(m)
        if len({m.shape[1] for m in mats}) > 1:
            raise InputError(f"{self.path}: tracklet embeddings have different sizes")
        return infos, (np.concatenate(mats) if mats else np.zeros((0, 0), np.float32))

    def tracklets(self, keys: Sequence[tuple[str, int]] | None = None, crops: bool = True) -> list[Tracklet]:
        """Tracklets rebuilt with their per-frame arrays, embeddings, current global ids and (``crops``)
        their crops: all of them in camera order then track id, or those of ``keys`` in that order (keys
        not in the store are left out)."""
        if keys is not None:
            return self._some_tracklets(keys, crops)
        dets: dict[tuple[str, int], list] = {}
        for cam, tid, *row in self._conn.execute(
            "SELECT camera, track_id, frame, time, x, y, w, h, conf "
            "FROM track_boxes ORDER BY camera, track_id, frame"
        ):
            dets.setdefault((cam, tid), []).append(row)
        crop_rows: dict[tuple[str, int], list[Crop]] = {}
        if crops:
            for cam, tid, *row in self._conn.execute(
                "SELECT camera, track_id, frame, x1, y1, x2, y2, score, quality, jpeg FROM crops "
                "ORDER BY camera, track_id, frame, id"
            ):
                crop_rows.setdefault((cam, tid), []).append(_crop(*row))
        rows = self._conn.execute(
            "SELECT t.camera, t.track_id, t.global_id, t.embedding FROM tracklets t "
            "JOIN cameras c ON c.name = t.camera ORDER BY c.idx, t.track_id"
        ).fetchall()
        return [self._tracklet(row, dets.get(row[:2], []), crop_rows.get(row[:2], [])) for row in rows]

    def _some_tracklets(self, keys: Sequence[tuple[str, int]], crops: bool) -> list[Tracklet]:
        order = {c.name: i for i, c in enumerate(self.cameras())}
        out = []
        wanted = sorted({(str(c), int(t)) for c, t in keys}, key=lambda k: (order.get(k[0], -1), k[1]))
        for cam, tid in wanted:
            row = self._conn.execute(
                "SELECT camera, track_id, global_id, embedding FROM tracklets "
                "WHERE camera = ? AND track_id = ?",
                (cam, tid),
            ).fetchone()
            if row is None:
                continue
            det = self._conn.execute(
                "SELECT frame, time, x, y, w, h, conf FROM track_boxes WHERE camera = ? AND track_id = ? "
                "ORDER BY frame",
                (cam, tid),
            ).fetchall()
            out.append(self._tracklet(row, det, self.crops(cam, tid) if crops else []))
        return out

    @staticmethod
    def _tracklet(row: tuple, det_rows: list, crops: list[Crop]) -> Tracklet:
        cam, tid, gid, emb = row
        det = np.asarray(det_rows, np.float64).reshape(-1, 7)
        boxes = xywh_to_xyxy(det[:, 2:6])
        emb = None if emb is None else np.frombuffer(emb, np.float32).copy()
        return Tracklet(cam, tid, det[:, 0].astype(np.int64), det[:, 1], boxes, det[:, 6], crops, emb, gid)

    def run_value(self, key: str, default: Any = None) -> Any:
        """A value of the ``run`` key/value table (JSON-decoded), ``default`` when absent."""
        row = self._conn.execute("SELECT value FROM run WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def global_ids_of(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """``{(camera, track_id): global_id}`` of the given tracklets (keys not in the store are left out)."""
        out = {}
        for cam, tid in keys:
            row = self._conn.execute(
                "SELECT global_id FROM tracklets WHERE camera = ? AND track_id = ?", (str(cam), int(tid))
            ).fetchone()
            if row is not None:
                out[(str(cam), int(tid))] = int(row[0])
        return out

    def identity_keys(self, global_ids: Sequence[int]) -> dict[int, list[tuple[str, int]]]:
        """``{global_id: [(camera, track_id), ...]}``: the tracklets of each identity, by first time."""
        out: dict[int, list[tuple[str, int]]] = {int(g): [] for g in global_ids}
        for g in out:
            out[g] = [
                (c, t)
                for c, t in self._conn.execute(
                    "SELECT camera, track_id FROM tracklets WHERE global_id = ? "
                    "ORDER BY first_time, camera, track_id",
                    (g,),
                )
            ]
        return out

    def identity_embeddings(self, global_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """``{global_id: (n, D) float32}``: the embeddings of each identity's tracklets that have one."""
        out: dict[int, list[np.ndarray]] = {}
        gids = sorted({int(g) for g in global_ids})
        for start in range(0, len(gids), 500):
            part = gids[start : start + 500]
            for g, emb in self._conn.execute(
                f"SELECT global_id, embedding FROM tracklets WHERE embedding IS NOT NULL AND global_id IN "
                f"({','.join('?' * len(part))}) ORDER BY camera, track_id",
                part,
            ):
                out.setdefault(int(g), []).append(np.frombuffer(emb, np.float32))
        return {g: np.stack(v) for g, v in out.items()}

    def identity_boxes(self) -> dict[int, int]:
        """``{global_id: number of track boxes}`` of every identity (its size in the MOT files)."""
        return {
            int(g): int(n)
            for g, n in self._conn.execute(
                "SELECT global_id, SUM(num_frames) FROM tracklets GROUP BY global_id"
            )
        }

    def samples(self, camera: str, track_id: int, n: int = 5) -> list[list[float]]:
        """Up to ``n`` ``[frame, x, y, w, h]`` spread evenly over a tracklet (its track boxes, MOT pixel
        convention: top-left corner and size), on frames with a detection where it has any."""
        rows = self._conn.execute(
            "SELECT frame, x, y, w, h, conf FROM track_boxes WHERE camera = ? AND track_id = ? "
            "ORDER BY frame",
            (camera, int(track_id)),
        ).fetchall()
        detected = [r for r in rows if r[5] > 0] or rows
        if not detected:
            return []
        pick = np.unique(np.round(np.linspace(0, len(detected) - 1, min(n, len(detected)))).astype(int))
        return [[int(detected[i][0])] + [round(float(v), 2) for v in detected[i][1:5]] for i in pick.tolist()]

    def _covered(self, camera: str, track_id: int, frames: Sequence[int], boxes: np.ndarray) -> np.ndarray:
        """(N,) fraction of each xyxy box (of ``track_id`` at ``frames``) covered by another track's box."""
        out = np.zeros(len(frames))
        if not len(frames):
            return out
        marks = ",".join("?" * len(set(frames)))
        others: dict[int, list] = {}
        for f, x, y, w, h in self._conn.execute(
            "SELECT frame, x, y, w, h FROM track_boxes WHERE camera = ? AND track_id != ? "
            f"AND frame IN ({marks})",
            (camera, int(track_id), *sorted({int(f) for f in frames})),
        ):
            others.setdefault(int(f), []).append((x, y, x + w, y + h))
        for k, (f, box) in enumerate(zip(frames, boxes)):
            near = others.get(int(f))
            if not near:
                continue
            other = np.asarray(near, np.float64)
            iou = iou_matrix(box[None], other)[0].astype(np.float64)
            area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-6)
            area_o = (other[:, 2] - other[:, 0]) * (other[:, 3] - other[:, 1])
            inter = iou * (area + area_o) / (1.0 + iou)  # from IoU = I / (A + B - I)
            out[k] = float(np.max(inter) / area)
        return out

    def _camera_size(self, camera: str) -> tuple[int, int]:
        row = self._conn.execute("SELECT width, height FROM cameras WHERE name = ?", (camera,)).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def crop_choices(self, camera: str, track_id: int, n: int = 6) -> list[CropChoice]:
        """Up to ``n`` of a tracklet's crops that picture one whole person, spread over the track, in frame
        order: crops covered by other people's boxes or cut off by the image border are passed over while
        better ones exist (see :func:`crop_rank`)."""
        rows = self._conn.execute(
            "SELECT id, frame, x1, y1, x2, y2, score, quality FROM crops WHERE camera = ? AND track_id = ? "
            "ORDER BY frame, id",
            (camera, int(track_id)),
        ).fetchall()
        if not rows:
            return []
        arr = np.asarray([r[1:] for r in rows], np.float64)
        frames, boxes = arr[:, 0].astype(np.int64), arr[:, 1:5]
        covered = self._covered(camera, track_id, frames.tolist(), boxes)
        width, height = self._camera_size(camera)
        cut = _cut(boxes, width, height)
        score = crop_rank(arr[:, 6], covered, cut)
        good = np.flatnonzero((covered <= COVERED_MAX) & ~cut)
        enough = len(good) >= min(n, len(rows))
        pool = good if enough else np.argsort(-score, kind="stable")[: max(n, len(good))]
        pick = pool[spread_pick(frames[pool], score[pool], n)]
        ids = [rows[i][0] for i in pick.tolist()]
        marks = ",".join("?" * len(ids))
        jpegs = dict(self._conn.execute(f"SELECT id, jpeg FROM crops WHERE id IN ({marks})", ids).fetchall())
        return [
            CropChoice(
                _crop(int(frames[i]), *boxes[i].tolist(), rows[i][6], rows[i][7], jpegs[rows[i][0]]),
                float(covered[i]),
                bool(cut[i]),
            )
            for i in pick.tolist()
        ]

    def questions(self, status: str | None = "open") -> list[Question]:
        """The review questions with that status (all when None), by id."""
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self._conn.execute(f"SELECT {self._QUESTION_COLS} FROM questions {where} ORDER BY id", args)
        return [self._question(r) for r in rows]

    def question(self, question_id: int) -> Question | None:
        row = self._conn.execute(
            f"SELECT {self._QUESTION_COLS} FROM questions WHERE id = ?", (int(question_id),)
        ).fetchone()
        return None if row is None else self._question(row)

    def questions_about(self, keys: Sequence[tuple[str, int]]) -> list[Question]:
        """Every question (any status) naming one of these tracklets, by id."""
        ids: set[int] = set()
        for cam, tid in keys:
            ids.update(
                r[0]
                for r in self._conn.execute(
                    "SELECT id FROM questions "
                    "WHERE (a_camera = ? AND a_track = ?) OR (b_camera = ? AND b_track = ?)",
                    (cam, int(tid), cam, int(tid)),
                )
            )
        return [q for q in (self.question(i) for i in sorted(ids)) if q is not None]

    _QUESTION_COLS = (
        "id, kind, a_camera, a_track, b_camera, b_track, distance, size, reason, status, edit_id, terms"
    )

    @staticmethod
    def _question(row: tuple) -> Question:
        qid, kind, ac, at, bc, bt, dist, size, reason, status, edit_id, terms = row
        return Question(
            qid,
            kind,
            (ac, int(at)),
            (bc, int(bt)),
            dist,
            int(size),
            reason,
            status,
            edit_id,
            json.loads(terms),
        )


def _cut(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) whether each xyxy box touches the image border (the person is cut off); False when the
    image size is unknown."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not width or not height:
        return np.zeros(len(boxes), bool)
    return (boxes[:, 0] <= 1) | (boxes[:, 1] <= 1) | (boxes[:, 2] >= width - 1) | (boxes[:, 3] >= height - 1)
