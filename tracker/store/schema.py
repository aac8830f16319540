"""The results database file: its schema, versions and migrations, connections and transactions.

Schema version :data:`SCHEMA_VERSION`, kept in ``PRAGMA user_version``; :data:`MIGRATIONS` turn version N
into N + 1 in place when an older store is opened writable.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tracker.errors import InputError
from tracker.fsutil import json_default

SCHEMA_VERSION = 3
"""Version of the table layout below; stored in ``PRAGMA user_version``."""

RECREATE_HINT = "re-create it by running track-cameras again on the same inputs"
CAMERA_SEPARATOR = ";"
"""Separator of camera names in the ``identities.cameras`` column and in identities.csv."""

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
CREATE TABLE track_boxes (
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

# The review queue (schema 3): questions about tracklet pairs, ``status`` open | answered | dropped.
QUESTIONS = """
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, a_camera TEXT NOT NULL, a_track INTEGER NOT NULL,
    b_camera TEXT NOT NULL, b_track INTEGER NOT NULL, distance REAL, size INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open', edit_id INTEGER,
    terms TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS questions_status ON questions (status);
CREATE INDEX IF NOT EXISTS questions_a ON questions (a_camera, a_track);
CREATE INDEX IF NOT EXISTS questions_b ON questions (b_camera, b_track);
"""

# Built after a run's rows are in (sorting once is much faster than updating indexes row by row).
BOX_INDEXES = """
CREATE INDEX track_boxes_frame ON track_boxes (camera, frame);
CREATE INDEX track_boxes_global ON track_boxes (global_id);
CREATE INDEX track_boxes_tracklet ON track_boxes (camera, track_id);
"""

# Migrations from schema version N to N + 1 (SQL scripts), applied in order by Database.open.
MIGRATIONS: dict[int, str] = {
    # 1 -> 2: the per-frame boxes are the tracks' boxes (Kalman-filtered, interpolated across short gaps with
    # conf 0), not the detector's: the table is named for what it holds.
    1: """
DROP INDEX IF EXISTS detections_frame;
DROP INDEX IF EXISTS detections_global;
DROP INDEX IF EXISTS detections_tracklet;
ALTER TABLE detections RENAME TO track_boxes;
"""
    + BOX_INDEXES,
    # 2 -> 3: the review queue (questions about tracklet pairs, built on first use by tracker.review).
    2: QUESTIONS,
}


def dumps(data: Any) -> str:
    """JSON text of ``data`` (numpy values, paths and dataclasses converted)."""
    return json.dumps(data, default=json_default)


class Database:
    """A connection to one ``results.sqlite``. Use :meth:`create` (new file) or :meth:`open` (existing), as a
    context manager (closes the connection). Writes run in transactions: a failing write leaves the database
    as it was."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def create(cls, path: str | Path) -> Database:
        """A new, empty store at ``path`` (an existing file there is replaced: pass atomic_path's temp)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        conn = cls._connect(path)
        conn.executescript(_SCHEMA + QUESTIONS + BOX_INDEXES)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return cls(conn, path)

    @classmethod
    def open(cls, path: str | Path, readonly: bool = False) -> Database:
        """Open an existing store; raise InputError (one line) when it is missing, not a store, or of a
        schema this version cannot read. Older schemas are migrated in place when a migration exists."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no results database (run track-cameras to create it)")
        try:
            if readonly:
                conn = sqlite3.connect(
                    f"file:{path.resolve()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
                )
            else:
                conn = cls._connect(path)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{path}: not a results database ({exc})") from None
        if version > SCHEMA_VERSION:
            conn.close()
            raise InputError(
                f"{path}: results schema version {version} is newer than this multicam-tracker "
                f"reads ({SCHEMA_VERSION}); upgrade multicam-tracker"
            )
        if version < SCHEMA_VERSION:
            if "run" not in tables and version == 0:
                conn.close()
                raise InputError(
                    f"{path}: not a multicam-tracker results database (no schema version); {RECREATE_HINT}"
                )
            if readonly or any(v not in MIGRATIONS for v in range(version, SCHEMA_VERSION)):
                conn.close()
                how = (
                    "open it writable once to migrate it"
                    if readonly and all(v in MIGRATIONS for v in range(version, SCHEMA_VERSION))
                    else RECREATE_HINT
                )
                raise InputError(
                    f"{path}: results schema version {version} is older than this "
                    f"multicam-tracker reads ({SCHEMA_VERSION}); {how}"
                )
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

    def __enter__(self) -> Database:
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

    def refresh_identities(self, global_ids: Iterable[int] | None) -> None:
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
            f"{where} GROUP BY t.global_id, t.camera ORDER BY t.global_id, MIN(c.idx)",
            args,
        ).fetchall()
        stats: dict[int, list] = {}
        for gid, cam, first, last, n in rows:
            s = stats.setdefault(gid, [[], math.inf, -math.inf, 0])
            s[0].append(cam)
            s[1], s[2], s[3] = min(s[1], first), max(s[2], last), s[3] + n
        db.executemany(
            "UPDATE identities SET cameras = ?, num_cameras = ?, first_time = ?, last_time = ?, "
            "duration = ?, num_tracklets = ? WHERE global_id = ?",
            [
                (CAMERA_SEPARATOR.join(cams), len(cams), first, last, last - first, n, g)
                for g, (cams, first, last, n) in stats.items()
            ],
        )
        if global_ids is None:
            db.execute("DELETE FROM identities WHERE global_id NOT IN (SELECT global_id FROM tracklets)")
        else:
            empty = [g for g in gids if g not in stats]
            db.executemany("DELETE FROM identities WHERE global_id = ?", [(g,) for g in empty])
