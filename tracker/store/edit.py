"""Corrections of a results store (merge, split, label) in an undoable edit log; :class:`ResultsStore`, the
whole store: reading and correcting."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone

from tracker.errors import InputError
from tracker.store.read import Edit, Identity, Queries
from tracker.store.schema import dumps

_SET_LABEL = "UPDATE identities SET label = ? WHERE global_id = ?"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultsStore(Queries):
    """A results store that can be read and corrected. Open one with :meth:`open`."""

    def edits(self) -> list[Edit]:
        """The edit log, oldest first."""
        return [
            Edit(i, t, a, json.loads(p), bool(u))
            for i, t, a, p, u in self._conn.execute(
                "SELECT id, time, action, params, undone FROM edit_log ORDER BY id"
            )
        ]

    def _require_identity(self, global_id: int) -> Identity:
        ident = self.identity(global_id)
        if ident is None:
            raise InputError(f"identity {global_id}: no such global id in {self.path}")
        return ident

    def _log(self, action: str, params: dict, undo: dict) -> int:
        cur = self._conn.execute(
            "INSERT INTO edit_log (time, action, params, undo) VALUES (?, ?, ?, ?)",
            (_now(), action, dumps(params), dumps(undo)),
        )
        return int(cur.lastrowid)

    def _move(self, keys: Iterable[tuple[str, int]], global_id: int) -> None:
        pairs = [(int(global_id), c, int(t)) for c, t in keys]
        self._conn.executemany("UPDATE tracklets SET global_id = ? WHERE camera = ? AND track_id = ?", pairs)
        self._conn.executemany(
            "UPDATE track_boxes SET global_id = ? WHERE camera = ? AND track_id = ?", pairs
        )

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
            (keep, other),
        ).fetchone()
        if clash:
            raise InputError(
                f"identities {keep} and {other}: both are in camera {clash[0]} at the same time "
                f"(tracks {clash[1]} and {clash[2]}), so they cannot be one person"
            )
        moved = [
            (c, t)
            for c, t in self._conn.execute(
                "SELECT camera, track_id FROM tracklets WHERE global_id = ? ORDER BY camera, track_id",
                (other,),
            )
        ]
        ev_ids = [r[0] for r in self._conn.execute("SELECT id FROM evidence WHERE global_id = ?", (other,))]
        first_a = self.tracklet_infos(keep)[0]
        first_b = self.tracklet_infos(other)[0]
        with self._transaction() as db:
            self._move(moved, keep)
            db.execute("UPDATE evidence SET global_id = ? WHERE global_id = ?", (keep, other))
            cur = db.execute(
                "INSERT INTO evidence (global_id, a_camera, a_track, b_camera, b_track, "
                "distance, terms, reason) VALUES (?, ?, ?, ?, ?, NULL, '{}', ?)",
                (keep, *first_a.key, *first_b.key, f"merged by user (identity {other} into {keep})"),
            )
            label = a.label or b.label
            db.execute(_SET_LABEL, (label, keep))
            self.refresh_identities([keep, other])
            return self._log(
                "merge",
                {"keep": keep, "other": other},
                {
                    "tracklets": moved,
                    "evidence": ev_ids,
                    "added_evidence": cur.lastrowid,
                    "keep_label": a.label,
                    "other_label": b.label,
                },
            )

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
        new = (
            max(
                json.loads(row[0]) if row else 0,
                self._conn.execute("SELECT MAX(global_id) FROM identities").fetchone()[0],
            )
            + 1
        )
        ev = self._conn.execute(
            f"SELECT {self._EVIDENCE_COLS} FROM evidence WHERE global_id = ? "
            "AND ((a_camera = ? AND a_track = ?) OR (b_camera = ? AND b_track = ?))",
            (old, camera, int(track_id), camera, int(track_id)),
        ).fetchall()
        with self._transaction() as db:
            db.execute("INSERT INTO identities (global_id) VALUES (?)", (new,))
            db.execute("INSERT OR REPLACE INTO run VALUES ('max_global_id', ?)", (dumps(new),))
            self._move([(camera, track_id)], new)
            db.executemany("DELETE FROM evidence WHERE id = ?", [(r[0],) for r in ev])
            self.refresh_identities([old, new])
            self._log(
                "split",
                {"camera": camera, "track_id": int(track_id), "from": old, "new": new},
                {"evidence": [list(r) for r in ev]},
            )
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
        row = self._conn.execute(
            "SELECT id, time, action, params, undo FROM edit_log WHERE undone = 0 ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        eid, time, action, params, undo = row
        p, u = json.loads(params), json.loads(undo)
        with self._transaction() as db:
            if action == "merge":
                db.execute(
                    "INSERT INTO identities (global_id, label) VALUES (?, ?)", (p["other"], u["other_label"])
                )
                db.execute(_SET_LABEL, (u["keep_label"], p["keep"]))
                self._move([tuple(k) for k in u["tracklets"]], p["other"])
                db.executemany(
                    "UPDATE evidence SET global_id = ? WHERE id = ?", [(p["other"], i) for i in u["evidence"]]
                )
                db.execute("DELETE FROM evidence WHERE id = ?", (u["added_evidence"],))
                self.refresh_identities([p["keep"], p["other"]])
            elif action == "split":
                self._move([(p["camera"], p["track_id"])], p["from"])
                db.executemany(
                    "INSERT INTO evidence (id, global_id, a_camera, a_track, b_camera, b_track, "
                    "distance, terms, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [tuple(r) for r in u["evidence"]],
                )
                self.refresh_identities([p["from"], p["new"]])
            elif action == "label":
                db.execute(_SET_LABEL, (u["label"], p["global_id"]))
            else:
                raise InputError(f"{self.path}: edit {eid} has unknown action '{action}'")
            db.execute("UPDATE edit_log SET undone = 1 WHERE id = ?", (eid,))
        return Edit(eid, time, action, p, True)
