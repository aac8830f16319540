"""The edit log as association constraints, and what re-associating a run needs from its store.

Every correction says something about tracklets, which is what survives a re-association (identity numbers do
not): a review answer ``same`` / ``different`` is a must-link / cannot-link between its two tracklets; a merge
is a must-link from the first tracklet of the kept identity to every tracklet of both identities (what the
person saw and accepted); a split is a cannot-link between the tracklet taken out and each tracklet it was
taken from. Skips and labels constrain nothing (labels follow their identity, see :mod:`.reassociate`). Where
two statements disagree the later one wins: a must-link drops the earlier cannot-links it contradicts, and a
cannot-link, being hard, refuses any must-link that would join its pair (:func:`tracker.association.associate`
joins must-links first, unless a cannot-link forbids it).

After a run was computed again with other settings, the tracklets of older edits are found again by their
boxes (:mod:`.carry`); ``run`` key ``tracklet_map`` records where each went, per range of edit ids, and
:func:`active_constraints` applies it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from tracker.association import Constraints
from tracker.calibration import Calibration, load_calibration
from tracker.config import AssociateConfig, from_dict
from tracker.errors import InputError
from tracker.store import Edit, ResultsStore

Key = tuple[str, int]
Pair = tuple[Key, Key]


def key(value) -> Key:
    """A ``(camera, track_id)`` key from its JSON form (a two-item list)."""
    return (str(value[0]), int(value[1]))


def edit_pairs(edit: Edit) -> tuple[list[Pair], list[Pair]]:
    """``(same pairs, different pairs)`` one edit states, as recorded (before any tracklet map)."""
    p = edit.params
    if edit.action == "answer":
        pair = (key(p["a"]), key(p["b"]))
        return (
            ([pair], [])
            if p["answer"] == "same"
            else ([], [pair])
            if p["answer"] == "different"
            else ([], [])
        )
    if edit.action == "merge":
        keys = [key(k) for k in p.get("keep_tracklets", [])] + [key(k) for k in p.get("other_tracklets", [])]
        return [(keys[0], k) for k in keys[1:]], []  # none for a merge an older version logged
    if edit.action == "split":
        t = (str(p["camera"]), int(p["track_id"]))
        return [], [(t, key(o)) for o in p.get("others", [])]
    return [], []


def edit_keys(edit: Edit) -> list[Key]:
    """The tracklets an edit is about (for labels: the identity's tracklets when it was labelled)."""
    same, different = edit_pairs(edit)
    keys = [k for pair in same + different for k in pair]
    if edit.action == "label":
        keys += [key(k) for k in edit.params.get("tracklets", [])]
    if edit.action == "split":
        keys.append((str(edit.params["camera"]), int(edit.params["track_id"])))
    return list(dict.fromkeys(keys))


def mapped(store: ResultsStore, edit: Edit, k: Key) -> Key | None:
    """Where tracklet ``k`` of ``edit`` is in this store now: itself, or where a re-run with other settings
    found it again (None: it vanished)."""
    for step in store.run_value("tracklet_map", []):
        if edit.id <= step["upto"]:
            found = step["map"].get(f"{k[0]}/{k[1]}", [k[0], k[1]])
            if found is None:
                return None
            k = key(found)
    return k


def active_edits(store: ResultsStore) -> list[Edit]:
    """The edits in force: not undone, not reverted, not found inapplicable after a re-run."""
    stale = set(store.run_value("stale_edits", {}))
    return [e for e in store.edits() if not e.undone and str(e.id) not in stale]


def active_constraints(
    store: ResultsStore, exclude: set[int] = frozenset(), extra: list[Edit] = ()
) -> Constraints:
    """The constraints of every edit in force (but those in ``exclude``) and then of ``extra`` (an edit
    about to be made), in today's tracklets, later statements winning (module docstring)."""
    same: list[Pair] = []
    different: list[Pair] = []
    group: dict[Key, int] = {}  # must-link groups so far: tracklet -> group number

    def members(k: Key) -> set[Key]:
        return {x for x, g in group.items() if g == group[k]} if k in group else {k}

    for edit in active_edits(store) + list(extra):
        if edit.id in exclude:
            continue
        s, d = edit_pairs(edit)
        for a, b in d:
            a, b = mapped(store, edit, a), mapped(store, edit, b)
            if a is not None and b is not None and a != b:
                different.append((a, b))
        for a, b in s:
            a, b = mapped(store, edit, a), mapped(store, edit, b)
            if a is None or b is None or a == b:
                continue
            ga, gb = members(a), members(b)
            if ga != gb:  # a must-link takes back the earlier cannot-links between the two groups
                different = [
                    (x, y) for x, y in different if not ((x in ga and y in gb) or (x in gb and y in ga))
                ]
            number = len(group) + 1
            for x in ga | gb:
                group[x] = number
            same.append((a, b))
    return Constraints(tuple(dict.fromkeys(same)), tuple(dict.fromkeys(different)))


def describe(edit: Edit) -> str:
    """One edit in plain words, as the edit log shows it."""
    p = edit.params

    def pair() -> str:
        return f"{p['a'][0]}#{p['a'][1]} and {p['b'][0]}#{p['b'][1]}"

    if edit.action == "answer":
        if p["answer"] == "skip":
            return f"skipped the question about {pair()}"
        return f"answered: {pair()} are " + (
            "the same person" if p["answer"] == "same" else "different people"
        )
    if edit.action == "merge":
        return f"merged identity {p['other']} into {p['keep']}"
    if edit.action == "split":
        new = f" (now identity {p['new']})" if "new" in p else ""
        return f"took {p['camera']}#{p['track_id']} out of identity {p['from']}{new}"
    if edit.action == "label":
        text = p.get("label", "")
        return (
            f"labelled identity {p['global_id']} '{text}'"
            if text
            else f"cleared the label of identity {p['global_id']}"
        )
    if edit.action == "revert":
        return f"took back edit {p['edit']} ({p.get('what', p.get('action', ''))})"
    return edit.action


@dataclass(frozen=True)
class Setting:
    """What re-associating part of a run needs: the run's association config (``appearance_scale`` fixed to
    the value the whole run measured, so that a part is scored as the whole was), its calibration, warnings
    about how they were found (one line each) and the cameras' frame sizes (``{camera: (width, height)}``, as
    the run gave them to association)."""

    cfg: AssociateConfig
    calibration: Calibration | None
    warnings: tuple[str, ...] = ()
    frames: dict[str, tuple[int, int]] = field(default_factory=dict)


def run_setting(store: ResultsStore) -> Setting | None:
    """The run's :class:`Setting`, or None when association did not run (``--no-associate``, or a store not
    written by track-cameras): such a run's identities are corrected by direct edits only."""
    meta = store.meta()
    section = (meta.get("config") or {}).get("associate")
    if not section or not store.associated():
        return None
    cfg = from_dict(AssociateConfig, section, f"{store.path}: stored config")
    if not cfg.enabled:
        return None
    scale = (meta.get("association") or {}).get("appearance_scale") or store.run_value("review", {}).get(
        "appearance_scale"
    )
    if scale:
        cfg = dataclasses.replace(cfg, appearance_scale=float(scale))
    names = [c.name for c in store.cameras()]
    warnings: list[str] = []
    calibration = None
    if cfg.calibration and Path(cfg.calibration).is_file():
        try:
            calibration = load_calibration(cfg.calibration).for_cameras(names)
        except InputError as exc:
            warnings.append(f"calibration: {exc}; using the homographies stored with the run")
    elif cfg.calibration:
        warnings.append(
            f"calibration {cfg.calibration}: not found; using the homographies stored with the run "
            "(which views overlap is unknown)"
        )
    if calibration is None:
        stored = {c.name: c.homography for c in store.cameras() if c.homography is not None}
        calibration = Calibration(stored, None, "results store") if stored else None
    frames = {c.name: (c.width, c.height) for c in store.cameras()}
    return Setting(cfg, calibration, tuple(warnings), frames)
