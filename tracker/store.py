"""The results store: ``RUN_DIR/results.sqlite``, the one place a run's results live.

Every other output of a run (MOT files, ``identities.csv``, the MTMC file) is an export of this store
(:mod:`tracker.export`), and the review UI reads and corrects it. The pipeline writes it once, in one
transaction, into a temporary file that :func:`tracker.fsutil.atomic_path` renames over the previous
database, so a crashed run leaves the previous results intact::

    with atomic_path(run_dir / "results.sqlite") as tmp:
        with ResultsStore.create(tmp) as store:
            store.write_run(meta=run_meta, cameras=cameras, tracklets=tracklets, evidence=evidence)

Tables (schema version :data:`SCHEMA_VERSION`, kept in ``PRAGMA user_version``):

* ``run``: key/value JSON (``meta`` = the run.json dict, ``associated`` = whether association gave ids).
* ``cameras``: one row a camera in pipeline order (``idx`` 0-based), homography as JSON or NULL.
* ``tracklets``: one row a per-camera track with its global id, span and float32 embedding blob.
* ``crops``: JPEG crops of each tracklet with their box, score and quality.
* ``detections``: one row a tracked box (camera, frame, common-clock time, track id, global id, x, y, w, h,
  conf), indexed on (camera, frame), on global_id and on (camera, track_id).
* ``identities``: one row a global identity with its label and cached statistics (cameras, span, counts)
  so that sorting and filtering thousands of identities happens in SQL.
* ``evidence``: why tracklets were joined (from association, or "merged by user").
* ``edit_log``: corrections (merge, split, label) with what is needed to undo them.

Every tracklet belongs to an identity: tracklets that association left at ``global_id = -1`` get a new
identity of their own, so the review UI can show and correct any run. MOT files use the global ids when
association ran or once a correction has been made (:meth:`ResultsStore.uses_global_ids`), else the
per-camera track ids.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from tracker.errors import InputError
from tracker.fsutil import json_default
from tracker.types import CameraInfo, Crop, Tracklet

SCHEMA_VERSION = 1
"""Version of the table layout below; stored in ``PRAGMA user_version``."""

RECREATE_HINT = "re-create it by running track-cameras again on the same inputs"

_SCHEMA = """
CREATE TABLE run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cameras (
    idx INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, fps REAL NOT NULL, time_offset REAL NOT NULL,
    frames_total INTEGER, frames_processed INTEGER NOT NULL, homography TEXT
);
CREATE TABLE tracklets (
    camera TEXT NOT NULL, track_id INTEGER NOT NULL, global_id INTEGER NOT NULL,
    first_frame INTEGER NOT NULL, last_frame INTEGER NOT NULL, first_time REAL NOT NULL,
    last_time REAL NOT NULL, num_frames INTEGER NOT NULL, embedding BLOB,
    PRIMARY KEY (camera, track_id)
);
CREATE INDEX tracklets_global ON tracklets (global_id);
CREATE TABLE crops (
    id INTEGER PRIMARY KEY, camera TEXT NOT NULL, track_id INTEGER NOT NULL, frame INTEGER NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    score REAL NOT NULL, quality REAL NOT NULL, jpeg BLOB NOT NULL
);
CREATE INDEX crops_tracklet ON crops (camera, track_id);
CREATE TABLE detections (
    camera TEXT NOT NULL, frame INTEGER NOT NULL, time REAL NOT NULL, track_id INTEGER NOT NULL,
    global_id INTEGER NOT NULL, x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,
    conf REAL NOT NULL
);
CREATE TABLE identities (
    global_id INTEGER PRIMARY KEY, label TEXT NOT NULL DEFAULT '', cameras TEXT NOT NULL DEFAULT '',
    num_cameras INTEGER NOT NULL DEFAULT 0, first_time REAL, last_time REAL,
    duration REAL NOT NULL DEFAULT 0, num_tracklets INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX identities_first ON identities (first_time);
CREATE TABLE evidence (
    id INTEGER PRIMARY KEY, global_id INTEGER NOT NULL, a_camera TEXT NOT NULL, a_track INTEGER NOT NULL,
    b_camera TEXT NOT NULL, b_track INTEGER NOT NULL, distance REAL, terms TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX evidence_global ON evidence (global_id);
CREATE TABLE edit_log (
    id INTEGER PRIMARY KEY, time TEXT NOT NULL, action TEXT NOT NULL, params TEXT NOT NULL,
    undo TEXT NOT NULL, undone INTEGER NOT NULL DEFAULT 0
);
"""

# Built after a run's rows are in (sorting once is much faster than updating indexes row by row).
_DETECTION_INDEXES = """
CREATE INDEX detections_frame ON detections (camera, frame);
CREATE INDEX detections_global ON detections (global_id);
CREATE INDEX detections_tracklet ON detections (camera, track_id);
"""

# Migrations from schema version N to N + 1 (SQL scripts), applied in order by ResultsStore.open.
# Version 1 is the first released layout, so there is nothing to migrate from yet.
MIGRATIONS: dict[int, str] = {}

_SET_LABEL = "UPDATE identities SET label = ? WHERE global_id = ?"

CAMERA_SEPARATOR = ";"
"""Separator of camera names in :attr:`Identity.cameras` when written as text (identities.csv)."""

SORT_KEYS = ("global_id", "first_time", "last_time", "duration", "num_cameras", "num_tracklets", "label")
"""Columns :meth:`ResultsStore.identities` may sort by."""

JPEG_QUALITY = 90


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


def encode_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes of a ``uint8 (H, W, 3)`` BGR image."""
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0 or image.dtype != np.uint8:
        raise ValueError(f"a crop must be a non-empty uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"cannot encode an image of shape {image.shape} as JPEG")
    return buf.tobytes()


def decode_image(data: bytes) -> np.ndarray | None:
    """``uint8 (H, W, 3)`` BGR image from encoded bytes (JPEG, PNG, ...), or None when they are not one."""
    import cv2

    arr = np.frombuffer(data, np.uint8)
    if arr.size == 0:
        return None
    return cv2.imdecode(arr, cv2.IMREAD_COLOR)


def _source_path(source: str | Path) -> str:
    """A camera source as recorded: absolute when it is a path that exists (so the review UI finds it
    from any working directory), else as given (a URL, or a path no longer there)."""
    p = Path(source)
    return str(p.resolve()) if p.exists() else str(source)


def _crop(frame: int, x1: float, y1: float, x2: float, y2: float, score: float, quality: float,
          jpeg: bytes) -> Crop:
    return Crop(frame, np.array([x1, y1, x2, y2], np.float32), score, quality, decode_image(jpeg))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _dumps(data: Any) -> str:
    return json.dumps(data, default=json_default)


def _evidence_fields(ev: Any) -> tuple[int, str, int, str, int, float | None, str, str]:
    """Row values of one association evidence record (any object or mapping with the evidence fields).

    Fields: ``global_id``, ``a`` and ``b`` = ``(camera, track_id)``, ``distance``, ``terms`` (name ->
    float), ``reason``. Read generically so the store does not depend on the association module.
    """
    get = ev.get if isinstance(ev, dict) else (lambda k, d=None: getattr(ev, k, d))
    a, b = get("a"), get("b")
    dist = get("distance")
    dist = None if dist is None or not math.isfinite(float(dist)) else float(dist)
    terms = {str(k): float(v) for k, v in (get("terms") or {}).items()}
    return (int(get("global_id")), str(a[0]), int(a[1]), str(b[0]), int(b[1]), dist, _dumps(terms),
            str(get("reason") or ""))


class ResultsStore:
    """A connection to one ``results.sqlite``. Use :meth:`create` (new file) or :meth:`open` (existing).

    Use as a context manager (closes the connection). Writes run in transactions: a failing write leaves
    the database as it was.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    # ------------------------------------------------------------------ opening

    @classmethod
    def create(cls, path: str | Path) -> "ResultsStore":
        """A new, empty store at ``path`` (an existing file there is replaced: pass atomic_path's temp)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        conn = cls._connect(path)
        conn.executescript(_SCHEMA + _DETECTION_INDEXES)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return cls(conn, path)

    @classmethod
    def open(cls, path: str | Path, readonly: bool = False) -> "ResultsStore":
        """Open an existing store; raise InputError (one line) when it is missing, not a store, or of a
        schema this version cannot read. Older schemas are migrated in place when a migration exists."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no results database (run track-cameras to create it)")
        try:
            if readonly:
                conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
            else:
                conn = cls._connect(path)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{path}: not a results database ({exc})") from None
        if version > SCHEMA_VERSION:
            conn.close()
            raise InputError(f"{path}: results schema version {version} is newer than this multicam-tracker "
                             f"reads ({SCHEMA_VERSION}); upgrade multicam-tracker")
        if version < SCHEMA_VERSION:
            if "run" not in tables and version == 0:
                conn.close()
                raise InputError(f"{path}: not a multicam-tracker results database (no schema version); "
                                 f"{RECREATE_HINT}")
            if readonly or any(v not in MIGRATIONS for v in range(version, SCHEMA_VERSION)):
                conn.close()
                how = ("open it writable once to migrate it" if readonly and all(
                    v in MIGRATIONS for v in range(version, SCHEMA_VERSION)) else RECREATE_HINT)
                raise InputError(f"{path}: results schema version {version} is older than this "
                                 f"multicam-tracker reads ({SCHEMA_VERSION}); {how}")
            store = cls(conn, path)
            with store._transaction():
                for v in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[v].split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {v + 1}")
            return store
        return cls(conn, path)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        # autocommit mode: transactions are explicit (_transaction); the UI reruns scripts on threads.
        return sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # ------------------------------------------------------------------ writing a run

    def write_run(self, meta: dict, cameras: Sequence[CameraInfo], tracklets: Sequence[Tracklet],
                  evidence: Iterable[Any] = ()) -> None:
        """Write a whole run into a new store (:meth:`create`) in one transaction.

        ``meta`` is the run.json dict (JSON-serialisable; numpy values are converted); ``cameras`` in
        pipeline order; ``tracklets`` with ``global_id`` from association (``-1``: not associated, each
        such tracklet becomes an identity of its own); ``evidence`` records with ``global_id``, ``a``,
        ``b``, ``distance``, ``terms``, ``reason`` (objects or dicts).
        """
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names are not unique: {names}")
        known = set(names)
        for t in tracklets:
            if t.camera not in known:
                raise ValueError(f"tracklet {t.key} is of camera {t.camera!r}, not among {names}")
        associated = any(t.global_id >= 0 for t in tracklets)
        next_id = max([0] + [int(t.global_id) for t in tracklets]) + 1
        ids: dict[tuple[str, int], int] = {}
        order = {n: i for i, n in enumerate(names)}
        for t in sorted(tracklets, key=lambda t: (order[t.camera], t.track_id)):
            if t.key in ids:
                raise ValueError(f"tracklet {t.key} appears twice")
            if t.global_id >= 0:
                ids[t.key] = int(t.global_id)
            else:
                ids[t.key] = next_id
                next_id += 1
        with self._transaction() as db:
            for name in ("detections_frame", "detections_global", "detections_tracklet"):
                db.execute(f"DROP INDEX IF EXISTS {name}")
            db.execute("DELETE FROM run")
            db.executemany("INSERT INTO run VALUES (?, ?)",
                           [("meta", _dumps(meta)), ("associated", _dumps(associated)),
                            ("max_global_id", _dumps(next_id - 1))])
            db.executemany(
                "INSERT INTO cameras VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(i, c.name, _source_path(c.source), int(c.width), int(c.height), float(c.fps),
                  float(c.offset), None if c.frames_total is None else int(c.frames_total),
                  int(c.frames_processed),
                  None if c.homography is None else _dumps(np.asarray(c.homography, np.float64)))
                 for i, c in enumerate(cameras)])
            db.executemany("INSERT INTO tracklets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (self._tracklet_row(t, ids[t.key]) for t in tracklets))
            db.executemany("INSERT INTO detections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (row for t in tracklets for row in self._detection_rows(t, ids[t.key])))
            db.executemany(
                "INSERT INTO crops (camera, track_id, frame, x1, y1, x2, y2, score, quality, jpeg) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((t.camera, int(t.track_id), int(c.frame), *np.asarray(c.box, float).tolist(),
                  float(c.score), float(c.quality), encode_jpeg(c.image))
                 for t in tracklets for c in t.crops))
            db.executemany("INSERT INTO evidence (global_id, a_camera, a_track, b_camera, b_track, distance, "
                           "terms, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (_evidence_fields(e) for e in evidence))
            for statement in _DETECTION_INDEXES.strip().splitlines():
                db.execute(statement)
            db.execute("INSERT INTO identities (global_id) SELECT DISTINCT global_id FROM tracklets")
            self._refresh_identities(None)

    @staticmethod
    def _tracklet_row(t: Tracklet, global_id: int) -> tuple:
        emb = None if t.embedding is None else np.asarray(t.embedding, np.float32).tobytes()
        if not len(t):
            raise ValueError(f"tracklet {t.key} has no frames")
        return (t.camera, int(t.track_id), global_id, int(t.frames[0]), int(t.frames[-1]), float(t.times[0]),
                float(t.times[-1]), len(t), emb)

    @staticmethod
    def _detection_rows(t: Tracklet, global_id: int) -> Iterator[tuple]:
        xywh = np.c_[t.boxes[:, :2], t.boxes[:, 2:] - t.boxes[:, :2]].astype(np.float64).tolist()
        cam, tid = t.camera, int(t.track_id)
        for f, tm, (x, y, w, h), s in zip(t.frames.tolist(), t.times.tolist(), xywh, t.scores.tolist()):
            yield (cam, f, tm, tid, global_id, x, y, w, h, s)

    def _refresh_identities(self, global_ids: Iterable[int] | None) -> None:
        """Recompute the cached statistics of some identities (all when None); drop identities left
        without tracklets. Runs inside the caller's transaction."""
        db = self._conn
        where, args = "", []
        if global_ids is not None:
            gids = sorted(set(int(g) for g in global_ids))
            if not gids:
                return
            where = f"WHERE t.global_id IN ({','.join('?' * len(gids))})"
            args = gids
        rows = db.execute(
            "SELECT t.global_id, t.camera, MIN(t.first_time), MAX(t.last_time), COUNT(*) "
            "FROM tracklets t JOIN cameras c ON c.name = t.camera "
            f"{where} GROUP BY t.global_id, t.camera ORDER BY t.global_id, MIN(c.idx)", args).fetchall()
        stats: dict[int, list] = {}
        for gid, cam, first, last, n in rows:
            s = stats.setdefault(gid, [[], math.inf, -math.inf, 0])
            s[0].append(cam)
            s[1], s[2], s[3] = min(s[1], first), max(s[2], last), s[3] + n
        db.executemany(
            "UPDATE identities SET cameras = ?, num_cameras = ?, first_time = ?, last_time = ?, "
            "duration = ?, num_tracklets = ? WHERE global_id = ?",
            [(CAMERA_SEPARATOR.join(cams), len(cams), first, last, last - first, n, g)
             for g, (cams, first, last, n) in stats.items()])
        if global_ids is None:
            db.execute("DELETE FROM identities WHERE global_id NOT IN (SELECT global_id FROM tracklets)")
        else:
            empty = [g for g in gids if g not in stats]
            db.executemany("DELETE FROM identities WHERE global_id = ?", [(g,) for g in empty])

    # ------------------------------------------------------------------ reading

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
        for row in self._conn.execute("SELECT name, source, width, height, fps, time_offset, frames_total, "
                                      "frames_processed, homography FROM cameras ORDER BY idx"):
            h = None if row[8] is None else np.asarray(json.loads(row[8]), np.float64)
            out.append(CameraInfo(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], h))
        return out

    def counts(self) -> dict[str, int]:
        """Numbers of cameras, tracklets, identities, detections, crops and evidence rows."""
        return {t: self._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("cameras", "tracklets", "identities", "detections", "crops", "evidence")}

    def time_range(self) -> tuple[float, float]:
        """First and last common-clock time with a tracked box ((0, 0) when there are none)."""
        lo, hi = self._conn.execute("SELECT MIN(first_time), MAX(last_time) FROM tracklets").fetchone()
        return (0.0, 0.0) if lo is None else (float(lo), float(hi))

    def mot_rows(self, camera: str) -> np.ndarray:
        """(N, 7) float64 rows ``frame, id, x, y, w, h, conf`` of one camera sorted by frame then id.

        ``id`` is the global id when :meth:`uses_global_ids`, else the per-camera track id.
        """
        col = "global_id" if self.uses_global_ids() else "track_id"
        rows = self._conn.execute(f"SELECT frame, {col}, x, y, w, h, conf FROM detections WHERE camera = ? "
                                  f"ORDER BY frame, {col}", (camera,)).fetchall()
        return np.asarray(rows, np.float64).reshape(-1, 7)

    _IDENTITY_COLS = "global_id, label, cameras, first_time, last_time, num_tracklets"

    @staticmethod
    def _identity(row: tuple) -> Identity:
        gid, label, cams, first, last, n = row
        return Identity(gid, label, tuple(c for c in cams.split(CAMERA_SEPARATOR) if c),
                        float(first or 0.0), float(last or 0.0), n)

    @staticmethod
    def _identity_filter(camera: str | None, min_cameras: int | None, min_duration: float | None,
                         text: str | None) -> tuple[str, list]:
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

    def identities(self, sort: str = "global_id", descending: bool = False, camera: str | None = None,
                   min_cameras: int | None = None, min_duration: float | None = None,
                   text: str | None = None, limit: int | None = None, offset: int = 0) -> list[Identity]:
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

    def count_identities(self, camera: str | None = None, min_cameras: int | None = None,
                         min_duration: float | None = None, text: str | None = None) -> int:
        """How many identities pass the same filters as :meth:`identities`."""
        where, args = self._identity_filter(camera, min_cameras, min_duration, text)
        return self._conn.execute(f"SELECT COUNT(*) FROM identities{where}", args).fetchone()[0]

    def identity(self, global_id: int) -> Identity | None:
        row = self._conn.execute(f"SELECT {self._IDENTITY_COLS} FROM identities WHERE global_id = ?",
                                 (int(global_id),)).fetchone()
        return None if row is None else self._identity(row)

    _TRACKLET_COLS = "camera, track_id, global_id, first_frame, last_frame, first_time, last_time, num_frames"

    def tracklet_infos(self, global_id: int | None = None) -> list[TrackletInfo]:
        """Summary rows of all tracklets, or of one identity's, ordered by first time then camera."""
        where, args = ("WHERE global_id = ?", [int(global_id)]) if global_id is not None else ("", [])
        rows = self._conn.execute(f"SELECT {self._TRACKLET_COLS} FROM tracklets {where} "
                                  "ORDER BY first_time, camera, track_id", args)
        return [TrackletInfo(*r) for r in rows]

    def tracklet_info(self, camera: str, track_id: int) -> TrackletInfo | None:
        row = self._conn.execute(f"SELECT {self._TRACKLET_COLS} FROM tracklets WHERE camera = ? AND "
                                 "track_id = ?", (camera, int(track_id))).fetchone()
        return None if row is None else TrackletInfo(*row)

    def crops(self, camera: str, track_id: int) -> list[Crop]:
        """The stored crops of one tracklet in frame order (images decoded from JPEG, so lossy)."""
        rows = self._conn.execute("SELECT frame, x1, y1, x2, y2, score, quality, jpeg FROM crops WHERE "
                                  "camera = ? AND track_id = ? ORDER BY frame, id", (camera, int(track_id)))
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
            "ORDER BY t.global_id, k.idx, c.quality DESC, c.id", gids).fetchall()
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
                out.append(FrameBoxes(cam.name, None, None, np.zeros((0, 4), np.float32), empty, empty,
                                      np.zeros(0, np.float32)))
                continue
            near = self._conn.execute(
                "SELECT frame FROM detections WHERE camera = ? AND frame BETWEEN ? AND ? "
                "ORDER BY ABS(frame - ?), frame LIMIT 1",
                (cam.name, frame - tolerance, frame + tolerance, frame)).fetchone()
            rows = [] if near is None else self._conn.execute(
                "SELECT x, y, w, h, track_id, global_id, conf FROM detections WHERE camera = ? AND frame = ? "
                "ORDER BY global_id, track_id", (cam.name, near[0])).fetchall()
            arr = np.asarray(rows, np.float64).reshape(-1, 7)
            out.append(FrameBoxes(cam.name, frame, None if near is None else int(near[0]),
                                  arr[:, :4].astype(np.float32), arr[:, 4].astype(np.int64),
                                  arr[:, 5].astype(np.int64), arr[:, 6].astype(np.float32)))
        return out

    _EVIDENCE_COLS = "id, global_id, a_camera, a_track, b_camera, b_track, distance, terms, reason"

    def evidence(self, global_id: int) -> list[EvidenceRow]:
        """The evidence rows of one identity, closest distances first (user merges last)."""
        rows = self._conn.execute(f"SELECT {self._EVIDENCE_COLS} FROM evidence WHERE global_id = ? "
                                  "ORDER BY distance IS NULL, distance, id", (int(global_id),))
        return [EvidenceRow(i, g, (ac, at), (bc, bt), d, json.loads(terms), reason)
                for i, g, ac, at, bc, bt, d, terms, reason in rows]

    def embedding_batches(self, size: int = 8192) -> Iterator[tuple[list[TrackletInfo], np.ndarray]]:
        """The tracklets that have an embedding with their (n, D) float32 matrix, ``size`` at a time
        (so a search over 100,000 tracklets never holds them all)."""
        cur = self._conn.execute(f"SELECT {self._TRACKLET_COLS}, embedding FROM tracklets "
                                 "WHERE embedding IS NOT NULL ORDER BY camera, track_id")
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
        for cam, tid, *row in self._conn.execute("SELECT camera, track_id, frame, time, x, y, w, h, conf "
                                                 "FROM detections ORDER BY camera, track_id, frame"):
            dets.setdefault((cam, tid), []).append(row)
        crops: dict[tuple[str, int], list[Crop]] = {}
        for cam, tid, *row in self._conn.execute(
                "SELECT camera, track_id, frame, x1, y1, x2, y2, score, quality, jpeg FROM crops "
                "ORDER BY camera, track_id, frame, id"):
            crops.setdefault((cam, tid), []).append(_crop(*row))
        out = []
        for cam, tid, gid, emb in self._conn.execute(
                "SELECT t.camera, t.track_id, t.global_id, t.embedding FROM tracklets t "
                "JOIN cameras c ON c.name = t.camera ORDER BY c.idx, t.track_id").fetchall():
            det = np.asarray(dets.get((cam, tid), []), np.float64).reshape(-1, 7)
            boxes = np.c_[det[:, 2:4], det[:, 2:4] + det[:, 4:6]]
            emb = None if emb is None else np.frombuffer(emb, np.float32).copy()
            out.append(Tracklet(cam, tid, det[:, 0].astype(np.int64), det[:, 1], boxes, det[:, 6],
                                crops.get((cam, tid), []), emb, gid))
        return out

    # ------------------------------------------------------------------ corrections

    def edits(self) -> list[Edit]:
        """The edit log, oldest first."""
        return [Edit(i, t, a, json.loads(p), bool(u)) for i, t, a, p, u in
                self._conn.execute("SELECT id, time, action, params, undone FROM edit_log ORDER BY id")]

    def _require_identity(self, global_id: int) -> Identity:
        ident = self.identity(global_id)
        if ident is None:
            raise InputError(f"identity {global_id}: no such global id in {self.path}")
        return ident

    def _log(self, action: str, params: dict, undo: dict) -> int:
        cur = self._conn.execute("INSERT INTO edit_log (time, action, params, undo) VALUES (?, ?, ?, ?)",
                                 (_now(), action, _dumps(params), _dumps(undo)))
        return int(cur.lastrowid)

    def _move(self, keys: Iterable[tuple[str, int]], global_id: int) -> None:
        pairs = [(int(global_id), c, int(t)) for c, t in keys]
        self._conn.executemany("UPDATE tracklets SET global_id = ? WHERE camera = ? AND track_id = ?", pairs)
        self._conn.executemany("UPDATE detections SET global_id = ? WHERE camera = ? AND track_id = ?", pairs)

    def merge(self, keep: int, other: int) -> int:
        """Merge identity ``other`` into ``keep`` (its tracklets, boxes and evidence take ``keep``'s id).

        ``keep`` keeps its label, or takes ``other``'s when it has none. Refused when the two identities
        are seen at overlapping times in the same camera (one person cannot be there twice). Returns the
        edit id.
        """
        keep, other = int(keep), int(other)
        if keep == other:
            raise InputError(f"identity {keep}: cannot merge an identity with itself")
        a, b = self._require_identity(keep), self._require_identity(other)
        clash = self._conn.execute(
            "SELECT x.camera, x.track_id, y.track_id FROM tracklets x JOIN tracklets y "
            "ON x.camera = y.camera WHERE x.global_id = ? AND y.global_id = ? "
            "AND x.first_time <= y.last_time AND y.first_time <= x.last_time LIMIT 1",
            (keep, other)).fetchone()
        if clash:
            raise InputError(f"identities {keep} and {other}: both are in camera {clash[0]} at the same time "
                             f"(tracks {clash[1]} and {clash[2]}), so they cannot be one person")
        moved = [(c, t) for c, t in self._conn.execute(
            "SELECT camera, track_id FROM tracklets WHERE global_id = ? ORDER BY camera, track_id", (other,))]
        ev_ids = [r[0] for r in self._conn.execute("SELECT id FROM evidence WHERE global_id = ?", (other,))]
        first_a = self.tracklet_infos(keep)[0]
        first_b = self.tracklet_infos(other)[0]
        with self._transaction() as db:
            self._move(moved, keep)
            db.execute("UPDATE evidence SET global_id = ? WHERE global_id = ?", (keep, other))
            cur = db.execute("INSERT INTO evidence (global_id, a_camera, a_track, b_camera, b_track, "
                             "distance, terms, reason) VALUES (?, ?, ?, ?, ?, NULL, '{}', ?)",
                             (keep, *first_a.key, *first_b.key,
                              f"merged by user (identity {other} into {keep})"))
            label = a.label or b.label
            db.execute(_SET_LABEL, (label, keep))
            self._refresh_identities([keep, other])
            return self._log("merge", {"keep": keep, "other": other},
                             {"tracklets": moved, "evidence": ev_ids, "added_evidence": cur.lastrowid,
                              "keep_label": a.label, "other_label": b.label})

    def split(self, camera: str, track_id: int) -> int:
        """Take one tracklet out of its identity into a new identity; returns the new global id.

        Evidence rows that involve the tracklet are removed from the old identity (kept for undo).
        """
        info = self.tracklet_info(camera, track_id)
        if info is None:
            raise InputError(f"tracklet {camera}/{track_id}: no such tracklet in {self.path}")
        old = info.global_id
        if self._require_identity(old).num_tracklets == 1:
            raise InputError(f"tracklet {camera}/{track_id}: already the only tracklet of identity {old}")
        # Ids only grow, so a new identity never reuses the id of one merged away earlier.
        row = self._conn.execute("SELECT value FROM run WHERE key = 'max_global_id'").fetchone()
        new = max(json.loads(row[0]) if row else 0,
                  self._conn.execute("SELECT MAX(global_id) FROM identities").fetchone()[0]) + 1
        ev = self._conn.execute(
            f"SELECT {self._EVIDENCE_COLS} FROM evidence WHERE global_id = ? "
            "AND ((a_camera = ? AND a_track = ?) OR (b_camera = ? AND b_track = ?))",
            (old, camera, int(track_id), camera, int(track_id))).fetchall()
        with self._transaction() as db:
            db.execute("INSERT INTO identities (global_id) VALUES (?)", (new,))
            db.execute("INSERT OR REPLACE INTO run VALUES ('max_global_id', ?)", (_dumps(new),))
            self._move([(camera, track_id)], new)
            db.executemany("DELETE FROM evidence WHERE id = ?", [(r[0],) for r in ev])
            self._refresh_identities([old, new])
            self._log("split", {"camera": camera, "track_id": int(track_id), "from": old, "new": new},
                      {"evidence": [list(r) for r in ev]})
        return new

    def set_label(self, global_id: int, label: str) -> int:
        """Name an identity (free text, stripped; empty clears it). Returns the edit id."""
        ident = self._require_identity(global_id)
        label = " ".join(str(label).split())
        with self._transaction() as db:
            db.execute(_SET_LABEL, (label, ident.global_id))
            return self._log("label", {"global_id": ident.global_id, "label": label}, {"label": ident.label})

    def undo(self) -> Edit | None:
        """Revert the latest correction not yet undone; returns it (None when there is nothing to undo)."""
        row = self._conn.execute("SELECT id, time, action, params, undo FROM edit_log WHERE undone = 0 "
                                 "ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        eid, time, action, params, undo = row
        p, u = json.loads(params), json.loads(undo)
        with self._transaction() as db:
            if action == "merge":
                db.execute("INSERT INTO identities (global_id, label) VALUES (?, ?)",
                           (p["other"], u["other_label"]))
                db.execute(_SET_LABEL, (u["keep_label"], p["keep"]))
                self._move([tuple(k) for k in u["tracklets"]], p["other"])
                db.executemany("UPDATE evidence SET global_id = ? WHERE id = ?",
                               [(p["other"], i) for i in u["evidence"]])
                db.execute("DELETE FROM evidence WHERE id = ?", (u["added_evidence"],))
                self._refresh_identities([p["keep"], p["other"]])
            elif action == "split":
                self._move([(p["camera"], p["track_id"])], p["from"])
                db.executemany("INSERT INTO evidence (id, global_id, a_camera, a_track, b_camera, b_track, "
                               "distance, terms, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               [tuple(r) for r in u["evidence"]])
                self._refresh_identities([p["from"], p["new"]])
            elif action == "label":
                db.execute(_SET_LABEL, (u["label"], p["global_id"]))
            else:
                raise InputError(f"{self.path}: edit {eid} has unknown action '{action}'")
            db.execute("UPDATE edit_log SET undone = 1 WHERE id = ?", (eid,))
        return Edit(eid, time, action, p, True)
