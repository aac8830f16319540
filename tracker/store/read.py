"""Reading a results store: the queries the exports, search and the review UI use."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracker.errors import InputError
from tracker.geometry import xywh_to_xyxy
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
    """One correction from the edit log."""

    id: int
    time: str
    action: str  # merge | split | label
    params: dict[str, Any]
    undone: bool


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
        """For each identity, its best-quality crop in each camera it was seen by (camera order):
        ``{global_id: [(camera, image BGR uint8), ...]}``."""
        gids = [int(g) for g in global_ids]
        if not gids:
            return {}
        marks = ",".join("?" * len(gids))
        rows = self._conn.execute(
            "SELECT c.id, t.global_id, t.camera FROM crops c JOIN tracklets t ON t.camera = c.camera AND "
            f"t.track_id = c.track_id JOIN cameras k ON k.name = t.camera WHERE t.global_id IN ({marks}) "
            "ORDER BY t.global_id, k.idx, c.quality DESC, c.id",
            gids,
        ).fetchall()
        chosen: dict[tuple[int, str], int] = {}
        for cid, gid, cam in rows:
            chosen.setdefault((gid, cam), cid)
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

    def evidence(self, global_id: int) -> list[EvidenceRow]:
        """The evidence rows of one identity, closest distances first (user merges last)."""
        rows = self._conn.execute(
            f"SELECT {self._EVIDENCE_COLS} FROM evidence WHERE global_id = ? "
            "ORDER BY distance IS NULL, distance, id",
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

    def tracklets(self) -> list[Tracklet]:
        """All tracklets rebuilt with their per-frame arrays, crops, embeddings and current global ids,
        in camera order then track id."""
        dets: dict[tuple[str, int], list] = {}
        for cam, tid, *row in self._conn.execute(
            "SELECT camera, track_id, frame, time, x, y, w, h, conf "
            "FROM track_boxes ORDER BY camera, track_id, frame"
        ):
            dets.setdefault((cam, tid), []).append(row)
        crops: dict[tuple[str, int], list[Crop]] = {}
        for cam, tid, *row in self._conn.execute(
            "SELECT camera, track_id, frame, x1, y1, x2, y2, score, quality, jpeg FROM crops "
            "ORDER BY camera, track_id, frame, id"
        ):
            crops.setdefault((cam, tid), []).append(_crop(*row))
        out = []
        for cam, tid, gid, emb in self._conn.execute(
            "SELECT t.camera, t.track_id, t.global_id, t.embedding FROM tracklets t "
            "JOIN cameras c ON c.name = t.camera ORDER BY c.idx, t.track_id"
        ).fetchall():
            det = np.asarray(dets.get((cam, tid), []), np.float64).reshape(-1, 7)
            boxes = xywh_to_xyxy(det[:, 2:6])
            emb = None if emb is None else np.frombuffer(emb, np.float32).copy()
            out.append(
                Tracklet(
                    cam,
                    tid,
                    det[:, 0].astype(np.int64),
                    det[:, 1],
                    boxes,
                    det[:, 6],
                    crops.get((cam, tid), []),
                    emb,
                    gid,
                )
            )
        return out
