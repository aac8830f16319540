"""The review queue: which pairs of tracklets to ask a person about, and in which order.

Questions come from the association's least certain decisions, each about two tracklets ``a`` and ``b``:

* **join**: a merge of two groups of tracklets (its evidence: the closest pair, the average-linkage distance):
  were they right to be joined?
* **near_miss**: two identities linked by an edge but left apart (:class:`tracker.association.Candidate`),
  the closest tracklet pair between them; or, for any identity, a plausible partner the association did not
  link (:func:`partner_questions`);
* **fit**: a near miss where ``a`` or ``b`` was itself only weakly joined to its own identity, so it fits the
  other identity almost as well;
* **one_camera**: an identity seen by one camera only and an identity seen by another camera that it could be
  a piece of (:func:`partner_questions`: the association's average-linkage distance with both kept whole).

The whole run's questions are made once (:func:`tracker.review.reassociate.build_queue`); an answer makes
those about the identities it changed (their joins, a near miss against each neighbour), and when an answer
rules a partner out, or the queue runs low, the next plausible partners are looked for
(:func:`tracker.review.reassociate.refill`).

**Order: by how many boxes an answer is expected to move to another identity.** An answer changes the
identities only when it contradicts the association: ``different`` to a join splits the two groups it joined
(``size``: the smaller group's boxes at that merge), ``same`` to any other kind joins the two identities (the
smaller one's boxes). The chance of a contradiction is the :class:`AnswerModel`'s: before any answer the
decision's distance ``d`` against the threshold ``t`` (``1 / (1 + exp((d - t) / (t / 4)))``, a coin toss at
the threshold, 98 % sure a full threshold away), the association's joins trusted a little more, and on
calibrated cameras a walk between the two tracklets at an implausible pace trusted less; then whatever this
run's answers teach it. A question's priority is ``(1 - p_same) * size`` for a join and ``p_same * min(boxes
of the two identities)`` for the others, halved for two identities that a reviewer's cannot-link keeps apart
(only a wrong member of one of them would let them join). Questions whose decision has changed under them (a
join whose tracklets are no longer together, a near miss since joined) and pairs the reviewer already spoke
about are not asked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tracker.association import Association, Constraints, associate
from tracker.geometry import foot_points, to_ground
from tracker.review.constraints import Key, Setting, active_constraints, active_edits
from tracker.store import EvidenceRow, Question, ResultsStore
from tracker.types import Tracklet

KINDS = ("join", "near_miss", "fit", "one_camera")
TITLES = {
    "join": "Joined close to the threshold",
    "near_miss": "Left apart, but close",
    "fit": "Fits another identity almost as well",
    "one_camera": "Seen by one camera only; a plausible partner elsewhere",
}
FIT_MARGIN = 0.15  # of the threshold: a near miss this close to the tracklet's own join is a "fit"
PARTNERS = 8  # partner candidates of an identity, by appearance, measured exactly by the association
PARTNERS_ASKED = 2  # of which this many, the likeliest to change the identities, are asked about
PARTNER_SEARCH_MAX = 300  # one-camera identities searched (the largest) when the whole queue is built
WALKING_SPEED = 1.3  # m/s: a pedestrian's typical pace
PACE_MIN_GAP = 2.0  # seconds: over shorter gaps the ground positions' error swamps the pace
QuestionRow = tuple  # (kind, a, b, distance, size, reason, terms), as tracker.store.Change.questions


def p_same(distance: float | None, threshold: float) -> float:
    """Probability that a near miss at ``distance`` is one person, before any answer (module docstring)."""
    return AnswerModel(threshold).p_same("near_miss", ("a", 0), ("b", 0), distance)


class AnswerModel:
    """``p_same`` of a question, learned from this run's answers.

    Logistic: ``logit p = b0 + b_join [a join] + b_camera [both tracklets in one camera] + b_lonely [a
    one_camera question] + b_z z + b_fast fast + b_slow slow`` with ``z = (distance - threshold) / (threshold
    / 4)``, and ``fast`` / ``slow`` how many times (natural log) faster / slower than a pedestrian's typical
    1.3 m/s the straight walk from one tracklet to the other would be (both 0 when unknown: uncalibrated, or a
    gap under 2 s). Before any answer the coefficients are their prior means ``(0, 1, 0, 0.5, -1, -2.5,
    -0.5)``: the distance against the threshold (the module docstring's formula), the association's joins and
    one-camera identities' partners trusted a little more, a walk at twice the usual pace cutting the odds
    about six times (people rarely run between cameras; slower is common: they stop or take a detour). Each
    answer (same: 1, different: 0; skips are left out) moves them by maximum a posteriori fitting with
    Gaussian priors (standard deviations 1, 1, 1.5, 1, 0.5, 1, 1), so that the queue learns what this footage
    is like: for example that people rarely come back to the same camera (or often do), or that the
    appearance distances between its cameras run high.
    """

    PRIOR_MEAN = np.array([0.0, 1.0, 0.0, 0.5, -1.0, -2.5, -0.5])
    PRIOR_SD = np.array([1.0, 1.0, 1.5, 1.0, 0.5, 1.0, 1.0])

    def __init__(
        self, threshold: float, answers: Sequence[tuple[str, Key, Key, float | None, dict, bool]] = ()
    ):
        self.threshold = threshold
        self.coef = self.PRIOR_MEAN.copy()
        rows = [(self._x(k, a, b, d, t), float(y)) for k, a, b, d, t, y in answers]
        if rows:
            x = np.array([r[0] for r in rows])
            y = np.array([r[1] for r in rows])
            var = self.PRIOR_SD**2
            for _ in range(25):  # Newton steps on the log posterior (concave)
                p = 1.0 / (1.0 + np.exp(-np.clip(x @ self.coef, -50, 50)))
                grad = x.T @ (y - p) - (self.coef - self.PRIOR_MEAN) / var
                hess = -(x.T * (p * (1 - p))) @ x - np.diag(1.0 / var)
                step = np.linalg.solve(hess, grad)
                self.coef = self.coef - step
                if np.abs(step).max() < 1e-6:
                    break

    def _x(self, kind: str, a: Key, b: Key, distance: float | None, terms: dict | None) -> np.ndarray:
        known = distance is not None and math.isfinite(distance)
        z = (distance - self.threshold) / (self.threshold / 4) if known else 0.0
        speed = (terms or {}).get("speed")
        pace = math.log(max(float(speed), 0.05) / WALKING_SPEED) if speed is not None else 0.0
        fast, slow = min(max(pace, 0.0), 3.0), min(max(-pace, 0.0), 3.0)
        return np.array(
            [1.0, kind == "join", a[0] == b[0], kind == "one_camera", np.clip(z, -20, 20), fast, slow],
            np.float64,
        )

    def p_same(self, kind: str, a: Key, b: Key, distance: float | None, terms: dict | None = None) -> float:
        logit = float(np.clip(self._x(kind, a, b, distance, terms) @ self.coef, -50, 50))
        return 1.0 / (1.0 + math.exp(-logit))


def answer_model(store: ResultsStore, threshold: float) -> AnswerModel:
    """The :class:`AnswerModel` of the run's answers in force."""
    answers = [
        (
            e.params.get("kind", "near_miss"),
            tuple(e.params["a"]),
            tuple(e.params["b"]),
            e.params.get("distance"),
            e.params.get("terms") or {},
            e.params["answer"] == "same",
        )
        for e in active_edits(store)
        if e.action == "answer" and e.params["answer"] in ("same", "different")
    ]
    return AnswerModel(threshold, answers)


def name(k: Key) -> str:
    return f"{k[0]}#{k[1]}"


# ----------------------------------------------------------------------------------------------------------
# making questions


def join_questions(
    evidence: dict[int, Sequence[EvidenceRow]], by_key: dict[Key, Tracklet], calibration
) -> list[QuestionRow]:
    """A join question for every merge the association made (reviewer and user merges are not asked about),
    from each identity's evidence rows in merge order; ``size`` is the smaller group's boxes at that merge.
    ``by_key``: the identities' tracklets."""
    frames = {k: len(t) for k, t in by_key.items()}
    out = []
    for rows in evidence.values():
        group: dict[Key, Key] = {}
        boxes: dict[Key, int] = {}

        for e in rows:
            ra, rb = _find(group, e.a), _find(group, e.b)
            sa, sb = boxes.get(ra, frames.get(e.a, 0)), boxes.get(rb, frames.get(e.b, 0))
            if ra != rb:
                group[rb] = ra
                boxes[ra] = sa + sb
            if e.distance is None or not math.isfinite(e.distance) or "(reviewer)" in e.reason:
                continue
            terms = pair_terms(by_key[e.a], by_key[e.b], calibration)
            out.append(("join", e.a, e.b, float(e.distance), min(sa, sb), e.reason, terms))
    return out


def pair_terms(ta: Tracklet, tb: Tracklet, calibration) -> dict:
    """What the queue orders by besides the distance: ``gap``, seconds from the end of the earlier tracklet to
    the start of the later one (negative: seen at the same time), and, when both cameras are calibrated and
    the gap is at least :data:`PACE_MIN_GAP`, ``speed``: the straight-line pace on the ground (m/s) from where
    the earlier one was last seen to where the later one was first seen."""
    first, second = sorted((ta, tb), key=lambda t: (t.start_time, t.key))
    gap = float(second.start_time - first.end_time)
    out: dict = {"gap": round(gap, 3)}
    homographies = getattr(calibration, "homographies", None) or {}
    if gap >= PACE_MIN_GAP and first.camera in homographies and second.camera in homographies:
        end = to_ground(np.linalg.inv(homographies[first.camera]), foot_points(first.boxes[-1:]))[0]
        start = to_ground(np.linalg.inv(homographies[second.camera]), foot_points(second.boxes[:1]))[0]
        metres = float(np.linalg.norm(start - end))
        if math.isfinite(metres):
            out["speed"] = round(metres / gap, 3)
    return out


def _find(group: dict[Key, Key], k: Key) -> Key:
    while group.get(k, k) != k:
        k = group[k]
    return k


def _pair_words(ta: Tracklet, tb: Tracklet) -> str:
    """How two tracklets relate, in words: appearance distance and when each camera sees them."""
    parts = []
    if ta.embedding is not None and tb.embedding is not None:
        parts.append(f"appearance distance {1.0 - float(np.dot(ta.embedding, tb.embedding)):.2f}")
    else:
        parts.append("no appearance to compare")
    first, second = sorted((ta, tb), key=lambda t: t.start_time)
    gap = second.start_time - first.end_time
    if first.camera == second.camera:
        parts.append(f"{first.camera} sees the second {gap:.1f} s after the first ends")
    elif gap <= 0:
        parts.append(f"{first.camera} and {second.camera} see them at the same time")
    else:
        parts.append(f"{second.camera} sees them {gap:.1f} s after {first.camera}")
    return ", ".join(parts)


def candidate_questions(
    assoc: Association,
    tracklets: Sequence[Tracklet],
    join_distance: dict[Key, float],
    threshold: float,
    calibration,
) -> list[QuestionRow]:
    """A near_miss (or fit, or one_camera) question for every candidate pair of ``assoc`` (identities it left
    apart although an edge links them). ``join_distance``: the distance at which each tracklet was joined to
    its identity (for fit)."""
    by_key = {t.key: t for t in tracklets}
    gid = {t.key: int(g) for t, g in zip(tracklets, assoc.global_ids)}
    cameras: dict[int, set[str]] = {}
    count: dict[int, int] = {}
    for t in tracklets:
        cameras.setdefault(gid[t.key], set()).add(t.camera)
        count[gid[t.key]] = count.get(gid[t.key], 0) + 1
    out = []
    for c in assoc.candidates:
        ga, gb = gid[c.a], gid[c.b]
        own = max(join_distance.get(c.a, -math.inf), join_distance.get(c.b, -math.inf))
        out.append(
            near_miss_row(
                c.a,
                c.b,
                c.distance,
                c.edges,
                c.refused,
                by_key,
                (cameras[ga], cameras[gb]),
                (count[ga], count[gb]),
                own,
                threshold,
                calibration,
            )
        )
    return out


def join_distances(evidence: Iterable[EvidenceRow]) -> dict[Key, float]:
    """``{key: distance}``: the largest merge distance each tracklet took part in (how weakly it is held in
    its identity)."""
    out: dict[Key, float] = {}
    for e in evidence:
        if e.distance is None or not math.isfinite(e.distance):
            continue
        for k in (e.a, e.b):
            out[k] = max(out.get(k, -math.inf), float(e.distance))
    return out


def partner_questions(
    store: ResultsStore,
    setting: Setting,
    gids: Iterable[int],
    constraints: Constraints,
    exclude: set[frozenset[int]] = frozenset(),
    lonely_only: bool = True,
) -> list[QuestionRow]:
    """Partner questions for identities of ``gids`` (only those seen by one camera when ``lonely_only``).

    For an identity X: the identities within ``max_gap`` of it (seen by another camera, for a one-camera X)
    that no pair in ``exclude`` and no cannot-link of the reviewer keeps from it; the :data:`PARTNERS` most
    alike in appearance (cosine of the mean embeddings) are joined to it by the association (both kept whole,
    the threshold lifted) for their average-linkage distance and closest pair, and the
    :data:`PARTNERS_ASKED` whose answer is expected to change the most (:class:`AnswerModel` of the answers so
    far, times the smaller identity's boxes) are asked about. Kind one_camera for a one-camera X, else
    near_miss."""
    import dataclasses

    cfg = dataclasses.replace(setting.cfg, threshold=100.0 * setting.cfg.threshold)
    gap = setting.cfg.max_gap if math.isfinite(setting.cfg.max_gap) else math.inf
    model = answer_model(store, setting.cfg.threshold)
    idents = store.identities()
    ids = np.array([i.global_id for i in idents], np.int64)
    first = np.array([i.first_time for i in idents])
    last = np.array([i.last_time for i in idents])
    by_id = {i.global_id: i for i in idents}
    boxes = store.identity_boxes()
    gid_of = {t.key: t.global_id for t in store.tracklet_infos()}
    apart = {frozenset((gid_of.get(a), gid_of.get(b))) for a, b in constraints.different} | set(exclude)
    means: dict[int, np.ndarray | None] = {}

    def mean_of(todo: list[int]) -> None:
        todo = [g for g in todo if g not in means]
        found = store.identity_embeddings(todo)
        for g in todo:
            v = found.get(g)
            means[g] = None if v is None else (m := v.mean(0)) / max(float(np.linalg.norm(m)), 1e-12)

    out = []
    for g in gids:
        ident = by_id.get(g)
        if ident is None or (lonely_only and ident.num_cameras != 1):
            continue
        lonely = ident.num_cameras == 1
        near = (first <= ident.last_time + gap) & (last >= ident.first_time - gap) & (ids != g)
        others = [
            int(o)
            for o in ids[near]
            if frozenset((g, int(o))) not in apart
            and (not lonely or set(by_id[int(o)].cameras) - set(ident.cameras))
        ]
        mean_of([g] + others)
        if means[g] is None:
            continue
        alike = sorted((o for o in others if means[o] is not None), key=lambda o: -float(means[o] @ means[g]))
        members = store.identity_keys([g] + alike[:PARTNERS])
        tracklets = store.tracklets(keys=[k for ks in members.values() for k in ks], crops=False)
        by_key = {t.key: t for t in tracklets}
        scored = []
        for o in alike[:PARTNERS]:
            found = joined(tracklets, cfg, setting, members[g], members[o], constraints)
            if found is None:
                continue
            a, b, distance, edges = found
            kind = "one_camera" if lonely and a[0] != b[0] else "near_miss"
            terms = pair_terms(by_key[a], by_key[b], setting.calibration)
            gain = model.p_same(kind, a, b, distance, terms) * min(boxes.get(g, 0), boxes.get(o, 0))
            scored.append((-gain, o, kind, a, b, distance, edges, terms))
        for _, _, kind, a, b, distance, edges, terms in sorted(scored)[:PARTNERS_ASKED]:
            where = f"Seen by {ident.cameras[0]} only; a" if kind == "one_camera" else f"Identity {g}: a"
            out.append(
                (
                    kind,
                    a,
                    b,
                    distance,
                    0,
                    f"{where} plausible match elsewhere: {name(a)} and {name(b)}, average distance "
                    f"{distance:.2f} over {edges} tracklet pair(s) (the threshold is "
                    f"{setting.cfg.threshold:.2f}); {_pair_words(by_key[a], by_key[b])}.",
                    terms,
                )
            )
    return out


def joined(
    tracklets: Sequence[Tracklet], cfg, setting, xs: list[Key], ys: list[Key], constraints: Constraints
) -> tuple[Key, Key, float, int] | None:
    """The association's merge of two whole identities (tracklet keys ``xs`` and ``ys``, their tracklets
    among ``tracklets``) at ``cfg``: ``(a, b, distance, edges)`` of the evidence that joins them (closest
    pair, average-linkage distance, tracklet pairs with an edge), or None when it cannot (a cannot-link, or no
    edge between them)."""
    inside = set(xs) | set(ys)
    tracklets = [t for t in tracklets if t.key in inside]
    same = [(xs[0], k) for k in xs[1:]] + [(ys[0], k) for k in ys[1:]]
    different = [p for p in constraints.different if p[0] in inside and p[1] in inside]
    cons = Constraints(tuple(same), tuple(different))
    assoc = associate(tracklets, cfg, setting.calibration, cons, setting.frames)
    ids = {t.key: int(i) for t, i in zip(tracklets, assoc.global_ids)}
    if ids[xs[0]] != ids[ys[0]]:
        return None
    side = set(xs)
    for e in assoc.evidence:
        if (e.a in side) != (e.b in side) and math.isfinite(e.distance):
            return e.a, e.b, float(e.distance), int(e.terms.get("edges", 1))
    return None


def near_miss_row(
    a: Key,
    b: Key,
    distance: float,
    edges: int,
    refused: bool,
    by_key: dict[Key, Tracklet],
    identity_cameras: tuple[set[str], set[str]],
    identity_sizes: tuple[int, int],
    own_join: float,
    threshold: float,
    calibration,
) -> QuestionRow:
    """A question about two identities left apart (closest pair ``a``, ``b``), its kind by the rules of the
    module docstring and its reason in words."""
    (ca, cb), (na, nb) = identity_cameras, identity_sizes
    kind = "near_miss"
    if a[0] != b[0] and ((len(ca) == 1 and cb - ca) or (len(cb) == 1 and ca - cb)):
        kind = "one_camera"
    elif max(na, nb) > 1 and distance - own_join <= FIT_MARGIN * threshold:
        kind = "fit"
    why = (
        "a cannot-link between their identities kept them apart"
        if refused
        else (
            f"above the threshold {threshold:.2f}"
            if distance >= threshold
            else f"the threshold is {threshold:.2f}"
        )
    )
    reason = (
        f"{name(a)} and {name(b)} were left apart: average distance {distance:.2f} over {edges} tracklet "
        f"pair(s), {why}; {_pair_words(by_key[a], by_key[b])}."
    )
    if kind == "fit":
        reason += f" One of them was joined to its own identity at {own_join:.2f}."
    if kind == "one_camera":
        lonely = ca if len(ca) == 1 and cb - ca else cb
        reason = f"Seen by {next(iter(lonely))} only. " + reason
    return (kind, a, b, float(distance), 0, reason, pair_terms(by_key[a], by_key[b], calibration))


def pair_questions(
    tracklets: Sequence[Tracklet],
    setting: Setting,
    clusters: dict[int, list[Key]],
    changed: set[int],
    constraints: Constraints,
    join_distance: dict[Key, float],
) -> list[QuestionRow]:
    """Near-miss questions between each identity of ``changed`` and every other identity of ``clusters``
    (``{id: keys}``, the part of the run just re-associated): the pair's average-linkage distance measured by
    the association with both kept whole, asked about when below twice the threshold."""
    import dataclasses

    threshold = setting.cfg.threshold
    cfg = dataclasses.replace(setting.cfg, threshold=2 * threshold)
    by_key = {t.key: t for t in tracklets}
    cams = {g: {k[0] for k in keys} for g, keys in clusters.items()}
    out = []
    for c in sorted(changed):
        for n in sorted(clusters):
            if n == c or (n in changed and n < c):
                continue
            found = joined(tracklets, cfg, setting, clusters[c], clusters[n], constraints)
            if found is None:
                continue
            a, b, distance, edges = found
            own = max(join_distance.get(a, -math.inf), join_distance.get(b, -math.inf))
            sizes = (len(clusters[c]), len(clusters[n]))
            out.append(
                near_miss_row(
                    a,
                    b,
                    distance,
                    edges,
                    False,
                    by_key,
                    (cams[c], cams[n]),
                    sizes,
                    own,
                    threshold,
                    setting.calibration,
                )
            )
    return out


# ----------------------------------------------------------------------------------------------------------
# ranking


@dataclass(frozen=True)
class Ranked:
    """An open question with what answering it is expected to change: ``p_flip`` (the chance the answer
    contradicts the association), ``change`` (boxes that would move) and ``priority = p_flip * change``;
    ``global_ids``: the identities of ``a`` and ``b`` now."""

    question: Question
    p_flip: float
    change: int
    priority: float
    global_ids: tuple[int, int]


def ranked(store: ResultsStore, threshold: float, limit: int | None = None) -> list[Ranked]:
    """The open questions still worth asking, most expected change first (ties: oldest first)."""
    gid = {t.key: t.global_id for t in store.tracklet_infos()}
    boxes = store.identity_boxes()
    model = answer_model(store, threshold)
    cons = active_constraints(store)
    stated = {frozenset(p) for p in cons.same + cons.different}
    apart = {frozenset((gid.get(a), gid.get(b))) for a, b in cons.different}
    seen: set[frozenset] = set()
    out = []
    for q in store.questions("open"):
        ga, gb = gid.get(q.a), gid.get(q.b)
        pair = frozenset((q.a, q.b))
        if ga is None or gb is None or pair in stated or pair in seen:
            continue
        terms = q.terms
        if q.kind == "join":
            if ga != gb:
                continue
            p, change = 1.0 - model.p_same(q.kind, q.a, q.b, q.distance, terms), q.size
        else:
            if ga == gb:
                continue
            p = model.p_same(q.kind, q.a, q.b, q.distance, terms)
            change = min(boxes.get(ga, 0), boxes.get(gb, 0))
            if frozenset((ga, gb)) in apart:
                p *= 0.5
        seen.add(pair)
        out.append(Ranked(q, p, int(change), p * change, (ga, gb)))
    out.sort(key=lambda r: (-r.priority, r.question.id))
    return out if limit is None else out[:limit]


def question_json(store: ResultsStore, q: Question | None) -> dict:
    """The question as ``track-review --next --json`` prints it (``{"id": null}`` when there is none)."""
    if q is None:
        return {"id": None}

    def side(k: Key) -> dict:
        info = store.tracklet_info(*k)
        return {
            "camera": k[0],
            "track_id": int(k[1]),
            "global_id": None if info is None else int(info.global_id),
            "samples": store.samples(*k, n=5),
        }

    distance = None if q.distance is None or not math.isfinite(q.distance) else round(float(q.distance), 4)
    return {"id": int(q.id), "a": side(q.a), "b": side(q.b), "distance": distance, "reason": q.reason}
