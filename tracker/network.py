"""The camera network, learned from the run's own tracklets: which views overlap, and how.

Two cameras whose views overlap see one person at the same time, and the person's foot point in one image maps
onto their foot point in the other through one ground-plane homography (image A -> ground -> image B). So the
tracklet pairs that two cameras see at the same time hold the answer without any calibration: the right pairs
agree on one mapping over all their shared instants, the wrong ones do not. :func:`learn_overlaps` finds that
mapping by RANSAC over pairs of co-occurring tracklets (two tracklet pairs give four or more point
correspondences, a hypothesis; every co-occurring pair then votes with how well its synchronised foot points
fit), refines it on the inliers and keeps it when enough distinct people support it one to one, each of them
also predicted by the mapping fitted to the others alone (so a chance fit of a few short trajectories, which has
eight degrees of freedom to spare, is not taken for an overlap), and when it explains co-visibility: most
people it maps into the other view's walked area are seen there at that moment (:func:`covisible`). Camera pairs
that see many tracklets at the same time without any such mapping are recorded as probably not overlapping:
seeing one person in both at once then costs a penalty (not a cannot-link: a mapping can be missed when few
people cross a small shared area, or when the per-camera tracks there are poor).

Foot points are in pixels of each camera's own image; a mapping's error is measured in box heights of the
target camera, so the tolerance is the same for near and far people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLES = 9  # synchronised instants per co-occurring tracklet pair
MIN_SHARED = 0.8  # seconds two tracklets must be seen together to take part
TOLERANCE = 0.6  # median mapping error (box heights of the target camera) of an inlier pair
MIN_SUPPORT = 4  # distinct inlier pairs (one to one), each predicted by the others' mapping
MAX_ERROR = 0.3  # median error (box heights) of an accepted overlap's inliers
MIN_EVIDENCE = 30.0  # seconds of co-occurrence after which a camera pair without a mapping counts as disjoint
MAX_PAIRS = 400  # co-occurring pairs per camera pair considered (the longest shared)
MIN_COVISIBLE = 0.5  # share of one view's people mapped into the other's walked area that it sees there
ITERATIONS = 300
HELD_OUT_FOLDS = 10  # inliers checked one by one against the others' mapping; beyond, in this many folds
PRESCORE_PAIRS = 60  # the longest-shared pairs a hypothesis must find 3 agreeing among before a full score


@dataclass(frozen=True)
class Overlap:
    """Two cameras that see the same ground: ``mapping`` (3, 3) takes foot points (pixels, ``x, y, 1``) of
    camera ``a`` to camera ``b``; ``support``: the inlier tracklet pairs (one to one); ``error``: their median
    error in box heights."""

    a: str
    b: str
    mapping: np.ndarray
    support: int
    error: float

    def to_dict(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "mapping": np.round(self.mapping, 6).tolist(),
            "support": self.support,
            "error": round(self.error, 3),
        }


@dataclass
class Network:
    """What was learned: ``overlaps`` (with their mappings), ``disjoint`` camera pairs (seen at the same time
    often, no mapping found: probably never the same person at once), and per camera pair how many seconds of
    co-occurring tracklet pairs there were to learn from."""

    overlaps: list[Overlap] = field(default_factory=list)
    disjoint: list[tuple[str, str]] = field(default_factory=list)
    cooccurrence: dict[tuple[str, str], float] = field(default_factory=dict)

    def mapping(self, a: str, b: str) -> np.ndarray | None:
        """The foot-point mapping from camera ``a`` to ``b`` (inverted when learned the other way), or None."""
        for o in self.overlaps:
            if (o.a, o.b) == (a, b):
                return o.mapping
            if (o.a, o.b) == (b, a):
                return np.linalg.inv(o.mapping)
        return None

    def to_dict(self) -> dict:
        """For run.json and the results store."""
        return {
            "overlaps": [o.to_dict() for o in self.overlaps],
            "disjoint": [list(p) for p in self.disjoint],
            "cooccurrence_s": {f"{a}|{b}": round(s, 1) for (a, b), s in sorted(self.cooccurrence.items())},
        }


def _foot_at(times: np.ndarray, feet: np.ndarray, heights: np.ndarray, at: np.ndarray):
    """Foot points (len(at), 2) and box heights (len(at),) of one tracklet at times ``at``, linear in between."""
    x = np.interp(at, times, feet[:, 0])
    y = np.interp(at, times, feet[:, 1])
    return np.c_[x, y], np.interp(at, times, heights)


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N, 2) points through the homography ``h`` (NaN or inf where they map to infinity)."""
    q = pts @ h[:, :2].T + h[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return q[:, :2] / q[:, 2:]


def _fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares homography (normalised DLT) of >= 4 correspondences; None when degenerate."""
    import cv2

    if len(src) < 4:
        return None
    h, _ = cv2.findHomography(src.astype(np.float64), dst.astype(np.float64), 0)
    if h is None or not np.all(np.isfinite(h)) or abs(np.linalg.det(h)) < 1e-12:
        return None
    return h / h[2, 2] if abs(h[2, 2]) > 1e-12 else None


@dataclass
class _Pair:
    """A co-occurring tracklet pair of two cameras, sampled at :data:`SAMPLES` shared instants."""

    i: int
    j: int
    shared: float
    src: np.ndarray  # (S, 2) foot points in camera a
    dst: np.ndarray  # (S, 2) foot points in camera b
    height: np.ndarray  # (S,) box heights in camera b


def index_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ``(i, j)`` with ``lo[i] <= j < hi[i]``, vectorised."""
    count = np.maximum(hi - lo, 0)
    i = np.repeat(np.arange(len(lo)), count)
    j = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + np.repeat(lo, count)
    return i, j


def _pairs(tracks, a: int, b: int) -> list[_Pair]:
    """The co-occurring tracklet pairs of cameras ``a`` and ``b`` seen together for at least
    :data:`MIN_SHARED` seconds, the :data:`MAX_PAIRS` longest shared (ties by tracklet index)."""
    ia = np.flatnonzero(tracks.cam == a)
    ib = np.flatnonzero(tracks.cam == b)
    if not len(ia) or not len(ib):
        return []
    ib = ib[np.argsort(tracks.start[ib], kind="stable")]
    sa, ea, sb, eb = tracks.start[ia], tracks.end[ia], tracks.start[ib], tracks.end[ib]
    longest = float((eb - sb).max())
    # b's tracklets that start before a's ends (less MIN_SHARED) and may still be seen after it begins
    first = np.searchsorted(sb, sa + MIN_SHARED - longest, "left")
    last = np.searchsorted(sb, ea - MIN_SHARED, "left")
    found = []
    chunk = max(1, 2_000_000 // max(1, int(np.max(last - first, initial=1))))
    for c in range(0, len(ia), chunk):  # bounded memory: a chunk of a's tracklets at a time
        r, k = index_ranges(first[c : c + chunk], last[c : c + chunk])
        r += c
        t0, t1 = np.maximum(sa[r], sb[k]), np.minimum(ea[r], eb[k])
        ok = (eb[k] > sa[r] + MIN_SHARED) & (t1 - t0 >= MIN_SHARED)
        found.append(np.c_[t1[ok] - t0[ok], ia[r[ok]], ib[k[ok]], t0[ok], t1[ok]])
        if sum(len(f) for f in found) > 4 * MAX_PAIRS:  # keep the running best only
            found = [_longest(np.concatenate(found))]
    rows = _longest(np.concatenate(found))
    pairs = []
    for shared, i, j, t0, t1 in rows.tolist():
        at = np.linspace(t0, t1, SAMPLES)
        src, _ = _foot_at(*tracks.path(int(i)), at)
        dst, height = _foot_at(*tracks.path(int(j)), at)
        pairs.append(_Pair(int(i), int(j), float(shared), src, dst, np.maximum(height, 1.0)))
    return pairs


def _longest(rows: np.ndarray) -> np.ndarray:
    """The :data:`MAX_PAIRS` rows ``shared, i, j, t0, t1`` of longest ``shared``, ties by ``i`` then ``j``."""
    return rows[np.lexsort((rows[:, 2], rows[:, 1], -rows[:, 0]))[:MAX_PAIRS]]


def _fit_pairs(pairs: list[_Pair], which: list[int]) -> np.ndarray | None:
    """The homography fitted to every sampled instant of the pairs ``which``."""
    return _fit(np.concatenate([pairs[k].src for k in which]), np.concatenate([pairs[k].dst for k in which]))


def _stack(pairs: list[_Pair]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs' sampled foot points and heights, concatenated: (P * SAMPLES, 2), (P * SAMPLES, 2), (P * SAMPLES,)."""
    return (
        np.concatenate([p.src for p in pairs]),
        np.concatenate([p.dst for p in pairs]),
        np.concatenate([p.height for p in pairs]),
    )


def _errors(h: np.ndarray, pairs: list[_Pair], stacked=None) -> np.ndarray:
    """(P,) median mapping error of each pair in box heights of camera b (``stacked``: :func:`_stack` of
    ``pairs``, when already made)."""
    src, dst, height = stacked if stacked is not None else _stack(pairs)
    d = _apply(h, src) - dst
    with np.errstate(invalid="ignore"):
        err = np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2) / height
    err = np.where(np.isfinite(err), err, np.inf)
    return np.sort(err.reshape(len(pairs), SAMPLES), axis=1)[:, SAMPLES // 2]


def _one_to_one(pairs: list[_Pair], err: np.ndarray) -> list[int]:
    """Indices of inlier pairs, best first, keeping each tracklet in at most one pair (at a time)."""
    used_i: dict[int, list[tuple[float, float]]] = {}
    used_j: dict[int, list[tuple[float, float]]] = {}
    keep = []
    for k in np.argsort(err, kind="stable"):
        if err[k] > TOLERANCE:
            break
        p = pairs[k]
        if p.i in used_i or p.j in used_j:
            continue
        used_i[p.i] = used_j[p.j] = []
        keep.append(int(k))
    return keep


def _support(pairs: list[_Pair], inliers: list[int]) -> float:
    """A hypothesis' score: its distinct inlier people first (a chance fit rarely has many, though two people
    walking side by side in both views may share a long time), their shared seconds to break ties."""
    shared = sum(pairs[k].shared for k in inliers)
    return len(inliers) + shared / (1.0 + shared)


def _mapping(pairs: list[_Pair], rng: np.random.Generator) -> tuple[np.ndarray, list[int], float] | None:
    """RANSAC over tracklet-pair couples: the mapping most distinct pairs agree on, refined on them."""
    if len(pairs) < 2:
        return None
    best: tuple[int, float, np.ndarray] | None = None
    n = len(pairs)
    stacked = _stack(pairs)
    # a hypothesis is scored on all pairs only when enough of the longest-shared ones agree with it
    head = min(n, PRESCORE_PAIRS)
    head_stacked = tuple(x[: head * SAMPLES] for x in stacked)
    for _ in range(ITERATIONS):
        x, y = rng.choice(n, 2, replace=False)
        p, q = pairs[x], pairs[y]
        if p.i == q.i or p.j == q.j:
            continue
        pick = [0, SAMPLES // 2, SAMPLES - 1]
        src = np.r_[p.src[pick], q.src[pick]]
        dst = np.r_[p.dst[pick], q.dst[pick]]
        h = _fit(src, dst)
        if h is None:
            continue
        if n > head and int((_errors(h, pairs[:head], head_stacked) <= TOLERANCE).sum()) < 3:
            continue
        err = _errors(h, pairs, stacked)
        inliers = _one_to_one(pairs, err)
        score = _support(pairs, inliers)
        if len(inliers) >= 3 and (best is None or score > 0.5 * best[1]):
            # local optimisation: refit on every instant of the hypothesis' inliers and score that too (a fit
            # to six points of two short, nearly straight walks is poorly conditioned)
            refit = _fit_pairs(pairs, inliers)
            if refit is not None:
                again = _one_to_one(pairs, _errors(refit, pairs, stacked))
                if _support(pairs, again) > score:
                    h, inliers, score = refit, again, _support(pairs, again)
        if best is None or score > best[1]:
            best = (len(inliers), score, h)
    if best is None or best[0] < 2:
        return None
    h = best[2]
    for _ in range(3):  # refine on the inliers' points
        inliers = _one_to_one(pairs, _errors(h, pairs))
        if len(inliers) < 2:
            return None
        refined = _fit_pairs(pairs, inliers)
        if refined is None:
            break
        h = refined
    err = _errors(h, pairs)
    inliers = _one_to_one(pairs, err)
    if len(inliers) < MIN_SUPPORT:
        return None
    held_out = _held_out_errors(pairs, inliers)
    confirmed = [k for k, e in zip(inliers, held_out) if e <= TOLERANCE]
    if len(confirmed) < MIN_SUPPORT or float(np.median(err[confirmed])) > MAX_ERROR:
        return None
    return h, confirmed, float(np.median(err[confirmed]))


def covisible(tracks, a: int, b: int, h: np.ndarray) -> float:
    """Share of camera ``a``'s foot points that ``h`` maps into camera ``b``'s walked area (the 2-98 %
    extent of its foot points) at which ``b`` sees someone, within :data:`TOLERANCE` box heights.

    A real overlap explains co-visibility: whoever walks in the shared area is seen by both (misses aside).
    A chance fit (people walking parallel lines at like speeds in two disjoint views) maps most of ``a``'s
    people onto empty ground in ``b``. NaN when no point of ``a`` maps into ``b``'s area."""
    ia, ib = np.flatnonzero(tracks.cam == a), np.flatnonzero(tracks.cam == b)
    if len(ia) > MAX_PAIRS:  # an even sample over time is enough for a share
        ia = ia[np.linspace(0, len(ia) - 1, MAX_PAIRS).round().astype(int)]
    feet_b = (
        np.concatenate([tracks.path(j)[1] for j in ib[:: max(1, len(ib) // MAX_PAIRS)]]) if len(ib) else []
    )
    if len(feet_b) < 2:
        return float("nan")
    lo, hi = np.percentile(feet_b, 2, axis=0), np.percentile(feet_b, 98, axis=0)
    inside = seen = 0
    for i in ia:
        at = np.linspace(tracks.start[i], tracks.end[i], SAMPLES)
        feet, _ = _foot_at(*tracks.path(i), at)
        mapped = _apply(h, feet)
        ok = np.all(np.isfinite(mapped), axis=1) & np.all((mapped >= lo) & (mapped <= hi), axis=1)
        if not ok.any():
            continue
        best = np.full(SAMPLES, np.inf)
        for j in ib[(tracks.start[ib] <= at[-1]) & (tracks.end[ib] >= at[0])]:
            live = ok & (at >= tracks.start[j]) & (at <= tracks.end[j])
            if live.any():
                pos, height = _foot_at(*tracks.path(j), at[live])
                dist = np.linalg.norm(pos - mapped[live], axis=1) / np.maximum(height, 1.0)
                best[live] = np.minimum(best[live], dist)
        inside += int(ok.sum())
        seen += int((best[ok] <= TOLERANCE).sum())
    return seen / inside if inside else float("nan")


def _held_out_errors(pairs: list[_Pair], inliers: list[int]) -> np.ndarray:
    """Each inlier pair's error under the mapping fitted to the others alone: a chance fit (eight degrees of
    freedom, a few short trajectories) does not predict a pair it was not fitted to; a real overlap does.
    Leave-one-out up to :data:`HELD_OUT_FOLDS` inliers; beyond, each fold of that many is predicted by the
    rest (the inliers best first, dealt round the folds)."""
    folds = min(len(inliers), HELD_OUT_FOLDS)
    out = np.full(len(inliers), np.inf)
    for f in range(folds):
        test = list(range(f, len(inliers), folds))
        others = [m for k, m in enumerate(inliers) if k % folds != f]
        if len(others) < 2:
            continue
        h = _fit_pairs(pairs, others)
        if h is not None:
            out[test] = _errors(h, [pairs[inliers[k]] for k in test])
    return out


def learn_overlaps(tracks, names: list[str], known: np.ndarray) -> Network:
    """The overlaps and disjoint pairs of the cameras ``names`` (see the module docstring).

    ``tracks``: the association's tracklet arrays (``cam``, ``start``, ``end`` per tracklet and ``path(k)`` ->
    ``(times, feet, heights)``); ``known``: (C, C) bool, camera pairs whose overlap is already known (from a
    calibration file or configured links), which are skipped. Deterministic (fixed-seed RANSAC).
    """
    rng = np.random.default_rng(0)
    net = Network()
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            if known[a, b]:
                continue
            pairs = _pairs(tracks, a, b)
            shared = float(sum(p.shared for p in pairs))
            if shared:
                net.cooccurrence[(names[a], names[b])] = shared
            found = _mapping(pairs, rng)
            if found is not None and not (
                min(covisible(tracks, a, b, found[0]), covisible(tracks, b, a, np.linalg.inv(found[0])))
                >= MIN_COVISIBLE
            ):
                found = None
            if found is not None:
                h, inliers, error = found
                net.overlaps.append(Overlap(names[a], names[b], h, len(inliers), error))
            elif shared >= MIN_EVIDENCE:
                net.disjoint.append((names[a], names[b]))
    return net


@dataclass(frozen=True)
class Transit:
    """How people move from camera ``a`` to camera ``b`` (``a == b``: leaving a view and coming back), learned
    from the successions of a run's identities: ``count`` successions seen, ``share`` the fraction of
    ``a``'s tracklet ends that continue in ``b`` within the window, and the transit time as a log-normal
    (``log_mean``, ``log_std`` of seconds)."""

    a: str
    b: str
    count: float
    share: float
    log_mean: float
    log_std: float

    def to_dict(self) -> dict:
        lo, hi = np.exp(self.log_mean - self.log_std), np.exp(self.log_mean + self.log_std)
        return {
            "a": self.a,
            "b": self.b,
            "count": round(self.count, 1),
            "share": round(self.share, 3),
            "median_s": round(float(np.exp(self.log_mean)), 2),
            "range_s": [round(float(lo), 2), round(float(hi), 2)],
        }


PRIOR_WEIGHT = 2.0  # successions' worth of the pooled transit model in each camera pair's estimate
MIN_LOG_STD = 0.25


def learn_transits(
    successions: list[tuple[int, int, float]], names: list[str], ends: np.ndarray
) -> dict[tuple[int, int], Transit]:
    """Transit models of every directed camera pair from ``successions`` ``(camera a, camera b, gap s)``.

    ``names``: camera names by index, ``ends``: how many tracklet ends each camera has (the denominators of
    the shares). Each pair's log-normal is shrunk towards the pooled one of all successions with
    :data:`PRIOR_WEIGHT` pseudo-successions, so that a pair seen twice gets a sensible window.
    """
    if not successions:
        return {}
    logs = np.log(np.array([g for _, _, g in successions]))
    pooled_mean, pooled_std = float(logs.mean()), max(float(logs.std()), MIN_LOG_STD)
    out = {}
    by_pair: dict[tuple[int, int], list[float]] = {}
    for (a, b, _), lg in zip(successions, logs):
        by_pair.setdefault((int(a), int(b)), []).append(float(lg))
    for (a, b), values in by_pair.items():
        x = np.asarray(values)
        n = len(x)
        mean = (x.sum() + PRIOR_WEIGHT * pooled_mean) / (n + PRIOR_WEIGHT)
        var = (((x - mean) ** 2).sum() + PRIOR_WEIGHT * (pooled_std**2 + (pooled_mean - mean) ** 2)) / (
            n + PRIOR_WEIGHT
        )
        share = n / max(float(ends[a]), 1.0)
        out[(a, b)] = Transit(
            names[a], names[b], float(n), min(share, 1.0), float(mean), max(float(np.sqrt(var)), MIN_LOG_STD)
        )
    return out
