"""Answers and corrections that re-associate the part of the run they affect, and undo.

A change is computed on a **region**: the identities the answer is about, their neighbours (the other
identity of every question about their tracklets, closest first, at most :data:`REGION_MAX` identities in all)
and every identity a must-link ties to them. The region's tracklets are associated again
(:func:`tracker.association.associate`, the run's config with its appearance scale fixed, the calibration,
every constraint of the edit log inside the region) with the region's identities **kept whole** (a must-link
star through each, a cannot-link between each two) except those the answer frees, whose tracklets are
clustered again among themselves (so an answer never moves a tracklet it is not about into another identity;
the neighbours are there to be asked about next):

* ``same`` to two tracklets of different identities: the two identities are joined (both kept whole, the pair
  between them allowed); if a cannot-link forbids it (a wrong member, or a duplicate track), both are freed
  and their tracklets clustered again with the new must-link, so that what does not belong falls away;
* ``different`` to two tracklets of one identity: that identity is freed and re-clustered with the new
  cannot-link (its tracklets among themselves: where a part belongs instead is the next question);
* an answer that agrees with the association, and ``skip``, change no identity;
* a merge joins the two identities exactly; a split takes one tracklet out into an identity of its own;
* taking back an older edit (not the latest, which :meth:`ResultsStore.undo` restores exactly) frees the
  identities its tracklets are in now and re-clusters them without it.

Identities keep their numbers: each new cluster takes the id of the old identity it shares the most boxes
with, new ones get fresh ids (ids only grow), and a label goes with its identity (or, when the identity is
gone, to where most of it went). The questions about every identity that changed are asked anew: its joins,
and a near-miss question against every other identity of the region (both kept whole, see
:func:`tracker.review.queue.pair_questions`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

from tracker.association import Constraints, associate
from tracker.errors import InputError
from tracker.review.constraints import (
    Key,
    Setting,
    active_constraints,
    active_edits,
    describe,
    edit_keys,
    mapped,
    run_setting,
)
from tracker.review.queue import (
    PARTNER_SEARCH_MAX,
    candidate_questions,
    join_distances,
    join_questions,
    pair_questions,
    partner_questions,
    ranked,
)
from tracker.store import Change, Edit, ResultsStore

REGION_MAX = 60
REPLIES = ("same", "different", "skip")
REFILL_BELOW = 10  # fewer open questions than this: look for partners of the identities none is about
REFILL_SEARCH = 40  # identities searched per refill, the largest first


@dataclass(frozen=True)
class Outcome:
    """What an answer or correction did: the edit it made (None when nothing was recorded) and a message in
    plain words for the reviewer."""

    edit_id: int | None
    message: str


def require_setting(store: ResultsStore) -> Setting:
    """The run's :class:`~tracker.review.constraints.Setting`; InputError when association did not run."""
    setting = run_setting(store)
    if setting is None:
        raise InputError(
            f"{store.path}: association did not run for this run (track-cameras --no-associate, or a store "
            "not written by track-cameras), so there is nothing to review; correct it in the Corrections page"
        )
    return setting


# ----------------------------------------------------------------------------------------------------------
# the queue of the whole run


def queue_built(store: ResultsStore) -> bool:
    return bool(store.run_value("review", {}).get("built"))


def build_queue(store: ResultsStore, force: bool = False) -> int:
    """Make the review questions of the whole run, once (``force``: again): the association of every
    tracklet with every constraint of the edit log gives the near misses, the store's evidence the joins, and
    the largest identities seen by one camera only get a partner search. Returns the number of questions."""
    if queue_built(store) and not force:
        return len(store.questions("open"))
    setting = require_setting(store)
    started = time.perf_counter()
    cons = active_constraints(store)
    tracklets = store.tracklets(crops=False)
    assoc = associate(tracklets, setting.cfg, setting.calibration, cons, setting.frames)
    scale = setting.cfg.appearance_scale or float(assoc.info.get("appearance_scale", 1.0))
    setting = dataclasses.replace(setting, cfg=dataclasses.replace(setting.cfg, appearance_scale=scale))
    gids = [i.global_id for i in store.identities()]
    evidence = {g: store.evidence(g, merge_order=True) for g in gids}
    by_key = {t.key: t for t in tracklets}
    questions = join_questions(evidence, by_key, setting.calibration)
    joins = join_distances(e for rows in evidence.values() for e in rows)
    questions += candidate_questions(assoc, tracklets, joins, setting.cfg.threshold, setting.calibration)
    boxes = store.identity_boxes()
    lonely = sorted(
        (i for i in store.identities(min_cameras=1) if i.num_cameras == 1), key=lambda i: -boxes[i.global_id]
    )
    questions += partner_questions(store, setting, [i.global_id for i in lonely[:PARTNER_SEARCH_MAX]], cons)
    state = {
        "built": True,
        "appearance_scale": scale,
        "questions": len(questions),
        "seconds": round(time.perf_counter() - started, 3),
    }
    store.replace_questions(questions, state)
    return len(questions)


def refill(store: ResultsStore, focus: set[int] = frozenset(), edit_id: int | None = None) -> int:
    """Look for new partners (:func:`tracker.review.queue.partner_questions`) of the identities ``focus``
    (those an answer just left apart or joined), and, when fewer than :data:`REFILL_BELOW` questions are
    open, of the largest identities no open question is about. Pairs that have an open question or that the
    reviewer separated are passed over, so each search looks further down an identity's list. The questions
    are added to the queue (derived data; with ``edit_id`` they belong to that edit and go with its undo).
    Returns how many were added."""
    setting = require_setting(store)
    items = ranked(store, setting.cfg.threshold)
    todo = [g for g in sorted(focus) if store.identity(g) is not None]
    if len(items) < REFILL_BELOW:
        asked = {g for r in items for g in r.global_ids}
        boxes = store.identity_boxes()
        rest = sorted((g for g in boxes if g not in asked and g not in todo), key=lambda g: (-boxes[g], g))
        todo += rest[:REFILL_SEARCH]
    if not todo:
        return 0
    pairs = {frozenset(r.global_ids) for r in items}
    cons = active_constraints(store)
    rows = partner_questions(store, setting, todo, cons, pairs, lonely_only=False)
    stated = {frozenset(p) for p in cons.same + cons.different}
    rows = [r for r in rows if frozenset((r[1], r[2])) not in stated]
    store.add_questions(rows, edit_id)
    return len(rows)


# ----------------------------------------------------------------------------------------------------------
# one region


def _region(store: ResultsStore, gids: set[int], cons: Constraints) -> dict[int, list[Key]]:
    """``{global_id: keys}`` of the identities ``gids`` and their neighbours (module docstring)."""
    members = store.identity_keys(sorted(gids))
    keys = [k for ks in members.values() for k in ks]
    near: dict[int, float] = {}
    for q in store.questions_about(keys):
        for k in (q.a, q.b):
            g = store.global_ids_of([k]).get(k)
            if g is not None and g not in members:
                d = q.distance if q.distance is not None and math.isfinite(q.distance) else math.inf
                near[g] = min(near.get(g, math.inf), d)
    room = max(0, REGION_MAX - len(members))
    members.update(store.identity_keys(sorted(near, key=lambda g: (near[g], g))[:room]))
    while True:  # every identity a must-link ties to the region, or the region could not honour it
        inside = {k for ks in members.values() for k in ks}
        tied = {b for a, b in cons.same if a in inside and b not in inside}
        tied |= {a for a, b in cons.same if b in inside and a not in inside}
        more = set(store.global_ids_of(sorted(tied)).values()) - set(members)
        if not more:
            return members
        members.update(store.identity_keys(sorted(more)))


@dataclass
class _Result:
    clusters: dict[int, list[Key]]  # new global id -> keys
    change: Change
    merged: bool  # whether the pair asked to be together is


def _reassociate(
    store: ResultsStore,
    setting: Setting,
    cons: Constraints,
    members: dict[int, list[Key]],
    frozen: list[tuple[int, list[Key]]],
    allow: set[frozenset[int]] = frozenset(),
    together: tuple[Key, Key] | None = None,
    prefer: dict[Key, int] | None = None,
    seeds: list[tuple[Key, Key]] = (),
    open_to: int | None = None,
) -> _Result:
    """Associate the region ``members`` again with the groups ``frozen`` (``(old id, keys)``) kept whole
    and apart from each other (but the pairs of group indices in ``allow``), and the rest free, clustered
    among themselves (and with frozen group ``open_to``, when given); turn the result into a
    :class:`Change`. ``seeds``: must-links for this association only (joined first where no cannot-link
    forbids it); ``together``: the pair asked to be joined; ``prefer``: the id the cluster holding a key
    keeps (a merge keeps its id)."""
    keys = [k for ks in members.values() for k in ks]
    inside = set(keys)
    tracklets = store.tracklets(keys=keys, crops=False)
    same = [p for p in cons.same if p[0] in inside and p[1] in inside]
    different = [p for p in cons.different if p[0] in inside and p[1] in inside]
    for _, group in frozen:
        same += [(group[0], k) for k in group[1:]]
    for i in range(len(frozen)):
        for j in range(i + 1, len(frozen)):
            if frozenset((i, j)) not in allow:
                different.append((frozen[i][1][0], frozen[j][1][0]))
    held = {k for _, group in frozen for k in group}
    for k in keys:  # the freed tracklets are clustered among themselves: no frozen identity changes
        if k not in held:
            different += [(k, group[0]) for i, (_, group) in enumerate(frozen) if i != open_to]
    same += list(seeds)
    region = Constraints(tuple(same), tuple(different))
    assoc = associate(tracklets, setting.cfg, setting.calibration, region, setting.frames)
    label = {t.key: int(g) for t, g in zip(tracklets, assoc.global_ids)}
    found: dict[int, list[Key]] = {}
    for t in tracklets:
        found.setdefault(label[t.key], []).append(t.key)
    old = {k: g for g, ks in members.items() for k in ks}
    frames = {t.key: len(t) for t in tracklets}
    ids = _assign_ids(found, old, frames, store.next_global_id(), prefer or {})
    clusters = {ids[c]: ks for c, ks in found.items()}
    changed = {g for g, ks in clusters.items() if set(ks) != set(members.get(g, []))}
    vanished = set(members) - set(clusters)

    change = Change()
    change.tracklets = {k: g for g, ks in clusters.items() for k in ks if old[k] != g}
    labels = {g: store.identity(g).label for g in members}
    for g in sorted(vanished):
        if labels.get(g):
            share = {c: sum(frames[k] for k in ks if old[k] == g) for c, ks in clusters.items()}
            target = max(share, key=lambda c: (share[c], -c))
            if not labels.get(target) and target not in change.labels:
                change.labels[target] = labels[g]
    change.evidence_of = changed | vanished
    group_of = {k: i for i, (_, group) in enumerate(frozen) for k in group}
    rows = []
    for g in sorted(changed):
        ks = set(clusters[g])
        for old_id, group in frozen:  # frozen groups inside keep their evidence
            if set(group) <= ks:
                rows += [
                    _record(g, e.a, e.b, e.distance, e.terms, e.reason)
                    for e in store.evidence(old_id, merge_order=True)
                    if e.a in ks and e.b in ks
                ]
        c = label[clusters[g][0]]
        for e in assoc.evidence:
            if e.global_id != c or (e.a in group_of and group_of.get(e.a) == group_of.get(e.b)):
                continue  # another cluster, or a merge that only kept a frozen group whole
            distance = None if not math.isfinite(e.distance) else float(e.distance)
            rows.append(_record(g, e.a, e.b, distance, e.terms, e.reason))
    change.evidence = rows
    touched = [k for g in changed for k in clusters[g]]
    change.drop_questions = [q.id for q in store.questions_about(touched) if q.status == "open"]
    by_gid: dict[int, list] = {}
    for r in rows:
        by_gid.setdefault(r.global_id, []).append(r)
    change.questions = join_questions(by_gid, {t.key: t for t in tracklets}, setting.calibration)
    joins = join_distances(rows)
    for g in set(clusters) - changed:
        joins.update(join_distances(store.evidence(g, merge_order=True)))
    change.questions += pair_questions(tracklets, setting, clusters, changed, cons, joins)
    merged = together is None or (together[0] in label and label[together[0]] == label.get(together[1]))
    return _Result(clusters, change, merged)


@dataclass(frozen=True)
class _Record:
    """An evidence record as :meth:`ResultsStore.apply_change` takes it."""

    global_id: int
    a: Key
    b: Key
    distance: float | None
    terms: dict
    reason: str


def _record(g, a, b, distance, terms, reason) -> _Record:
    return _Record(int(g), a, b, distance, dict(terms), reason)


def _assign_ids(
    found: dict[int, list[Key]],
    old: dict[Key, int],
    frames: dict[Key, int],
    next_id: int,
    prefer: dict[Key, int],
) -> dict[int, int]:
    """Cluster label -> global id: a preferred id first, then each old id to the cluster sharing the most
    boxes with it (largest overlaps first), fresh ids for the rest in order of their first tracklet."""
    out: dict[int, int] = {}
    used: set[int] = set()
    for k, g in prefer.items():
        for c, ks in found.items():
            if k in ks and c not in out and g not in used:
                out[c] = g
                used.add(g)
    share: dict[tuple[int, int], int] = {}
    for c, ks in found.items():
        for k in ks:
            share[(c, old[k])] = share.get((c, old[k]), 0) + frames[k]
    for (c, g), _n in sorted(share.items(), key=lambda item: (-item[1], item[0][1], item[0][0])):
        if c not in out and g not in used:
            out[c] = g
            used.add(g)
    for c in sorted(found, key=lambda c: min(found[c])):
        if c not in out:
            out[c] = next_id
            next_id += 1
    return out


def _frozen(members: dict[int, list[Key]], free: set[int]) -> list[tuple[int, list[Key]]]:
    return [(g, ks) for g, ks in sorted(members.items()) if g not in free]


def _describe_change(before: dict[int, list[Key]], after: dict[int, list[Key]]) -> str:
    """The identities a change made, in words: which were joined (wholly, or some of their tracklets),
    which split."""
    old = {k: g for g, ks in before.items() for k in ks}
    new = {k: g for g, ks in after.items() for k in ks}
    parts, partial = [], set()
    for g, ks in sorted(after.items()):
        sources = sorted({old[k] for k in ks})
        if len(sources) < 2:
            continue
        if all(set(before[s]) <= set(ks) for s in sources):
            parts.append(f"identities {_and(sources)} are now identity {g}")
            continue
        whole = [s for s in sources if set(before[s]) <= set(ks)]
        some = [s for s in sources if s not in whole]
        partial |= set(some)

        names = {s: _and(f"{c}#{t}" for c, t in [k for k in ks if old[k] == s][:4]) for s in some}
        if whole == [g]:  # an identity that took tracklets from others
            parts += [f"{names[s]} of identity {s} joined identity {g}" for s in some]
        else:
            pieces = [f"identity {s}" for s in whole] + [f"{names[s]} of identity {s}" for s in some]
            parts.append(f"identity {g} is now {_and(pieces)}")
    for g, ks in sorted(before.items()):
        targets = sorted({new[k] for k in ks})
        if len(targets) > 1 and g not in partial:
            parts.append(f"identity {g} is now identities {_and(targets)}")
        elif len(targets) == 1 and targets[0] != g and len({old[k] for k in after[targets[0]]}) == 1:
            parts.append(f"identity {g} is now identity {targets[0]}")
    return "; ".join(parts) if parts else "no identity changed"


def _and(items) -> str:
    items = [str(i) for i in items]
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ----------------------------------------------------------------------------------------------------------
# answers and corrections


def answer(store: ResultsStore, question_id: int, reply: str) -> Outcome:
    """Record a reviewer's answer (same | different | skip) to an open question, re-associate what it
    affects (module docstring), and return what changed."""
    if reply not in REPLIES:
        raise InputError(f"answer '{reply}': must be one of {', '.join(REPLIES)}")
    q = store.question(question_id)
    if q is None:
        raise InputError(f"question {question_id}: no such question in {store.path}")
    if q.status == "answered":
        raise InputError(
            f"question {question_id}: already answered (edit {q.edit_id}); undo that edit to answer it again"
        )
    setting = require_setting(store)
    gid = store.global_ids_of([q.a, q.b])
    if q.a not in gid or q.b not in gid:
        raise InputError(f"question {question_id}: its tracklets are no longer in {store.path}")
    ga, gb = gid[q.a], gid[q.b]
    params = {
        "question": q.id,
        "kind": q.kind,
        "a": list(q.a),
        "b": list(q.b),
        "answer": reply,
        "global_ids": [ga, gb],
        "distance": q.distance,
        "terms": q.terms,
    }
    pair = f"{q.a[0]}#{q.a[1]} and {q.b[0]}#{q.b[1]}"
    said = {"same": "the same person", "different": "different people"}.get(reply)
    if reply == "skip" or (reply == "same") == (ga == gb):
        eid = store.apply_change("answer", params, Change(answer=q.id))
        what = (
            f"Skipped the question about {pair}." if reply == "skip" else f"{pair} are {said}: as associated."
        )
        return Outcome(eid, what)
    pseudo = Edit(10**12, "", "answer", params, False)
    cons = active_constraints(store, extra=[pseudo])
    members = _region(store, {ga, gb}, cons)
    if reply == "same":
        frozen = _frozen(members, set())
        index = {g: i for i, (g, _) in enumerate(frozen)}
        result = _reassociate(
            store, setting, cons, members, frozen, {frozenset((index[ga], index[gb]))}, together=(q.a, q.b)
        )
        if not result.merged:  # a cannot-link keeps them apart: free both, so that what is wrong falls away
            both = _frozen(members, {ga, gb})
            result = _reassociate(store, setting, cons, members, both, together=(q.a, q.b))
    else:
        result = _reassociate(store, setting, cons, members, _frozen(members, {ga}))
    result.change.answer = q.id
    eid = store.apply_change("answer", params, result.change)
    refill(store, {g for g, ks in result.clusters.items() if set(ks) != set(members.get(g, []))}, eid)
    return Outcome(eid, f"{pair} are {said}: {_describe_change(members, result.clusters)}.")


def merge(store: ResultsStore, keep: int, other: int) -> Outcome:
    """Merge identity ``other`` into ``keep``: directly when the run cannot be re-associated, else as a
    re-association of their region with the two kept whole and joined (module docstring)."""
    keep, other = int(keep), int(other)
    setting = run_setting(store)
    if setting is None:
        return Outcome(store.merge(keep, other), f"Merged identity {other} into {keep}.")
    store.check_merge(keep, other)
    both = store.identity_keys([keep, other])
    params = {"keep": keep, "other": other, "keep_tracklets": both[keep], "other_tracklets": both[other]}
    cons = active_constraints(store, extra=[Edit(10**12, "", "merge", params, False)])
    members = _region(store, {keep, other}, cons)
    frozen = _frozen(members, set())
    index = {g: i for i, (g, _) in enumerate(frozen)}
    result = _reassociate(
        store,
        setting,
        cons,
        members,
        frozen,
        {frozenset((index[keep], index[other]))},
        together=(both[keep][0], both[other][0]),
        prefer={both[keep][0]: keep},
    )
    if not result.merged:
        raise InputError(
            f"identities {keep} and {other}: the association cannot make them one person (seen at the same "
            "time by cameras whose views do not overlap, or far apart on the ground)"
        )
    eid = store.apply_change("merge", params, result.change)
    return Outcome(eid, f"Merged identity {other} into {keep}.")


def split(store: ResultsStore, camera: str, track_id: int) -> Outcome:
    """Take tracklet ``(camera, track_id)`` out of its identity into a new one (directly, or as a
    re-association when the run allows, so that its questions are asked anew)."""
    setting = run_setting(store)
    if setting is None:
        new = store.split(camera, track_id)
        return Outcome(store.edits()[-1].id, f"{camera}#{track_id} is now identity {new}.")
    t = (str(camera), int(track_id))
    old = store.check_split(*t)
    others = [k for k in store.identity_keys([old])[old] if k != t]
    params = {"camera": t[0], "track_id": t[1], "from": old, "others": others}
    cons = active_constraints(store, extra=[Edit(10**12, "", "split", params, False)])
    members = _region(store, {old}, cons)
    frozen = [(g, [k for k in ks if k != t]) for g, ks in sorted(members.items())] + [(-1, [t])]
    result = _reassociate(store, setting, cons, members, frozen, prefer={others[0]: old})
    new = next(g for g, ks in result.clusters.items() if t in ks)
    params["new"] = new
    eid = store.apply_change("split", params, result.change)
    return Outcome(eid, f"{t[0]}#{t[1]} is now identity {new} (taken out of identity {old}).")


def label(store: ResultsStore, global_id: int, text: str) -> Outcome:
    """Name an identity (empty text clears the label)."""
    eid = store.set_label(global_id, text)
    text = " ".join(str(text).split())
    return Outcome(
        eid,
        f"Identity {global_id} is labelled '{text}'."
        if text
        else f"Cleared the label of identity {global_id}.",
    )


def undo(store: ResultsStore, edit_id: int | None = None) -> Outcome:
    """Take back an edit: the latest (``edit_id`` None or the latest's id) exactly as it was; an older
    answer, merge or split by re-associating what it touched without it (module docstring)."""
    live = [e for e in store.edits() if not e.undone]
    if not live:
        return Outcome(None, "Nothing to undo.")
    if edit_id is None or int(edit_id) == live[-1].id:
        latest = live[-1]
        store.undo()
        return Outcome(latest.id, f"Undid: {describe(latest)}.")
    target = next((e for e in store.edits() if e.id == int(edit_id)), None)
    if target is None:
        raise InputError(f"edit {edit_id}: no such edit in {store.path}")
    if target.undone:
        raise InputError(f"edit {edit_id}: already undone")
    if target.action not in ("answer", "merge", "split"):
        raise InputError(
            f"edit {edit_id} ({target.action}): only the latest correction of this kind can be undone; "
            "set the label again instead"
        )
    if target not in active_edits(store):
        raise InputError(f"edit {edit_id}: no longer applies to this run, so there is nothing to undo")
    setting = require_setting(store)
    keys = [k for k in (mapped(store, target, k) for k in edit_keys(target)) if k is not None]
    gids = set(store.global_ids_of(keys).values())
    cons = active_constraints(store, exclude={target.id})
    members = _region(store, gids, cons)
    result = _reassociate(store, setting, cons, members, _frozen(members, gids))
    change = result.change
    change.revert = [target.id]
    if target.action == "answer":
        asked = store.question(int(target.params.get("question", -1)))
        if asked is not None and asked.edit_id == target.id:
            change.reopen = [asked.id]
            change.drop_questions = [q for q in change.drop_questions if q != asked.id]
    eid = store.apply_change(
        "revert", {"edit": target.id, "action": target.action, "what": describe(target)}, change
    )
    return Outcome(
        eid, f"Took back edit {target.id} ({describe(target)}): {_describe_change(members, result.clusters)}."
    )
