"""Corrections of a results store in an undoable edit log; :class:`ResultsStore`, the whole store: reading
and correcting.

Two kinds of correction:

* direct edits (:meth:`ResultsStore.merge`, :meth:`~ResultsStore.split`, :meth:`~ResultsStore.set_label`):
  the identities are changed as asked, nothing else;
* changes computed elsewhere (:meth:`ResultsStore.apply_change`): a review answer, or a merge or split that
  :mod:`tracker.review` re-associated, arrives as a :class:`Change` (new global ids of some tracklets, their
  evidence, the review questions about them) and is stored with a snapshot of everything it replaces.

Either kind is undone by :meth:`ResultsStore.undo`, newest first, exactly. Every edit records the tracklets it
is about, so that :mod:`tracker.review` can turn the log into constraints for the association (and re-apply
it when the run is computed again).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tracker.errors import InputError
from tracker.store.read import Edit, Identity, Queries
from tracker.store.schema import dumps
from tracker.store.write import _evidence_fields as evidence_fields

Key = tuple[str, int]

_SET_LABEL = "UPDATE identities SET label = ? WHERE global_id = ?"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Change:
    """A new state for part of a run, from :mod:`tracker.review`.

    ``tracklets``: new global id of each tracklet that moves (ids not in the store become new identities);
    ``labels``: label of each identity that is new or whose label changes; ``evidence_of``: identities
    whose evidence rows are all replaced by ``evidence`` (records with ``global_id``, ``a``, ``b``,
    ``distance``, ``terms``, ``reason``, in merge order); ``questions``: new open review questions as
    ``(kind, a, b, distance, size, reason, terms)``; ``drop_questions``: ids of open questions the change
    makes moot (status dropped); ``answer``: the question this edit answers (status answered); ``reopen``:
    answered questions asked again (an answer taken back); ``revert``: older edits this one takes back
    (marked undone).
    """

    tracklets: dict[Key, int] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    evidence_of: set[int] = field(default_factory=set)
    evidence: list = field(default_factory=list)
    questions: list[tuple] = field(default_factory=list)
    drop_questions: list[int] = field(default_factory=list)
    answer: int | None = None
    reopen: list[int] = field(default_factory=list)
    revert: list[int] = field(default_factory=list)


class ResultsStore(Queries):
    """A results store that can be read and corrected. Open one with :meth:`open`."""

    def set_run_value(self, key: str, value) -> None:
        """Set a value of the ``run`` key/value table (JSON)."""
        self._conn.execute("INSERT OR REPLACE INTO run VALUES (?, ?)", (key, dumps(value)))

    def next_global_id(self) -> int:
        """A global id never used in this store (ids only grow, so an id merged away is never reused)."""
        row = self._conn.execute("SELECT value FROM run WHERE key = 'max_global_id'").fetchone()
        top = self._conn.execute("SELECT MAX(global_id) FROM identities").fetchone()[0]
        return max(json.loads(row[0]) if row else 0, top or 0) + 1

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
        a, b = self.check_merge(keep, other)
        kept = self.identity_keys([keep])[keep]
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
                {"keep": keep, "other": other, "keep_tracklets": kept, "other_tracklets": moved},
                {
                    "tracklets": moved,
                    "evidence": ev_ids,
                    "added_evidence": cur.lastrowid,
                    "keep_label": a.label,
                    "other_label": b.label,
                },
            )

    def check_merge(self, keep: int, other: int) -> tuple[Identity, Identity]:
        """The two identities, or InputError when they cannot be one person: the same identity, an unknown
        id, or both seen by one camera at overlapping times."""
        if keep == other:
            raise InputError(f"identity {keep}: cannot merge an identity with itself")
        a, b = self._require_identity(keep), self._require_identity(other)
        clash = self._conn.execute(
            "SELECT x.camera, x.track_id, y.track_id FROM tracklets x JOIN tracklets y "
            "ON x.camera = y.camera WHERE x.global_id = ? AND y.global_id = ? "
            "AND x.first_time <= y.last_time AND y.first_time <= x.last_time LIMIT 1",
            (int(keep), int(other)),
        ).fetchone()
        if clash:
            raise InputError(
                f"identities {keep} and {other}: both are in camera {clash[0]} at the same time "
                f"(tracks {clash[1]} and {clash[2]}), so they cannot be one person"
            )
        return a, b

    def split(self, camera: str, track_id: int) -> int:
        """Take one tracklet out of its identity into a new identity; returns the new global id.

        Evidence rows that involve the tracklet are removed from the old identity (kept for undo).
        """
        old = self.check_split(camera, track_id)
        others = [k for k in self.identity_keys([old])[old] if k != (camera, int(track_id))]
        new = self.next_global_id()
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
                {"camera": camera, "track_id": int(track_id), "from": old, "new": new, "others": others},
                {"evidence": [list(r) for r in ev]},
            )
        return new

    def check_split(self, camera: str, track_id: int) -> int:
        """The global id of the tracklet's identity, or InputError when there is no such tracklet or it is
        already alone in its identity."""
        info = self.tracklet_info(camera, track_id)
        if info is None:
            raise InputError(f"tracklet {camera}/{track_id}: no such tracklet in {self.path}")
        old = info.global_id
        if self._require_identity(old).num_tracklets == 1:
            raise InputError(f"tracklet {camera}/{track_id}: already the only tracklet of identity {old}")
        return old

    def set_label(self, global_id: int, label: str) -> int:
        """Name an identity (free text, stripped; empty clears it). Returns the edit id."""
        ident = self._require_identity(global_id)
        label = " ".join(str(label).split())
        keys = self.identity_keys([ident.global_id])[ident.global_id]
        with self._transaction() as db:
            db.execute(_SET_LABEL, (label, ident.global_id))
            return self._log(
                "label",
                {"global_id": ident.global_id, "label": label, "tracklets": keys},
                {"label": ident.label},
            )

    def apply_change(self, action: str, params: dict, change: Change) -> int:
        """Store a change computed by :mod:`tracker.review` as one edit (one transaction), with a snapshot of
        everything it replaces so that :meth:`undo` restores it exactly. Returns the edit id."""
        moves = {(str(c), int(t)): int(g) for (c, t), g in change.tracklets.items()}
        before = self.global_ids_of(list(moves))
        moves = {k: g for k, g in moves.items() if k in before}
        touched = set(before.values()) | set(moves.values()) | set(change.labels) | set(change.evidence_of)
        existing = {
            g: label
            for g, label in self._conn.execute(
                "SELECT global_id, label FROM identities WHERE global_id IN "
                f"({','.join('?' * len(touched))})",
                sorted(touched),
            )
        }
        created = sorted(g for g in touched if g not in existing)
        evidence = (
            self._conn.execute(
                f"SELECT {self._EVIDENCE_COLS} FROM evidence WHERE global_id IN "
                f"({','.join('?' * len(change.evidence_of))}) ORDER BY id",
                sorted(change.evidence_of),
            ).fetchall()
            if change.evidence_of
            else []
        )
        closed = list(change.drop_questions) + list(change.reopen)
        closed += [change.answer] if change.answer is not None else []
        old_questions = [
            self._conn.execute(f"SELECT {self._QUESTION_COLS} FROM questions WHERE id = ?", (q,)).fetchone()
            for q in closed
        ]
        with self._transaction() as db:
            for g in created:
                db.execute("INSERT INTO identities (global_id) VALUES (?)", (g,))
            top = max([self.next_global_id() - 1, *created])
            db.execute("INSERT OR REPLACE INTO run VALUES ('max_global_id', ?)", (dumps(top),))
            by_gid: dict[int, list[Key]] = {}
            for k, g in moves.items():
                by_gid.setdefault(g, []).append(k)
            for g, keys in by_gid.items():
                self._move(keys, g)
            for g, label in change.labels.items():
                db.execute(_SET_LABEL, (" ".join(str(label).split()), int(g)))
            db.executemany("DELETE FROM evidence WHERE global_id = ?", [(g,) for g in change.evidence_of])
            inserted_evidence = []
            for e in change.evidence:
                cur = db.execute(
                    "INSERT INTO evidence (global_id, a_camera, a_track, b_camera, b_track, distance, "
                    "terms, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    evidence_fields(e),
                )
                inserted_evidence.append(cur.lastrowid)
            inserted_questions = []
            for kind, a, b, distance, size, reason, terms in change.questions:
                cur = db.execute(
                    "INSERT INTO questions (kind, a_camera, a_track, b_camera, b_track, distance, size, "
                    "reason, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (kind, a[0], int(a[1]), b[0], int(b[1]), distance, int(size), reason, dumps(terms)),
                )
                inserted_questions.append(cur.lastrowid)
            db.executemany(
                "UPDATE questions SET status = 'dropped' WHERE id = ? AND status = 'open'",
                [(q,) for q in change.drop_questions],
            )
            db.executemany(
                "UPDATE questions SET status = 'open', edit_id = NULL WHERE id = ?",
                [(q,) for q in change.reopen],
            )
            db.executemany("UPDATE edit_log SET undone = 1 WHERE id = ?", [(e,) for e in change.revert])
            self.refresh_identities(touched)
            snapshot = {
                "tracklets": [[c, t, g] for (c, t), g in before.items() if moves.get((c, t)) != g],
                "identities": [[g, existing[g]] for g in sorted(existing)],
                "created": created,
                "evidence": [list(r) for r in evidence],
                "inserted_evidence": inserted_evidence,
                "questions": [list(r) for r in old_questions if r is not None],
                "inserted_questions": inserted_questions,
                "reverted": list(change.revert),
            }
            eid = self._log(action, params, {"state": snapshot})
            if change.answer is not None:
                db.execute(
                    "UPDATE questions SET status = 'answered', edit_id = ? WHERE id = ?", (eid, change.answer)
                )
            return eid

    CARRIED_KEYS = ("max_global_id", "review", "tracklet_map", "stale_edits", "carried_upto")
    """``run`` keys that belong to the corrections (copied by :meth:`adopt_corrections`)."""

    def adopt_corrections(self, other: str | Path) -> None:
        """Take over the corrected state of another store of the same run (the same tracklets): global ids,
        identities with their labels, evidence, the edit log, the review questions and their bookkeeping,
        each row as it is there. For a re-run whose automatic result did not change."""
        db = self._conn
        db.execute("ATTACH DATABASE ? AS other", (str(other),))
        try:
            with self._transaction():
                rows = db.execute(
                    "SELECT o.camera, o.track_id, o.global_id FROM other.tracklets o JOIN main.tracklets t "
                    "ON t.camera = o.camera AND t.track_id = o.track_id WHERE t.global_id != o.global_id"
                ).fetchall()
                by_gid: dict[int, list[Key]] = {}
                for c, t, g in rows:
                    by_gid.setdefault(int(g), []).append((c, int(t)))
                for g, keys in by_gid.items():
                    self._move(keys, g)
                for table in ("identities", "evidence", "edit_log", "questions"):
                    db.execute(f"DELETE FROM main.{table}")
                    db.execute(f"INSERT INTO main.{table} SELECT * FROM other.{table}")
                marks = ",".join("?" * len(self.CARRIED_KEYS))
                db.execute(f"DELETE FROM main.run WHERE key IN ({marks})", self.CARRIED_KEYS)
                db.execute(
                    f"INSERT INTO main.run SELECT key, value FROM other.run WHERE key IN ({marks})",
                    self.CARRIED_KEYS,
                )
        finally:
            db.execute("DETACH DATABASE other")

    def copy_edit_log(self, other: str | Path) -> None:
        """Append another store's edit log to this one's, each row as it is there (ids kept)."""
        db = self._conn
        db.execute("ATTACH DATABASE ? AS other", (str(other),))
        try:
            with self._transaction():
                db.execute("INSERT INTO main.edit_log SELECT * FROM other.edit_log")
        finally:
            db.execute("DETACH DATABASE other")

    def replace_identities(
        self, global_ids: dict[Key, int], evidence: Iterable, labels: dict[int, str]
    ) -> None:
        """Replace the whole association result: every tracklet's global id (``global_ids``), the identities
        (labelled by ``labels``) and their evidence. Not an edit (a re-run's association, nothing to undo)."""
        with self._transaction() as db:
            by_gid: dict[int, list[Key]] = {}
            for k, g in global_ids.items():
                by_gid.setdefault(int(g), []).append((str(k[0]), int(k[1])))
            for g, keys in by_gid.items():
                self._move(keys, g)
            db.execute("DELETE FROM identities")
            db.executemany("INSERT INTO identities (global_id) VALUES (?)", [(g,) for g in sorted(by_gid)])
            db.executemany(_SET_LABEL, [(label, g) for g, label in labels.items()])
            db.execute("DELETE FROM evidence")
            db.executemany(
                "INSERT INTO evidence (global_id, a_camera, a_track, b_camera, b_track, distance, terms, "
                "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [evidence_fields(e) for e in evidence],
            )
            top = max([self.next_global_id() - 1, *by_gid])
            db.execute("INSERT OR REPLACE INTO run VALUES ('max_global_id', ?)", (dumps(top),))
            self.refresh_identities(None)

    def add_questions(self, questions: list[tuple], edit_id: int | None = None) -> None:
        """Add open review questions (as in :class:`Change`): derived data, not an edit of their own; with
        ``edit_id`` (an :meth:`apply_change` edit) they belong to that edit, and its undo removes them."""
        with self._transaction() as db:
            ids = []
            for k, a, b, d, n, r, t in questions:
                cur = db.execute(
                    "INSERT INTO questions (kind, a_camera, a_track, b_camera, b_track, distance, size, "
                    "reason, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (k, a[0], int(a[1]), b[0], int(b[1]), d, int(n), r, dumps(t)),
                )
                ids.append(cur.lastrowid)
            if edit_id is not None:
                undo = json.loads(
                    db.execute("SELECT undo FROM edit_log WHERE id = ?", (edit_id,)).fetchone()[0]
                )
                undo["state"]["inserted_questions"] += ids
                db.execute("UPDATE edit_log SET undo = ? WHERE id = ?", (dumps(undo), edit_id))

    def replace_questions(self, questions: list[tuple], state: dict) -> None:
        """Rebuild the review queue: drop every open question, add ``questions`` (as in :class:`Change`) and
        record ``state`` under the ``run`` key ``review``. Derived data, not an edit: nothing to undo."""
        with self._transaction() as db:
            db.execute("DELETE FROM questions WHERE status = 'open'")
            db.executemany(
                "INSERT INTO questions (kind, a_camera, a_track, b_camera, b_track, distance, size, reason, "
                "terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (k, a[0], int(a[1]), b[0], int(b[1]), d, int(n), r, dumps(t))
                    for k, a, b, d, n, r, t in questions
                ],
            )
            self.set_run_value("review", state)

    def _restore(self, state: dict) -> None:
        """Undo an :meth:`apply_change` edit from its snapshot (inside the caller's transaction)."""
        db = self._conn
        by_gid: dict[int, list[Key]] = {}
        for c, t, g in state["tracklets"]:
            by_gid.setdefault(int(g), []).append((c, int(t)))
        moved_to = (
            {
                g
                for (g,) in db.execute(
                    "SELECT DISTINCT global_id FROM tracklets WHERE "
                    + " OR ".join(["(camera = ? AND track_id = ?)"] * len(state["tracklets"])),
                    [v for c, t, _ in state["tracklets"] for v in (c, int(t))],
                )
            }
            if state["tracklets"]
            else set()
        )
        for g, keys in by_gid.items():
            self._move(keys, g)
        db.executemany("DELETE FROM evidence WHERE id = ?", [(i,) for i in state["inserted_evidence"]])
        db.executemany(
            "INSERT OR REPLACE INTO evidence (id, global_id, a_camera, a_track, b_camera, b_track, distance, "
            "terms, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [tuple(r) for r in state["evidence"]],
        )
        db.executemany("DELETE FROM questions WHERE id = ?", [(i,) for i in state["inserted_questions"]])
        db.executemany(
            f"INSERT OR REPLACE INTO questions ({self._QUESTION_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [tuple(r) for r in state["questions"]],
        )
        for g, label in state["identities"]:
            db.execute("INSERT OR IGNORE INTO identities (global_id) VALUES (?)", (int(g),))
            db.execute(_SET_LABEL, (label, int(g)))
        db.executemany("UPDATE edit_log SET undone = 0 WHERE id = ?", [(e,) for e in state["reverted"]])
        touched = set(by_gid) | moved_to | set(state["created"]) | {int(g) for g, _ in state["identities"]}
        self.refresh_identities(touched)

    def undo(self) -> Edit | None:
        """Revert the latest correction not yet undone; returns it (None when there is nothing to undo)."""
        row = self._conn.execute(
            "SELECT id, time, action, params, undo FROM edit_log WHERE undone = 0 ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        eid, time, action, params, undo = row
        if eid <= int(self.run_value("carried_upto", 0)):
            raise InputError(
                f"edit {eid}: made on an earlier computation of this run and re-applied to this one; take it "
                f"back in the Review page or with track-review RUN_DIR --undo {eid}"
            )
        p, u = json.loads(params), json.loads(undo)
        with self._transaction() as db:
            if "state" in u:
                self._restore(u["state"])
            elif action == "merge":
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
