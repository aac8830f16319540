"""Corrections survive re-runs: ``track-cameras`` into a run directory that already holds corrected results.

The pipeline writes the new results store into a temporary file and renames it over the old one; between the
two, :func:`carry_edits` reads the old store and carries its edit log (merges, splits, labels, review answers)
into the new one:

* **nothing that association sees changed** (the same tracklets, boxes and embeddings, the same association
  result, config, calibration and code version: the *automatic fingerprint* every store records): the
  corrected state is taken over row for row (identities, labels, evidence, edit log, review questions), so
  the exports come out byte for byte as they were;
* **otherwise** (other settings, other inputs): each old tracklet an edit names is found again in the new run
  by its boxes (same camera, IoU >= 0.5 on at least half the frames of the shorter one), the edit log is
  copied, and the new tracklets are associated again with every edit as a constraint
  (:mod:`tracker.review.constraints`); identities keep the number (and label) of the old identity they share
  the most boxes with. An edit whose tracklets vanished no longer applies: it stays in the log, is reported
  in run.json ``warnings`` and in the app, and constrains nothing.

``output.discard_edits`` (``--discard-edits``) drops them instead, after saving the old edit log as
``RUN_DIR/discarded-edits.json``. A previous store that cannot be read is kept as
``RUN_DIR/results.previous.sqlite``, with a warning, so that no correction is ever lost silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tracker._version import __version__
from tracker.association import associate
from tracker.errors import InputError
from tracker.export import results_path
from tracker.fsutil import RunDir, atomic_write_json
from tracker.geometry import iou_matrix
from tracker.review.constraints import (
    Key,
    active_constraints,
    active_edits,
    describe,
    edit_keys,
    edit_pairs,
    mapped,
    run_setting,
)
from tracker.store import ResultsStore
from tracker.types import Tracklet

log = logging.getLogger(__name__)

MATCH_IOU = 0.5
MATCH_SHARE = 0.5


def auto_fingerprint(tracklets: Sequence[Tracklet], meta: dict) -> str:
    """sha256 of what the automatic association result depends on and is: every tracklet's key, frames,
    boxes (to 0.01 px), embedding and global id, the association config, the calibration file's bytes and the
    code version."""
    h = hashlib.sha256()
    section = (meta.get("config") or {}).get("associate") or {}
    h.update(json.dumps([__version__, section], sort_keys=True, default=str).encode())
    calibration = section.get("calibration")
    if calibration and Path(calibration).is_file():
        h.update(Path(calibration).read_bytes())
    for t in sorted(tracklets, key=lambda t: t.key):
        h.update(f"{t.camera}\0{t.track_id}\0{t.global_id}\0".encode())
        h.update(np.ascontiguousarray(t.frames, np.int64).tobytes())
        h.update(np.round(np.asarray(t.boxes, np.float64), 2).tobytes())
        if t.embedding is not None:
            h.update(np.ascontiguousarray(t.embedding, np.float32).tobytes())
    return h.hexdigest()


def carry_edits(
    previous: str | Path, new: str | Path, tracklets: Sequence[Tracklet], meta: dict
) -> list[str]:
    """Carry the corrections of the store at ``previous`` (the run directory's results.sqlite, about to be
    replaced) into the freshly written store at ``new`` (module docstring).

    ``tracklets``: the run's tracklets as written to ``new``; their ``global_id`` is set to the corrected
    identities (so that the annotated videos show them). ``meta``: the run.json dict; ``warnings`` (edits that
    no longer apply, discarded edits) is extended, ``num_identities`` and ``edits`` (what was carried) set.
    The new store records its automatic fingerprint and the updated meta. Returns the new warnings.
    """
    previous, new = Path(previous), Path(new)
    warnings: list[str] = []
    summary: dict | None = None
    with ResultsStore.open(new) as store:
        store.set_run_value("auto_fingerprint", auto_fingerprint(tracklets, meta))
    if previous.is_file():
        summary = _carry(previous, new, tracklets, meta, warnings)
    with ResultsStore.open(new) as store:
        if summary is not None:
            meta["edits"] = summary
            ids = {t.key: t.global_id for t in store.tracklet_infos()}
            for t in tracklets:
                t.global_id = ids.get(t.key, t.global_id)
            if meta.get("num_identities") is not None:
                meta["num_identities"] = store.count_identities()
        for w in warnings:  # run.json's warnings gain these, once: by the run's log handler, else here
            log.warning("%s", w, extra={"run_warning": {"kind": "edits"}})
        listed = meta.setdefault("warnings", [])
        seen = {e.get("message") if isinstance(e, dict) else e for e in listed}
        listed.extend({"kind": "edits", "message": w} for w in warnings if w not in seen)
        if summary is not None or warnings:
            store.set_run_value("meta", meta)
    return warnings


def _carry(
    previous: Path, new: Path, tracklets: Sequence[Tracklet], meta: dict, warnings: list[str]
) -> dict | None:
    try:
        with ResultsStore.open(previous) as old:  # writable: an older schema is migrated first
            edits = old.edits()
            fingerprint = old.run_value("auto_fingerprint")
            log_rows = [
                {"id": e.id, "time": e.time, "action": e.action, "params": e.params, "undone": e.undone}
                for e in edits
            ]
    except InputError as exc:
        backup = previous.with_name("results.previous.sqlite")
        shutil.copy2(previous, backup)
        warnings.append(
            f"the previous {previous.name} could not be read ({exc}); it was kept as {backup.name} and its "
            "corrections were not carried over"
        )
        return None
    if not edits:
        return None
    if ((meta.get("config") or {}).get("output") or {}).get("discard_edits"):
        saved = previous.with_name("discarded-edits.json")
        atomic_write_json(saved, {"from": str(previous), "edits": log_rows})
        warnings.append(
            f"{len(edits)} correction(s) of the previous run were discarded (output.discard_edits); "
            f"the edit log is saved in {saved.name}"
        )
        return {"carried": 0, "discarded": len(edits)}
    with ResultsStore.open(new) as store:
        if fingerprint is not None and fingerprint == store.run_value("auto_fingerprint"):
            store.adopt_corrections(previous)
            return {"carried": len(edits), "how": "kept as they were (the automatic result is unchanged)"}
    with ResultsStore.open(previous, readonly=True) as old, ResultsStore.open(new) as store:
        return _reapply(old, store, previous, tracklets, warnings)


def _reapply(
    old: ResultsStore, store: ResultsStore, previous: Path, tracklets: Sequence[Tracklet], warnings: list[str]
) -> dict:
    """Copy the edit log, find the edits' tracklets again, re-associate with the edits as constraints."""
    store.copy_edit_log(previous)
    steps = list(old.run_value("tracklet_map", []))
    stale = dict(old.run_value("stale_edits", {}))
    live = [e for e in active_edits(old)]
    wanted = {k2 for e in live for k in edit_keys(e) if (k2 := mapped(old, e, k)) is not None}
    old_members = old.identity_keys([i.global_id for i in old.identities()])
    labelled = {g for g, lbl in ((i.global_id, i.label) for i in old.identities()) if lbl}
    wanted |= {k for g in labelled for k in old_members[g]}
    found = match_tracklets(old, sorted(wanted), tracklets)
    top = max([e.id for e in old.edits()], default=0)
    steps.append(
        {"upto": top, "map": {f"{c}/{t}": None if v is None else list(v) for (c, t), v in found.items()}}
    )
    for e in live:
        reason = _inapplicable(old, e, found)
        if reason:
            stale[str(e.id)] = reason
            warnings.append(f"edit {e.id} ({describe(e)}) no longer applies: {reason}")
    store.set_run_value("tracklet_map", steps)
    store.set_run_value("stale_edits", stale)

    setting = run_setting(store)
    cons = active_constraints(store)
    fresh = store.tracklets(crops=False)
    if setting is not None:
        assoc = associate(fresh, setting.cfg, setting.calibration, cons, setting.frames)
        labels = [int(g) for g in assoc.global_ids]
        evidence = list(assoc.evidence)
    else:
        labels, evidence = _union(fresh, cons)
    clusters: dict[int, list[Key]] = {}
    for t, g in zip(fresh, labels):
        clusters.setdefault(g, []).append(t.key)
    frames = {t.key: len(t) for t in fresh}
    back = {v: k for k, v in found.items() if v is not None}
    old_gid = {k: g for g, ks in old_members.items() for k in ks}
    share: dict[tuple[int, int], int] = {}
    for c, ks in clusters.items():
        for k in ks:
            if k in back and back[k] in old_gid:
                share[(c, old_gid[back[k]])] = share.get((c, old_gid[back[k]]), 0) + frames[k]
    ids: dict[int, int] = {}
    used: set[int] = set()
    for (c, g), _n in sorted(share.items(), key=lambda item: (-item[1], item[0][1], item[0][0])):
        if c not in ids and g not in used:
            ids[c] = g
            used.add(g)
    next_id = max([old.next_global_id(), store.next_global_id()])
    for c in sorted(clusters, key=lambda c: min(clusters[c])):
        if c not in ids:
            ids[c] = next_id
            next_id += 1
    cluster_of = {k: c for c, ks in clusters.items() for k in ks}
    old_labels = {i.global_id: i.label for i in old.identities() if i.label}
    labels_out = {ids[c]: old_labels[ids[c]] for c in clusters if ids[c] in old_labels}
    for g, text in old_labels.items():
        if g in used:
            continue
        hits: dict[int, int] = {}
        for k in old_members[g]:
            if found.get(k) is not None:
                c = cluster_of[found[k]]
                hits[c] = hits.get(c, 0) + frames[found[k]]
        if not hits:
            warnings.append(f"the label '{text}' of identity {g} no longer applies: its tracklets are gone")
            continue
        best = max(hits, key=lambda c: (hits[c], -c))
        labels_out.setdefault(ids[best], text)
    gid_of = {k: ids[c] for k, c in cluster_of.items()}
    for e in evidence:
        e.global_id = ids[cluster_of[e.a]]
    store.replace_identities(gid_of, evidence, labels_out)
    store.set_run_value("carried_upto", top)
    applied = len(live) - sum(1 for e in live if str(e.id) in stale)
    return {
        "carried": len(old.edits()),
        "applied": applied,
        "no_longer_apply": len(live) - applied,
        "how": "re-applied as constraints (the automatic result changed)",
    }


def _inapplicable(old: ResultsStore, edit, found: dict[Key, Key | None]) -> str | None:
    """Why an edit cannot be re-applied to the new tracklets (None: it can)."""

    def gone(k: Key) -> bool:
        k2 = mapped(old, edit, k)
        return k2 is None or found.get(k2) is None

    same, different = edit_pairs(edit)
    pairs = same + different
    if edit.action == "merge" and "keep_tracklets" not in edit.params:
        return "logged by an older version without its tracklets, so it cannot be re-applied"
    if edit.action == "split" and "others" not in edit.params:
        return "logged by an older version without its tracklets, so it cannot be re-applied"
    if edit.action == "answer" and pairs:
        lost = [f"{k[0]}#{k[1]}" for k in pairs[0] if gone(k)]
        return f"{' and '.join(lost)} not in the new run (other settings?)" if lost else None
    if edit.action == "merge":
        keys = {k for p in pairs for k in p}
        left = [k for k in keys if not gone(k)]
        return None if len(left) >= 2 else "its tracklets are not in the new run (other settings?)"
    if edit.action == "split":
        t = (str(edit.params["camera"]), int(edit.params["track_id"]))
        if gone(t):
            return f"{t[0]}#{t[1]} is not in the new run (other settings?)"
        if different and all(gone(b) for _, b in different):
            return "the tracklets it was taken from are not in the new run"
    return None


def match_tracklets(old: ResultsStore, keys: Sequence[Key], new: Sequence[Tracklet]) -> dict[Key, Key | None]:
    """Where each old tracklet ``keys`` (of store ``old``) is among the ``new`` tracklets: the one of the same
    camera whose boxes match it (IoU >= :data:`MATCH_IOU`) on the most frames, when that is at least
    :data:`MATCH_SHARE` of the shorter one's frames; None when there is none."""
    by_cam: dict[str, list[Tracklet]] = {}
    for t in new:
        by_cam.setdefault(t.camera, []).append(t)
    out: dict[Key, Key | None] = {}
    for o in old.tracklets(keys=list(keys), crops=False):
        best, best_share = None, 0.0
        for t in by_cam.get(o.camera, []):
            if t.frames[0] > o.frames[-1] or t.frames[-1] < o.frames[0]:
                continue
            _, io, it = np.intersect1d(o.frames, t.frames, assume_unique=True, return_indices=True)
            if not len(io):
                continue
            hits = sum(
                int(
                    (
                        np.diag(iou_matrix(o.boxes[io[s : s + 256]], t.boxes[it[s : s + 256]])) >= MATCH_IOU
                    ).sum()
                )
                for s in range(0, len(io), 256)
            )
            share = hits / min(len(o), len(t))
            if share > best_share:
                best, best_share = t.key, share
        out[o.key] = best if best_share >= MATCH_SHARE else None
    for k in keys:
        out.setdefault(k, None)
    return out


def _union(tracklets: Sequence[Tracklet], cons) -> tuple[list[int], list]:
    """Identities of a run without association: one per tracklet, joined along the must-links unless a
    cannot-link or one camera seeing both at once forbids it. Returns (label per tracklet, evidence)."""
    index = {t.key: i for i, t in enumerate(tracklets)}
    parent = list(range(len(tracklets)))
    members = [{i} for i in range(len(tracklets))]
    apart = {frozenset((index[a], index[b])) for a, b in cons.different if a in index and b in index}

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    evidence = []
    for a, b in cons.same:
        if a not in index or b not in index:
            continue
        ra, rb = find(index[a]), find(index[b])
        if ra == rb:
            continue
        clash = any(frozenset((x, y)) in apart for x in members[ra] for y in members[rb]) or any(
            tracklets[x].camera == tracklets[y].camera
            and tracklets[x].frames[0] <= tracklets[y].frames[-1]
            and tracklets[y].frames[0] <= tracklets[x].frames[-1]
            for x in members[ra]
            for y in members[rb]
        )
        if clash:
            continue
        parent[rb] = ra
        members[ra] |= members[rb]
        evidence.append(_UserEvidence(a, b))
    return [find(i) + 1 for i in range(len(tracklets))], evidence


class _UserEvidence:
    """A join the reviewer asked for in a run without association (distance unknown)."""

    def __init__(self, a: Key, b: Key):
        self.global_id, self.a, self.b, self.distance, self.terms = 0, a, b, None, {}
        self.reason = f"{a[0]}#{a[1]} and {b[0]}#{b[1]}: merged by user (carried over from the previous run)."


@contextlib.contextmanager
def editing(run_dir: str | Path, holder: str) -> Iterator[ResultsStore]:
    """``RUN_DIR/results.sqlite`` open for a reviewer's correction, under the run directory's writer lock: a
    ``track-cameras`` re-run holds that lock from reading the old store's edits to replacing it, so an edit
    made meanwhile would land in a store about to be replaced. InputError (naming the writer) while another
    writer holds it; the edit is then not made. Export after the block, once the lock is released."""
    with RunDir(run_dir).lock(holder), ResultsStore.open(results_path(run_dir)) as store:
        yield store
