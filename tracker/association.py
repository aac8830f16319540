"""Cross-camera association: all cameras' tracklets -> global identities, with the evidence for every merge.

Method
------
Constrained agglomerative clustering (average linkage) over a sparse graph of candidate edges; no dense
N x N matrix is ever built.

1. **Candidate edges.**
   *Appearance*: the ``knn`` most similar embeddings of each tracklet among the tracklets it may be linked
   to (no cannot-link, at most ``max_gap`` seconds apart). Tracklets are sorted by start time, so a block of
   512 queries only meets the window of tracklets within ``max_gap`` of it: one matrix product per block, so
   the work is N x (tracklets within ``max_gap``), linear in N at a given crowd density, and memory stays
   at one block. While the query x window pairs stay under ``exact_search_max`` (a recording longer than a
   few ``max_gap`` of ordinary density) the product is in the full embedding dimension and exact; a scene more
   crowded in time is searched in a PCA projection to ``search_dim`` (randomised SVD of a sample), taking
   ``2 * knn`` candidates that are re-ranked by their exact cosine. (A faiss IVF index was tried for that
   case and dropped: on 2048-d embeddings with a per-camera shift its cells follow the cameras, and it found
   a fifth to two fifths of a tracklet's same-person neighbours.)
   *Same camera, short break*: a tracklet that starts at most ``break_gap`` seconds after another one of the
   same camera ended (a track broken by occlusion), with or without embeddings. Where the cameras' frame
   sizes are given, a track that ends at the edge of the frame and one that starts there are someone
   leaving the view and someone coming in: no break, a return (below).
   *Calibrated views*: tracklets seen at the same time by two calibrated cameras whose views may overlap
   (the only cross-camera candidates of a tracklet without embedding).
2. **Edge distance** ``d = appearance + time + transit + speed + world + continuity``; every term is on the
   scale of the appearance term and ``d`` may fall below 0 when ground or continuity evidence is strong.
   *appearance*: cosine distance ``1 - cos`` divided by the run's appearance scale, the median cosine distance
   of tracklet pairs that a cannot-link proves to be different people (so that one threshold suits any
   embedder: an offline colour histogram and MGN spread their distances very differently);
   ``missing_appearance`` when a tracklet has no embedding.
   *time*: ``time_weight * wait / max_gap``, the wait being the gap beyond a direct link's ``max_transit``.
   *transit* (only with configured links): ``transit_weight`` times how much faster than the fastest route
   over the links (sum of ``min_transit``) the person would have moved, as a fraction of that route's time;
   the full weight between cameras no chain of links connects.
   *speed* (calibrated): straight-line ground distance from where one tracklet ended to where the other
   began, less 1 m of position error, over the gap; ``speed_weight`` times how far that exceeds ``max_speed``
   (full at twice).
   *world* (seen at the same time by two calibrated cameras): the median ground distance over the shared time
   mapped linearly onto ``[-world_weight, +world_weight]`` over ``[0, world_gate]``.
   *continuity* (same camera, gap up to ``break_gap``): how far, in box heights, the second track starts
   from where the first was heading, mapped onto ``[-continuity_weight, +continuity_weight]`` over
   ``[0, break_radius]``.
   The homographies of all cameras must map to one common ground plane.
3. **Cannot-links** (hard, checked on every merge between all member pairs): one camera with overlapping
   frame spans; two cameras whose views do not overlap (configured links, or scene.json ``overlaps``) both
   seeing the tracklets for more than ``sync_tolerance`` seconds; two calibrated cameras seeing them at the
   same time more than ``world_gate`` metres apart on the ground.
4. **Average linkage over known edges.** The distance between two clusters is the mean of the edge
   distances between their members; pairs without an edge are *ignored*, not counted as distance 1: they are
   mostly pairs further apart in time than ``max_gap`` (a person's first and last camera), and counting them
   as 1 would forbid joining a long trajectory. A heap holds cluster pairs below ``threshold``; the closest
   pair is merged unless a cannot-link forbids it (then that pair is dropped for good: a cannot-link between
   two clusters stays one between any clusters containing them). Clusters only ever grow inside the connected
   components of the edges below the threshold, so edges between components are left out of the heap.
   Ties are broken by the canonical order of the tracklets (start time, camera, track id), so the result does
   not depend on the input order.

The default threshold was chosen on ground-truth tracklets of the sample scene with the offline histogram
descriptor (multi-camera IDF1 against the threshold, see benchmarks/RESULTS.md, ``## Association``).
"""

from __future__ import annotations

import heapq
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tracker.calibration import Calibration
from tracker.config import AssociateConfig, CameraLink
from tracker.errors import InputError
from tracker.geometry import foot_points, to_ground
from tracker.network import MIN_LOG_STD, index_ranges, learn_overlaps, learn_transits
from tracker.network import PRIOR_WEIGHT as _PRIOR_WEIGHT
from tracker.types import Tracklet

_BLOCK = 512  # queries per block of the exact search
EDGE_MARGIN = 0.01  # a box this share of the frame width from the frame's edge is at the edge


@dataclass
class Evidence:
    """Why two groups of tracklets were joined.

    ``a`` and ``b`` are the ``(camera, track_id)`` of the closest tracklet pair between the two groups (``a``
    the earlier one); ``distance`` the average-linkage distance at which the groups merged; ``terms`` the
    closest pair's evidence: ``edge_distance``, ``edges`` (tracklet pairs with an edge between the groups),
    ``time_gap`` (seconds, negative when seen at the same time), ``time``, and when they apply
    ``appearance`` (cosine distance, before division by the run's appearance scale), ``transit_penalty``,
    ``speed`` (m/s on the ground) and ``speed_penalty``, ``world_distance`` (metres) and ``world``,
    ``image_distance`` (box heights) and ``continuity``. The terms named as in the module docstring are the
    summands of ``edge_distance``; ``distance`` may be below 0 (see there).
    """

    global_id: int
    a: tuple[str, int]
    b: tuple[str, int]
    distance: float
    terms: dict[str, float]
    reason: str


Key = tuple[str, int]
"""A tracklet's ``(camera, track_id)``."""


@dataclass(frozen=True)
class Constraints:
    """What a person said about tracklet pairs: ``same`` (one person: must-link) and ``different`` (two
    people: cannot-link), as pairs of ``(camera, track_id)`` keys. Pairs naming a tracklet that is not in the
    run are ignored (and counted in :attr:`Association.info`)."""

    same: tuple[tuple[Key, Key], ...] = ()
    different: tuple[tuple[Key, Key], ...] = ()


@dataclass(frozen=True)
class Candidate:
    """Two identities the association did *not* join although an edge links them: the closest tracklet pair
    ``a``, ``b`` (``a`` starts first) and the average-linkage ``distance`` between the two identities (at or
    above the threshold, or refused by a cannot-link: ``refused``). What a reviewer is asked about."""

    a: Key
    b: Key
    distance: float
    edges: int
    refused: bool


@dataclass
class Association:
    """Result of :func:`associate`.

    ``global_ids``: (N,) int64 aligned with the input tracklets, 1..K numbered in order of first appearance
    (start time, then camera, then track id). ``evidence``: one entry per merge (N - K in all; merges a
    reviewer asked for say "same person (reviewer)"; their distance is NaN where no edge links the two
    groups). ``candidates``: pairs of
    identities linked by an edge but not joined, closest first (see :class:`Candidate`). ``info``: counts and
    timings for run.json (search method, candidate edges, merges, cannot-link refusals, constraints used).
    """

    global_ids: np.ndarray
    evidence: list[Evidence]
    info: dict[str, float | int | str] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------
# the tracklets as arrays, and the camera topology


class _Tracks:
    """The tracklets in canonical order (start time, camera, track id) as flat arrays.

    Per-frame arrays (all tracklets concatenated, tracklet ``k`` in rows ``offsets[k]:offsets[k + 1]``):
    ``times`` and ``ground`` (foot point on the ground plane in metres, NaN for uncalibrated cameras).
    """

    def __init__(
        self,
        tracklets: Sequence[Tracklet],
        homographies: dict[str, np.ndarray],
        sizes: Mapping[str, tuple[int, int]] | None = None,
    ):
        self.items = list(tracklets)
        n = len(self.items)
        self.names = sorted({t.camera for t in self.items})
        code = {c: i for i, c in enumerate(self.names)}
        self.cam = np.array([code[t.camera] for t in self.items], np.int64)
        lengths = np.array([len(t) for t in self.items], np.int64)
        self.offsets = np.r_[0, np.cumsum(lengths)]
        first, last = self.offsets[:-1], self.offsets[1:] - 1
        self.times = np.concatenate([t.times for t in self.items])
        frames = np.concatenate([t.frames for t in self.items])
        boxes = np.concatenate([t.boxes for t in self.items]).astype(np.float64)
        feet = foot_points(boxes)
        height = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
        self.start, self.end = self.times[first], self.times[last]
        self.fstart, self.fend = frames[first], frames[last]
        # where a track starts and ends in the image, its last velocity (pixels / s, over up to 5 frames)
        self.tail, self.head = feet[first], feet[last]
        self.height_start, self.height_end = height[first], height[last]
        back = np.maximum(last - 4, first)
        dt = self.times[last] - self.times[back]
        self.velocity = (feet[last] - feet[back]) / np.where(dt > 0, dt, np.inf)[:, None]
        self.emb_rows = np.flatnonzero([t.embedding is not None for t in self.items])
        self.different = np.zeros(0)  # sorted appearance distances of pairs a cannot-link proves different
        self.inverse = {code[c]: np.linalg.inv(h) for c, h in homographies.items() if c in code}
        self.calibrated = np.array([i in self.inverse for i in range(len(self.names))], bool)
        self.ground = np.full((len(self.times), 2), np.nan)
        row_cam = np.repeat(self.cam, lengths)
        for c, inv in self.inverse.items():
            rows = row_cam == c
            self.ground[rows] = to_ground(inv, feet[rows])
        self.ground_first, self.ground_last = self.ground[first], self.ground[last]
        self.feet, self.heights = feet, height
        # whether a track begins / ends with its box at the edge of the frame (cameras of known size only:
        # NaN compares false)
        size = np.array([(sizes or {}).get(c, (np.nan, np.nan)) for c in self.names], np.float64)
        row_size = size[row_cam]  # (rows, 2) width, height
        margin = EDGE_MARGIN * row_size[:, :1]
        at_edge = (boxes[:, :2] <= margin).any(axis=1) | (boxes[:, 2:] >= row_size - margin).any(axis=1)
        self.enters_at_edge, self.leaves_at_edge = at_edge[first], at_edge[last]
        # times made globally increasing (tracklet k shifted by k * span) for vectorised interpolation
        self._span = float(self.times.max() - self.times.min()) + 1.0 if n else 1.0
        self._key = self.times + np.repeat(np.arange(n) * self._span, lengths)
        self._emb: np.ndarray | None = None

    def embeddings(self) -> np.ndarray:
        """(M, D) float32, L2-normalised, for the tracklets in ``emb_rows`` (stacked once, then cached)."""
        if self._emb is None:
            self._emb = self._stack_embeddings()
        return self._emb

    def _stack_embeddings(self) -> np.ndarray:
        if not len(self.emb_rows):
            return np.zeros((0, 0), np.float32)
        dims = {np.shape(self.items[i].embedding) for i in self.emb_rows}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise InputError(
                f"tracklet embeddings: expected (D,) vectors of one size, got shapes {sorted(dims)}"
            )
        e = np.empty((len(self.emb_rows), next(iter(dims))[0]), np.float32)
        for k, i in enumerate(self.emb_rows.tolist()):
            e[k] = self.items[i].embedding
        norms = np.sqrt(np.einsum("ij,ij->i", e, e))
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise InputError("tracklet embeddings: a vector is zero or not finite")
        if np.any(np.abs(norms - 1) > 1e-4):  # they should come normalised; make sure
            e /= norms[:, None]
        return e

    def _at(self, values: np.ndarray, k: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """(P, S, ...) per-frame ``values`` of tracklets ``k`` (P,) at times ``ts`` (P, S), linear in between
        frames and held at the ends."""
        q = ts + (k * self._span)[:, None]
        lo, hi = self.offsets[k][:, None], self.offsets[k + 1][:, None] - 1
        right = np.clip(np.searchsorted(self._key, q), lo, hi)
        left = np.maximum(right - 1, lo)
        kl, kr = self._key[left], self._key[right]
        span = np.where(kr > kl, kr - kl, 1.0)
        w = np.where(kr > kl, np.clip((q - kl) / span, 0.0, 1.0), 0.0)
        w = w.reshape(w.shape + (1,) * (values.ndim - 1))
        return values[left] * (1 - w) + values[right] * w

    def _ground_at(self, k: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """(P, S, 2) ground position of tracklets ``k`` at times ``ts`` (P, S)."""
        return self._at(self.ground, k, ts)

    def path(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tracklet ``k``'s times (T,), image foot points (T, 2) and box heights (T,)."""
        rows = slice(self.offsets[k], self.offsets[k + 1])
        return self.times[rows], self.feet[rows], self.heights[rows]

    def mapped_distances(self, i: np.ndarray, j: np.ndarray, mapping: np.ndarray) -> np.ndarray:
        """(P,) median distance, in box heights of ``j``'s camera, between ``j``'s foot point and ``i``'s mapped
        into ``j``'s image through ``mapping`` (3, 3), at 5 instants over the time both are seen (NaN: never)."""
        i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
        out = np.full(len(i), np.nan)
        t0, t1 = np.maximum(self.start[i], self.start[j]), np.minimum(self.end[i], self.end[j])
        rows = np.flatnonzero(t1 >= t0)
        for s in range(0, len(rows), 100_000):
            r = rows[s : s + 100_000]
            ts = t0[r, None] + (t1 - t0)[r, None] * np.linspace(0.0, 1.0, 5)
            src = self._at(self.feet, i[r], ts).reshape(-1, 2)
            q = np.c_[src, np.ones(len(src))] @ mapping.T
            with np.errstate(divide="ignore", invalid="ignore"):
                mapped = (q[:, :2] / q[:, 2:]).reshape(len(r), 5, 2)
            dst, height = self._at(self.feet, j[r], ts), self._at(self.heights, j[r], ts)
            d = np.linalg.norm(mapped - dst, axis=2) / height
            out[r] = np.median(np.where(np.isfinite(d), d, np.inf), axis=1)
        return out

    def world_distances(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """(P,) median ground distance (metres) between tracklets ``i[p]`` and ``j[p]`` at 5 instants over the
        time both are seen; NaN when they are never seen together or a camera is uncalibrated."""
        i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
        out = np.full(len(i), np.nan)
        t0, t1 = np.maximum(self.start[i], self.start[j]), np.minimum(self.end[i], self.end[j])
        ok = (t1 >= t0) & self.calibrated[self.cam[i]] & self.calibrated[self.cam[j]]
        rows = np.flatnonzero(ok)
        for s in range(0, len(rows), 100_000):  # in chunks: bounded memory for crowded scenes
            r = rows[s : s + 100_000]
            ts = t0[r, None] + (t1 - t0)[r, None] * np.linspace(0.0, 1.0, 5)
            d = np.sort(np.linalg.norm(self._ground_at(i[r], ts) - self._ground_at(j[r], ts), axis=2), axis=1)
            valid = np.isfinite(d).sum(axis=1)  # NaN (above the horizon) sorts last
            lo, hi = np.maximum((valid - 1) // 2, 0), valid // 2
            med = 0.5 * (np.take_along_axis(d, lo[:, None], 1) + np.take_along_axis(d, hi[:, None], 1))[:, 0]
            out[r] = np.where(valid > 0, med, np.nan)
        return out


class _Topology:
    """Camera-pair tables: which pairs cannot see one person at once, and the transit bounds of each pair.

    ``tmin[a, b]``: the fastest way from ``a`` to ``b`` over the configured links (sum of ``min_transit``
    along the shortest path, ``inf`` when no path connects them); ``tmax[a, b]``: ``max_transit`` of a direct
    link, ``inf`` otherwise. Without configured links nothing is known about transit (``known`` is False).
    """

    def __init__(
        self, names: list[str], links: tuple[CameraLink, ...], overlaps: dict[str, frozenset[str]] | None
    ):
        c = len(names)
        code = {n: i for i, n in enumerate(names)}
        overlap = np.full((c, c), -1, np.int8)  # -1 unknown, 0 disjoint, 1 overlapping
        if overlaps is not None:
            for a in names:
                for b in names:
                    if a in overlaps and b in overlaps:
                        overlap[code[a], code[b]] = int(b in overlaps[a])
        self.known = bool(links)
        if links:
            overlap[overlap == -1] = 0  # a configured topology lists every pair that is connected
        self.tmin = np.full((c, c), np.inf if links else 0.0)
        self.tmax = np.full((c, c), np.inf)
        for link in links:
            if link.a in code and link.b in code:
                for a, b in ((code[link.a], code[link.b]), (code[link.b], code[link.a])):
                    overlap[a, b] = int(link.overlap)
                    self.tmin[a, b], self.tmax[a, b] = link.min_transit, link.max_transit
        np.fill_diagonal(self.tmin, 0.0)
        for k in range(c):  # Floyd-Warshall: the fastest transit over chains of links
            self.tmin = np.minimum(self.tmin, self.tmin[:, k : k + 1] + self.tmin[k : k + 1, :])
        np.fill_diagonal(overlap, 1)
        self.overlapping = overlap == 1
        self.disjoint = overlap == 0
        self.decided = overlap != -1  # pairs whose overlap the configuration (or calibration) already says
        self.mappings: dict[tuple[int, int], np.ndarray] = {}  # learned: (a, b) -> foot-point mapping a -> b
        self.mapped = np.zeros((c, c), bool)
        self.unmatched = np.zeros((c, c), bool)  # learned: often seen at once, no mapping found
        self.network = None

    def learn(self, network, code: dict[str, int]) -> None:
        """Take what the run's own tracklets say about the camera pairs the configuration leaves open
        (:func:`tracker.network.learn_overlaps`)."""
        self.network = network
        for o in network.overlaps:
            a, b = code[o.a], code[o.b]
            self.mappings[(a, b)] = o.mapping
            self.mappings[(b, a)] = np.linalg.inv(o.mapping)
            self.mapped[a, b] = self.mapped[b, a] = self.overlapping[a, b] = self.overlapping[b, a] = True
        for x, y in network.disjoint:
            a, b = code[x], code[y]
            self.unmatched[a, b] = self.unmatched[b, a] = True


# ----------------------------------------------------------------------------------------------------------
# candidate edges


def _conflict(
    v: _Tracks,
    topo: _Topology,
    cfg: AssociateConfig,
    i: np.ndarray,
    j: np.ndarray,
    together: np.ndarray | None = None,
) -> np.ndarray:
    """Hard cannot-links that follow from camera and timing alone, for broadcastable index arrays.
    ``together``: seconds both are seen (negative: the gap between them), when already computed."""
    ci, cj = v.cam[i], v.cam[j]
    if together is None:
        together = np.minimum(v.end[i], v.end[j]) - np.maximum(v.start[i], v.start[j])
    same_frames = (ci == cj) & (v.fstart[i] <= v.fend[j]) & (v.fstart[j] <= v.fend[i])
    disjoint = np.take(topo.disjoint.ravel(), ci * len(topo.disjoint) + cj)
    return same_frames | (disjoint & (together > cfg.sync_tolerance))


def _linkable(v: _Tracks, topo: _Topology, cfg: AssociateConfig, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Pairs that may carry an edge: distinct, at most ``max_gap`` apart and not a hard cannot-link."""
    together = np.minimum(v.end[i], v.end[j]) - np.maximum(v.start[i], v.start[j])
    return (i != j) & (together >= -cfg.max_gap) & ~_conflict(v, topo, cfg, i, j, together)


def _pca_basis(e: np.ndarray, dim: int) -> np.ndarray:
    """(D, dim) orthonormal basis of the top right singular vectors of a sample of ``e`` (randomised SVD with
    a fixed seed on up to 4096 rows evenly spaced in canonical order, so the result is deterministic)."""
    sample = e[np.linspace(0, len(e) - 1, min(len(e), 4096)).astype(np.int64)]
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(sample @ rng.standard_normal((e.shape[1], dim + 16)).astype(np.float32))
    for _ in range(2):
        q, _ = np.linalg.qr(sample @ (sample.T @ q))
    _, _, vt = np.linalg.svd(q.T @ sample, full_matrices=False)
    return np.ascontiguousarray(vt[:dim].T, dtype=np.float32)


def _windows(v: _Tracks, rows: np.ndarray, max_gap: float) -> list[tuple[int, int, int, int]]:
    """Query blocks ``[b0, b1)`` of ``rows`` (sorted by start) with the window ``[lo, hi)`` of rows that can
    be within ``max_gap`` seconds of a block member."""
    starts, ends = v.start[rows], v.end[rows]
    reach = np.maximum.accumulate(ends)
    out = []
    for b0 in range(0, len(rows), _BLOCK):
        b1 = min(len(rows), b0 + _BLOCK)
        hi = int(np.searchsorted(starts, ends[b0:b1].max() + max_gap, "right"))
        lo = int(np.searchsorted(reach, starts[b0:b1].min() - max_gap, "left"))
        out.append((b0, b1, lo, hi))
    return out


def _neighbours(v: _Tracks, topo: _Topology, cfg: AssociateConfig, e: np.ndarray, x: np.ndarray, windows):
    """The ``knn`` most similar linkable tracklets of each row of ``e`` (query rows, neighbour rows, cosine).

    One matrix product per query block and its time window in the search space ``x``: ``e`` itself (exact),
    or a projection of it, where ``2 * knn`` candidates are taken and re-ranked by their exact cosine."""
    rows = v.emb_rows
    reduced = x is not e
    qs, ws, sims = [], [], []
    for b0, b1, lo, hi in windows:
        s = x[b0:b1] @ x[lo:hi].T
        s[~_linkable(v, topo, cfg, rows[b0:b1, None], rows[None, lo:hi])] = -np.inf
        k = min(2 * cfg.knn if reduced else cfg.knn, hi - lo)
        top = (
            np.argpartition(-s, k - 1, axis=1)[:, :k]
            if k < hi - lo
            else np.broadcast_to(np.arange(hi - lo), s.shape)
        )
        sim = np.take_along_axis(s, top, axis=1)
        if reduced:
            exact = np.empty(sim.shape, np.float32)
            for c in range(0, b1 - b0, 64):  # the candidates' rows gathered 64 queries at a time
                exact[c : c + 64] = np.einsum("qkd,qd->qk", e[lo + top[c : c + 64]], e[b0 + c : b0 + c + 64])
            exact[~np.isfinite(sim)] = -np.inf
            k = min(cfg.knn, top.shape[1])
            best = np.argpartition(-exact, k - 1, axis=1)[:, :k]
            top, sim = np.take_along_axis(top, best, axis=1), np.take_along_axis(exact, best, axis=1)
        keep = np.isfinite(sim)
        qs.append(np.broadcast_to(np.arange(b0, b1)[:, None], top.shape)[keep])
        ws.append(top[keep] + lo)
        sims.append(sim[keep])
    return np.concatenate(qs), np.concatenate(ws), np.concatenate(sims).astype(np.float64)


def _appearance_edges(v: _Tracks, topo: _Topology, cfg: AssociateConfig):
    """Directed appearance kNN pairs as canonical indices with their cosine similarity, and the search used:
    ``exact``, or ``pca`` when the query x window pairs exceed ``exact_search_max`` (crowded in time)."""
    rows = v.emb_rows
    if len(rows) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), "none"
    e = v.embeddings()
    windows = _windows(v, rows, cfg.max_gap)
    exact = sum((b1 - b0) * (hi - lo) for b0, b1, lo, hi in windows) <= cfg.exact_search_max
    x = e
    if not exact and e.shape[1] > cfg.search_dim:
        x = e @ _pca_basis(e, cfg.search_dim)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # cosine in the projection
    q, w, sim = _neighbours(v, topo, cfg, e, x, windows)
    return rows[q], rows[w], sim, "exact" if x is e else "pca"


def _row_dots(e: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(e[a] * e[b]).sum(1)`` as float64, in chunks; each value is computed on its own row pair."""
    out = np.empty(len(a), np.float64)
    step = max(1, 2**22 // max(1, e.shape[1]))
    for s in range(0, len(a), step):
        out[s : s + step] = np.einsum("ij,ij->i", e[a[s : s + step]], e[b[s : s + step]])
    return out


def _spatial_edges(v: _Tracks, topo: _Topology, cfg: AssociateConfig) -> tuple[np.ndarray, np.ndarray]:
    """Same-camera continuations within ``break_gap``, and pairs seen at once by two cameras whose positions
    can be compared (both calibrated, or a learned overlap)."""
    out_i, out_j = [], []
    for c in range(len(v.names)):
        idx = np.flatnonzero(v.cam == c)  # sorted by start
        lo = np.searchsorted(v.start[idx], v.end[idx], "right")
        hi = np.searchsorted(v.start[idx], v.end[idx] + cfg.break_gap, "right")
        a, b = index_ranges(lo, hi)
        out_i.append(idx[a])
        out_j.append(idx[b])
    placed = v.calibrated | topo.mapped.any(axis=1)  # cameras whose positions can be compared with another's
    idx = np.flatnonzero(placed[v.cam])
    if len(idx) > 1:
        hi = np.searchsorted(v.start[idx], v.end[idx], "right")
        a, b = index_ranges(np.arange(len(idx)) + 1, hi)
        a, b = idx[a], idx[b]
        ca, cb = v.cam[a], v.cam[b]
        comparable = (v.calibrated[ca] & v.calibrated[cb]) | topo.mapped[ca, cb]
        keep = (ca != cb) & ~topo.disjoint[ca, cb] & comparable
        out_i.append(a[keep])
        out_j.append(b[keep])
    i, j = np.concatenate(out_i), np.concatenate(out_j)
    keep = _linkable(v, topo, cfg, i, j)
    return i[keep], j[keep]


# ----------------------------------------------------------------------------------------------------------
# edge distances


@dataclass
class _Edges:
    """Undirected edges ``i < j`` (canonical indices) with their distance and evidence terms, sorted, and the
    pairs seen at the same time farther apart on the ground than ``world_gate`` (cannot-links, no edge)."""

    i: np.ndarray
    j: np.ndarray
    dist: np.ndarray
    terms: dict[str, np.ndarray]  # NaN where a term does not apply
    far: tuple[np.ndarray, np.ndarray]

    def terms_of(self, edges: np.ndarray) -> list[dict[str, float]]:
        """The terms that apply to each of ``edges`` (indices), as plain floats."""
        names = list(self.terms)
        columns = [self.terms[k][edges].tolist() for k in names]
        return [{k: x for k, x in zip(names, row) if x == x} for row in zip(*columns)]  # x == x: not NaN


def _appearance_scale(v: _Tracks, topo: _Topology, cfg: AssociateConfig) -> tuple[float, int]:
    """The cosine distance that counts as 1, and the number of pairs it was measured on.

    ``cfg.appearance_scale`` when set; otherwise the median appearance distance between tracklets that a
    cannot-link proves to be different people (seen at the same time by one camera, or by two cameras whose
    views do not overlap): what "looking different" means for this embedder in this run. Fewer than 20 such
    pairs: 1.0, the raw cosine distance. At most 20,000 pairs are used (evenly spaced, deterministic); their
    sorted distances are kept in ``v.different``.
    """
    if cfg.appearance_scale is not None:
        return cfg.appearance_scale, 0
    rows = v.emb_rows
    if len(rows) < 2:
        return 1.0, 0
    lo = np.arange(1, len(rows) + 1)
    hi = np.searchsorted(v.start[rows], v.end[rows], "right")  # rows[j] starts while rows[i] is still seen
    step = max(1, -(-int((hi - lo).sum()) // 1_000_000))  # a crowded scene: every step-th tracklet only
    i, j = index_ranges(lo[::step], hi[::step])
    i = i * step
    keep = _conflict(v, topo, cfg, rows[i], rows[j])
    i, j = i[keep], j[keep]
    if len(i) < 20:
        return 1.0, int(len(i))
    pick = np.linspace(0, len(i) - 1, min(len(i), 20_000)).astype(np.int64)
    v.different = np.sort(1.0 - _row_dots(v.embeddings(), i[pick], j[pick]))
    scale = float(np.median(v.different))
    return max(scale, 1e-6), int(len(pick))  # identical looks everywhere: appearance cannot separate anyone


def _spread(v: _Tracks, scale: float) -> float:
    """How widely the proven-different distances spread below their median ``scale``: median - 5th
    percentile (never 0)."""
    return max(scale - float(np.quantile(v.different, 0.05)), 1e-6)


def _appearance_strength(
    v: _Tracks, qa: np.ndarray, wa: np.ndarray, sim: np.ndarray, scale: float
) -> tuple[float, float] | None:
    """How clearly this run's embedder finds people again in other cameras, and where it finds them.

    For every tracklet with an appearance neighbour in another camera (the kNN pairs ``qa, wa`` with cosine
    similarity ``sim``, linkable pairs only, so no cannot-link among them), its nearest one's distance
    ``d1`` in spreads of the proven-different distances: ``z = (median - d1) / (median - 5th percentile)``.
    Among some twenty candidates of different people the nearest lies about one spread below the median
    (more candidates: a little further), so a weak embedder, whose true partner is rarely nearer than the
    look-alikes, gives a median ``z`` near 1 (the histogram on the development set: 0.7-1.1; random
    synthetic embeddings among about a hundred candidates: 1.6); a strong one, whose nearest candidate is
    mostly the same person far below every different pair, 2-3.5. Returns that median *strength* and the
    median ``d1 / scale`` (where the typical nearest candidate lies on the appearance term's scale), or
    None with fewer than 20 proven-different pairs or 10 such tracklets.
    """
    if len(v.different) < 20 or not len(qa):
        return None
    cross = v.cam[qa] != v.cam[wa]
    a, b, d = qa[cross], wa[cross], 1.0 - sim[cross]
    nearest = np.full(len(v.items), np.inf)
    np.minimum.at(nearest, a, d)
    np.minimum.at(nearest, b, d)
    nearest = nearest[np.isfinite(nearest)]
    if len(nearest) < 10:
        return None
    return float(np.median((scale - nearest) / _spread(v, scale))), float(np.median(nearest)) / scale


def _appearance_factor(cfg: AssociateConfig, strength: tuple[float, float] | None) -> float:
    """The factor on a scaled run's appearance term (:func:`_edge_terms`): 1 for a weak embedder; for a
    strong one (strength 2 and above; linearly between 1 and 2) just small enough that the typical nearest
    other-camera candidate lies at ``1 / strong_margin`` of the threshold, and never below ``strong_factor``.
    A real network's same-person distances between cameras are moderate (on the development set its typical
    nearest candidate sits at the threshold itself); this lets them join while a run whose matches already
    lie far below the threshold is left as it is."""
    if strength is None or cfg.strong_factor is None or cfg.appearance != "scaled":
        return 1.0
    z, nearest = strength
    target = min(1.0, cfg.threshold / (cfg.strong_margin * max(nearest, 1e-6)))
    return 1.0 + min(max(z - 1.0, 0.0), 1.0) * (max(target, cfg.strong_factor) - 1.0)


class _AppearanceModel:
    """How strong this run's appearance evidence is, camera pair by camera pair (``associate.appearance:
    adaptive``).

    For every camera pair ``(a, b)`` a *null*: the cosine distances of tracklet pairs that are, with few
    exceptions, different people. Between two cameras these are random pairs of their tracklets seen within
    ``max_gap`` of each other (the true matches are at most one in ``min(n_a, n_b)`` of the ``n_a * n_b``
    pairs, so a robust fit hardly notices them); within one camera, the pairs a cannot-link proves different
    (seen at the same time). A robust normal fit (median ``mu``, scaled MAD ``sigma``) gives each candidate pair
    its score ``z = (mu - d) / sigma``: how far below a typical different-person distance it lies, in that
    camera pair's own units (cameras' colour shifts cancel out). The chance that one of the ``k`` tracklets the
    query could have been matched with in that camera comes this close by chance is ``p = 1 - (1 - q)^k`` with
    ``q`` the normal tail beyond ``z``; ``k`` counts the tracklets of that camera that timing alone leaves as
    plausible (:meth:`candidates`): the evidence is ``s = -log10 p``. A weak descriptor (true matches only one
    or two ``sigma`` below the bulk, among several candidates) thus gives little evidence, a strong one (MGN:
    many ``sigma``) decides. The appearance term is ``1 - min(s / evidence_full, 1)`` for pairs closer than
    typical and rises to ``1.5`` for pairs much farther than typical.
    """

    MIN_NULL = 12  # pairs needed for a camera pair's own null; fewer: the run's pooled null
    SAMPLE = 4000  # null pairs sampled per camera pair

    def __init__(self, v: _Tracks, topo: _Topology, cfg: AssociateConfig):
        self.v, self.cfg = v, cfg
        c = len(v.names)
        self.mu = np.full((c, c), np.nan)
        self.sigma = np.full((c, c), np.nan)
        self.pairs = np.zeros((c, c), np.int64)
        rows = v.emb_rows
        self.by_cam = [
            rows[v.cam[rows] == k] for k in range(c)
        ]  # embedded tracklets of each camera, by start
        if len(rows) < 2:
            return
        e = v.embeddings()
        where = np.full(len(v.items), -1, np.int64)
        where[rows] = np.arange(len(rows))
        rng = np.random.default_rng(0)
        pooled = []
        for a in range(c):
            for b in range(a, c):
                i, j = self._null_pairs(topo, a, b, rng)
                if not len(i):
                    continue
                d = 1.0 - _row_dots(e, where[i], where[j])
                pooled.append(d)
                self.pairs[a, b] = self.pairs[b, a] = len(d)
                if len(d) >= self.MIN_NULL:
                    self._set(a, b, d)
        if pooled:
            everything = np.concatenate(pooled)
            mu, sigma = _robust(everything)
            fill = np.isnan(self.mu)
            self.mu[fill], self.sigma[fill] = mu, sigma

    def _set(self, a: int, b: int, d: np.ndarray) -> None:
        mu, sigma = _robust(d)
        self.mu[a, b] = self.mu[b, a] = mu
        self.sigma[a, b] = self.sigma[b, a] = sigma

    def _null_pairs(self, topo: _Topology, a: int, b: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """Up to :data:`SAMPLE` tracklet pairs of cameras ``a`` and ``b`` that are mostly different people."""
        v, cfg = self.v, self.cfg
        ia, ib = self.by_cam[a], self.by_cam[b]
        if not len(ia) or not len(ib):
            return ia[:0], ib[:0]
        if a == b:  # within one camera: the pairs seen at the same time (a hard cannot-link)
            lo = np.arange(1, len(ia) + 1)
            hi = np.searchsorted(v.start[ia], v.end[ia], "right")
            x, y = index_ranges(lo, hi)
        else:  # between two cameras: pairs seen within max_gap of each other (almost all different people)
            longest = float((v.end[ib] - v.start[ib]).max())
            lo = np.searchsorted(v.start[ib], v.start[ia] - cfg.max_gap - longest, "left")
            hi = np.searchsorted(v.start[ib], v.end[ia] + cfg.max_gap, "right")
            if int(np.maximum(hi - lo, 0).sum()) <= 4 * self.SAMPLE:
                x, y = index_ranges(lo, hi)
            else:  # a long recording: random query tracklets, each with a random partner in its window
                x = rng.integers(0, len(ia), 4 * self.SAMPLE)
                width = hi[x] - lo[x]
                x = x[width > 0]
                y = lo[x] + (rng.random(len(x)) * width[width > 0]).astype(np.int64)
            apart = np.maximum(v.start[ia[x]], v.start[ib[y]]) - np.minimum(v.end[ia[x]], v.end[ib[y]])
            x, y = x[apart <= cfg.max_gap], y[apart <= cfg.max_gap]
        if len(x) > self.SAMPLE:
            pick = np.sort(rng.choice(len(x), size=self.SAMPLE, replace=False))
            x, y = x[pick], y[pick]
        return ia[x], ib[y]

    def candidates(self, i: np.ndarray, j: np.ndarray, gap: np.ndarray) -> np.ndarray:
        """(P,) how many tracklets of ``j[p]``'s camera were as plausible a partner of ``i[p]`` by timing alone
        (at least 1): for a pair seen at the same time, those seen while ``i[p]`` is; for a pair one after the
        other, those that appear in that camera between ``i[p]``'s end and twice the gap (plus a second)."""
        v = self.v
        out = np.ones(len(i), np.int64)
        at_once = gap <= 0
        lo = np.where(at_once, v.start[i], v.end[i] - 1.0)
        hi = np.where(at_once, v.end[i], v.end[i] + 2 * np.maximum(gap, 0) + 1.0)
        camera = v.cam[j]
        for c in np.unique(camera):
            sel = np.flatnonzero(camera == c)
            rows = self.by_cam[c]
            if not len(rows):
                continue
            starts, ends = v.start[rows], np.maximum.accumulate(v.end[rows])
            first = np.searchsorted(ends, lo[sel], "left")  # rows that may still be seen at lo
            last = np.searchsorted(starts, hi[sel], "right")  # rows that start by hi
            out[sel] = np.maximum(last - first, 1)
        return out

    def term(
        self, i: np.ndarray, j: np.ndarray, d: np.ndarray, gap: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(appearance term, evidence s) of pairs ``(i, j)`` (``i`` starts first) with cosine distances ``d``
        (NaN: no embedding) and time gaps ``gap`` (negative: seen together)."""
        from scipy.special import log_ndtr

        ci, cj = self.v.cam[i], self.v.cam[j]
        z = (self.mu[ci, cj] - d) / np.maximum(self.sigma[ci, cj], 1e-6)
        k = self.candidates(i, j, gap)
        with np.errstate(invalid="ignore", over="ignore"):
            log_q = log_ndtr(-z)  # log P(a different person is at least this close)
            p = -np.expm1(k * np.log1p(-np.exp(np.minimum(log_q, -1e-12))))
            s = np.where(z > 0, -np.log10(np.maximum(p, 1e-300)), 0.0)
            s = np.where(p < 1e-6, -(np.log10(k) + log_q / np.log(10)), s)  # p ~ k q when tiny
        full = self.cfg.evidence_full
        support = np.clip(s / full, 0.0, 1.0)
        against = np.clip(-z, 0.0, 2.0) / 4.0
        return 1.0 - support + against, s

    def info(self) -> dict:
        """What was measured, for run.json: per camera pair the null's median and spread, and its size."""
        names = self.v.names
        out = {}
        for a in range(len(names)):
            for b in range(a, len(names)):
                if self.pairs[a, b]:
                    out[f"{names[a]}|{names[b]}"] = {
                        "median": round(float(self.mu[a, b]), 4),
                        "sigma": round(float(self.sigma[a, b]), 4),
                        "pairs": int(self.pairs[a, b]),
                    }
        return out


def _robust(d: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 x median absolute deviation (the normal sigma) of ``d``; sigma at least 1e-3."""
    mu = float(np.median(d))
    return mu, max(1.4826 * float(np.median(np.abs(d - mu))), 1e-3)


class _Transits:
    """How people move from view to view (and back into a view), learned from one association pass.

    ``links``: directed camera pairs -> :class:`tracker.network.Transit` (from the identities' successions:
    consecutive sightings of one identity, one ending before the next begins, at most ``network_window``
    apart, same-camera continuations within ``break_gap`` excluded). ``training``: those successions as
    ``(i, j) -> gap``, so that a pair is scored without its own contribution (leave one out) and a wrong join
    of the previous pass cannot confirm itself.
    """

    def __init__(self, links: dict, training: dict, successions: list, rate: np.ndarray, names: list[str]):
        self.links, self.training, self.successions, self.rate, self.names = (
            links,
            training,
            successions,
            rate,
            names,
        )

    @classmethod
    def learn(cls, v: _Tracks, root: np.ndarray, cfg: AssociateConfig) -> _Transits:
        order = np.lexsort((np.arange(len(root)), v.start, root))
        same = root[order][1:] == root[order][:-1]
        a, b = order[:-1][same], order[1:][same]
        gap = v.start[b] - v.end[a]
        keep = (gap > 0) & (gap <= cfg.network_window) & ~((v.cam[a] == v.cam[b]) & (gap <= cfg.break_gap))
        a, b, gap = a[keep], b[keep], gap[keep]
        successions = list(zip(v.cam[a].tolist(), v.cam[b].tolist(), gap.tolist()))
        c = len(v.names)
        ends = np.bincount(v.cam, minlength=c).astype(float)
        links = learn_transits(successions, v.names, ends)
        span = np.array(
            [
                max(float(v.end[v.cam == k].max() - v.start[v.cam == k].min()), 1.0) if ends[k] else 1.0
                for k in range(c)
            ]
        )
        training = {(int(x), int(y)): float(g) for x, y, g in zip(a, b, gap)}
        return cls(links, training, successions, ends / span, v.names)

    def candidates(
        self, v: _Tracks, cfg: AssociateConfig, per_camera: int = 3
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sequential pairs to score: for each tracklet end, the first ``per_camera`` tracklets that begin after
        it within ``network_window`` in each camera a link leads to."""
        out_i, out_j = [], []
        for a, b in self.links:
            src = np.flatnonzero(v.cam == a)
            dst = np.flatnonzero(v.cam == b)  # by start (canonical order)
            if not len(src) or not len(dst):
                continue
            first = np.searchsorted(v.start[dst], v.end[src], "right")
            for k in range(per_camera):
                at = first + k
                ok = at < len(dst)
                x, y = src[ok], dst[at[ok]]
                ok = (v.start[y] - v.end[x] <= cfg.network_window) & (x != y)
                out_i.append(x[ok])
                out_j.append(y[ok])
        if not out_i:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(out_i), np.concatenate(out_j)

    def evidence(
        self, v: _Tracks, cfg: AssociateConfig, i: np.ndarray, j: np.ndarray, gap: np.ndarray
    ) -> np.ndarray:
        """(P,) transit evidence (log10 odds) of pairs ``i`` before ``j``: how much more often the learned
        movement ``camera(i) -> camera(j)`` puts someone into ``j``'s view that long after ``i`` left than
        tracklets begin there anyway; NaN for pairs it does not apply to (seen together, continuations, no
        learned link). In ``[-0.5, transit_evidence_max]``."""
        out = np.full(len(i), np.nan)
        ci, cj = v.cam[i], v.cam[j]
        ok = (gap > 0) & (gap <= cfg.network_window) & ~((ci == cj) & (gap <= cfg.break_gap))
        for (a, b), link in self.links.items():
            sel = np.flatnonzero(ok & (ci == a) & (cj == b))
            if not len(sel):
                continue
            lg = np.log(gap[sel])
            n, mean, var = link.count, link.log_mean, link.log_std**2
            own = np.array([(int(x), int(y)) in self.training for x, y in zip(i[sel], j[sel])])
            if own.any():  # leave one out: the model without this pair
                m = np.full(len(sel), mean)
                s2 = np.full(len(sel), var)
                k = n + _PRIOR_WEIGHT
                m[own] = (mean * k - lg[own]) / (k - 1)
                s2[own] = np.maximum((var * k - (lg[own] - m[own]) ** 2) / (k - 1), MIN_LOG_STD**2)
                share = np.where(own, (n - 1) / max(n, 1.0) * link.share, link.share)
            else:
                m, s2, share = np.full(len(sel), mean), np.full(len(sel), var), np.full(len(sel), link.share)
            density = np.exp(-0.5 * (lg - m) ** 2 / s2) / np.sqrt(2 * np.pi * s2) / gap[sel]  # per second
            with np.errstate(divide="ignore"):
                e = np.log10(np.maximum(share * density, 1e-12) / max(float(self.rate[b]), 1e-6))
            out[sel] = np.clip(e, -0.5, cfg.transit_evidence_max)
        return out


def reentry_mode(cfg: AssociateConfig, cameras: Sequence[str]) -> str:
    """``person`` or ``visit``: how a return into one view is treated (``associate.reentry``; ``auto`` is
    ``visit`` for a run of one camera, whose output is a MOTChallenge sequence, and ``person`` otherwise)."""
    if cfg.reentry != "auto":
        return cfg.reentry
    return "visit" if len(cameras) == 1 else "person"


def _network_info(topo: _Topology, transits: _Transits | None) -> dict | None:
    """The learned camera network for run.json: overlaps, probably disjoint pairs, transits."""
    if topo.network is None:
        return None
    out = topo.network.to_dict()
    out["transits"] = [t.to_dict() for t in (transits.links.values() if transits is not None else [])]
    return out


def _edge_terms(
    v: _Tracks,
    topo: _Topology,
    cfg: AssociateConfig,
    i: np.ndarray,
    j: np.ndarray,
    sim: np.ndarray,
    scale: float,
    model: _AppearanceModel | None = None,
    transits: _Transits | None = None,
    factor: float = 1.0,
) -> _Edges:
    """Distances of candidate pairs ``(i, j)`` (either order, repeats allowed); ``sim`` is their cosine
    similarity where already known, else NaN (see the module docstring for the terms). ``transits``: the
    learned movements between views, giving sequential pairs their transit evidence. With ``model``
    (``appearance: adaptive``) the evidence terms are summed in units of ``evidence_full``; without, the
    appearance term is the cosine distance divided by ``scale``, times ``factor`` (below 1 for an embedder the
    run shows to be strong, :func:`_appearance_strength`). Pairs seen at the same time farther apart than
    ``world_gate`` on the ground or ``overlap_gate`` box heights in a learned overlap become cannot-links."""
    n = len(v.items)
    key = np.minimum(i, j) * n + np.maximum(i, j)
    order = np.argsort(key, kind="stable")
    key, sim = key[order], sim[order]
    key, start = np.unique(key, return_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups: not known yet
        sim = np.fmax.reduceat(sim, start) if len(sim) else sim  # both directions found: the larger value
    i, j = key // n, key % n  # i starts first (canonical order)
    ci, cj = v.cam[i], v.cam[j]
    gap = np.maximum(v.start[i], v.start[j]) - np.minimum(v.end[i], v.end[j])
    if reentry_mode(cfg, v.names) == "visit":  # a return into one view is a new identity: only continuations
        keep = (ci != cj) | (gap <= cfg.break_gap)
        i, j, ci, cj, gap, sim = (x[keep] for x in (i, j, ci, cj, gap, sim))

    world_m = np.full(len(i), np.nan)
    seen = np.flatnonzero(
        (ci != cj) & (gap <= 0) & v.calibrated[ci] & v.calibrated[cj] & ~topo.disjoint[ci, cj]
    )
    world_m[seen] = v.world_distances(i[seen], j[seen])
    mapped_h = np.full(len(i), np.nan)  # learned overlaps: distance in box heights after mapping i onto j
    for (a, b), mapping in topo.mappings.items():
        sel = np.flatnonzero((gap <= 0) & (ci == a) & (cj == b) & np.isnan(world_m))
        mapped_h[sel] = v.mapped_distances(i[sel], j[sel], mapping)
    far = (world_m > cfg.world_gate) | (mapped_h > cfg.overlap_gate)
    if far.any():
        far_pairs = (i[far], j[far])
        keep = ~far
        i, j, ci, cj, gap, sim, world_m, mapped_h = (
            x[keep] for x in (i, j, ci, cj, gap, sim, world_m, mapped_h)
        )
    else:
        far_pairs = (i[:0], j[:0])
    nan = np.full(len(i), np.nan)

    row = np.full(n, -1, np.int64)
    row[v.emb_rows] = np.arange(len(v.emb_rows))
    todo = np.isnan(sim) & (row[i] >= 0) & (row[j] >= 0)
    if todo.any():
        sim[todo] = _row_dots(v.embeddings(), row[i[todo]], row[j[todo]])
    app = 1.0 - sim
    # waiting beyond a direct link's max_transit (or any wait without one) is evidence that weakens with time
    waited = gap - np.where(np.isfinite(topo.tmax[ci, cj]), topo.tmax[ci, cj], 0.0)
    time_term = (
        cfg.time_weight * np.clip(waited, 0, cfg.max_gap) / cfg.max_gap
        if math.isfinite(cfg.max_gap)
        else np.zeros(len(i))
    )

    if topo.known:
        tmin = topo.tmin[ci, cj]
        early = np.where(topo.overlapping[ci, cj], 0.0, np.maximum(tmin - gap, 0))
        with np.errstate(invalid="ignore"):
            fraction = np.where(np.isinf(tmin), 1.0, np.minimum(1.0, early / np.maximum(tmin, 1)))
        transit = np.where(ci != cj, cfg.transit_weight * fraction, np.nan)
    else:
        transit = nan.copy()
    # seen at the same time by two views the network found no overlap for (none configured)
    together = np.where(
        topo.unmatched[ci, cj] & (gap < -cfg.sync_tolerance), cfg.cooccurrence_penalty, np.nan
    )

    # calibrated, one after the other: the straight-line speed needed, allowing 1 m of position error
    apart = np.flatnonzero(gap > 0)  # i ended before j began
    speed, fast = nan.copy(), nan.copy()
    metres = np.linalg.norm(v.ground_first[j[apart]] - v.ground_last[i[apart]], axis=1)
    speed[apart] = np.maximum(metres - 1.0, 0.0) / gap[apart]
    fast[apart] = cfg.speed_weight * np.clip(speed[apart] / cfg.max_speed - 1, 0, 1)

    image = nan.copy()
    brk = np.flatnonzero((ci == cj) & (gap <= cfg.break_gap))
    brk = brk[~(v.leaves_at_edge[i[brk]] & v.enters_at_edge[j[brk]])]  # out of the view and in: no break
    if len(brk):
        a, b = i[brk], j[brk]  # same camera and no frame overlap: a ended before b began
        predicted = v.head[a] + v.velocity[a] * gap[brk, None]
        image[brk] = np.linalg.norm(v.tail[b] - predicted, axis=1) / (
            0.5 * (v.height_end[a] + v.height_start[b])
        )
    # each positional cue in [-1, 1]: 1 where the two agree exactly, -1 at its gate
    agree_world = 1 - 2 * np.minimum(world_m / cfg.world_gate, 1.0)
    agree_map = 1 - 2 * np.minimum(mapped_h / cfg.overlap_gate, 1.0)
    agree_cont = 1 - 2 * np.minimum(image / cfg.break_radius, 1.0)

    penalties = time_term + np.nan_to_num(transit) + np.nan_to_num(fast) + np.nan_to_num(together)
    reentry, kept_in_sight = nan.copy(), nan.copy()
    if model is not None:  # adaptive: evidence (log10 odds) summed, in units of evidence_full
        app_term, evidence = model.term(i, j, app, gap)
        app_ev = np.where(np.isnan(app), 0.0, cfg.evidence_full * (1.0 - app_term))
        world = cfg.position_evidence * agree_world
        mapped = cfg.position_evidence * agree_map
        continuity = cfg.continuity_evidence * agree_cont
        succession = transits.evidence(v, cfg, i, j, gap) if transits is not None else nan.copy()
        support = app_ev + np.nan_to_num(world) + np.nan_to_num(mapped) + np.nan_to_num(continuity)
        support += np.nan_to_num(succession)
        total = 1.0 - support / cfg.evidence_full + penalties
    else:  # scaled: distances added
        evidence, succession = nan.copy(), nan.copy()
        world = cfg.world_weight * agree_world * -1
        mapped = cfg.world_weight * agree_map * -1
        continuity = cfg.continuity_weight * agree_cont * -1
        scaled = factor * app / scale
        # how many of the pairs proven different look at least as alike (NaN: all of them)
        closer = np.searchsorted(v.different, app, side="right")
        if cfg.spread_k > 0 and len(v.different) >= 20:
            # an embedder whose known-different distances are concentrated (a strong one) also joins what is
            # far below them in units of their spread, though far in absolute terms: f(median) = 1 and
            # f(median - spread_k * spread) = threshold, spread = median - 5th percentile
            by_spread = 1.0 - (1.0 - cfg.threshold) * (scale - app) / (cfg.spread_k * _spread(v, scale))
            # only for pairs closer than all but spread_rate of the proven-different ones: a tracklet's nearest
            # other people lie in the tail of that distribution, not around its median
            rare = closer <= cfg.spread_rate * len(v.different)
            scaled = np.where(rare, np.fmin(scaled, by_spread), scaled)
        total = np.where(np.isnan(app), cfg.missing_appearance, scaled) + penalties
        total += np.nan_to_num(world) + np.nan_to_num(mapped) + np.nan_to_num(continuity)
        # a return into one camera that only appearance supports must look more alike than different people
        # do in this run: the share of proven-different pairs at least as close is its false-match rate; a
        # return that an overlapping view saw throughout (bridge_returns) is the same person kept in sight
        # (a break whose track restarts beyond break_radius from where it was heading is no continuation)
        unplaced = np.isnan(continuity) | (image > cfg.break_radius)
        back = np.flatnonzero((ci == cj) & unplaced & (gap > 0) & ~np.isnan(app))
        if len(back) and cfg.bridge_returns:
            seen = _bridged(v, i, j, back, np.fmax(agree_world, agree_map))
            kept_in_sight[back[seen]] = 1.0
            back = back[~seen]
        if len(back) and len(v.different):
            # the share of proven-different pairs at least as close is never taken as 0: it is at least a
            # normal tail fitted to their distances (median, and the spread down to the 5th percentile as
            # 1.645 sigma), so a look-alike just past the closest pair measured pays, a strong embedder's
            # match far below them does not
            from scipy.special import ndtr

            sigma = _spread(v, scale) / 1.645
            tail = ndtr((app[back] - scale) / sigma)
            rate = np.maximum(closer[back] / len(v.different), tail)
            reentry[back] = cfg.reentry_weight * np.clip(rate / cfg.reentry_rate, 0.0, 1.0)
        total += np.nan_to_num(reentry)
    terms = {
        "appearance": app,
        "appearance_evidence": np.where(np.isnan(app), np.nan, evidence),
        "time_gap": gap,
        "time": time_term,
        "transit_penalty": transit,
        "cooccurrence_penalty": together,
        "speed": speed,
        "speed_penalty": fast,
        "world_distance": world_m,
        "world": world,
        "overlap_distance": mapped_h,
        "overlap": mapped,
        "image_distance": image,
        "continuity": continuity,
        "transit_evidence": succession,
        "reentry_penalty": reentry,
        "kept_in_sight": kept_in_sight,
    }
    return _Edges(i, j, total, terms, far_pairs)


def _bridged(v: _Tracks, i: np.ndarray, j: np.ndarray, back: np.ndarray, agree: np.ndarray) -> np.ndarray:
    """(len(back),) bool: which returns into one view (edges ``back``: ``i`` ended before ``j`` began, one
    camera) another view saw throughout: a tracklet of another camera seen at the same time as both, at the
    same place as each (``agree`` > 0, the positional agreement of a mapped or calibrated overlap), and
    present from before ``i`` ended until after ``j`` began. Such a return is the same person kept in sight,
    not a look-alike coming back."""
    out = np.zeros(len(back), bool)
    placed = np.flatnonzero(agree > 0)
    has_partner = np.zeros(len(v.items), bool)
    has_partner[i[placed]] = has_partner[j[placed]] = True
    todo = np.flatnonzero(has_partner[i[back]] & has_partner[j[back]])
    if not len(todo):
        return out
    ends = np.zeros(len(v.items), bool)  # partners are needed only for the returns' two tracklets
    ends[i[back[todo]]] = ends[j[back[todo]]] = True
    placed = placed[ends[i[placed]] | ends[j[placed]]]
    partners: dict[int, set[int]] = {}
    for a, b in zip(i[placed].tolist(), j[placed].tolist()):
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    for n in todo.tolist():
        a, b = int(i[back[n]]), int(j[back[n]])
        for k in partners.get(a, set()) & partners.get(b, set()):
            if v.start[k] <= v.end[a] and v.end[k] >= v.start[b]:
                out[n] = True
                break
    return out


# ----------------------------------------------------------------------------------------------------------
# constrained average-linkage clustering


@dataclass
class _Merge:
    keep: int
    gone: int
    distance: float
    edge: int  # index of the closest edge between the two clusters (-1: none)
    edges: int  # number of edges between them
    reviewer: bool = False  # joined because a reviewer said so


class _Clusters:
    """Cluster members and time spans, with the full cannot-link check between two clusters.

    ``far``: the pairs found farther apart on the ground than ``world_gate`` while seen at the same time (the
    calibrated candidates include every pair seen at the same time by two calibrated cameras that may
    overlap, so this is every such cannot-link).
    """

    def __init__(
        self,
        v: _Tracks,
        topo: _Topology,
        cfg: AssociateConfig,
        far: tuple[np.ndarray, np.ndarray],
        apart: Sequence[tuple[int, int]] = (),
    ):
        self.v, self.topo, self.cfg = v, topo, cfg
        n = len(v.items)
        self.members: list[set[int]] = [{i} for i in range(n)]
        self.parent = list(range(n))  # union-find over cluster ids: find(i) is the cluster holding i
        self.span = np.c_[v.start, v.end].tolist()
        self.far: dict[int, set[int]] = {}
        for a, b in zip(*(x.tolist() for x in far)):
            self.far.setdefault(a, set()).add(b)
            self.far.setdefault(b, set()).add(a)
        self.apart: dict[int, set[int]] = {}  # a reviewer said: different people
        for a, b in apart:
            self.apart.setdefault(a, set()).add(b)
            self.apart.setdefault(b, set()).add(a)
        self.visits = reentry_mode(cfg, v.names) == "visit"

    def cannot_link(self, a: int, b: int) -> bool:
        small, big = sorted((self.members[a], self.members[b]), key=len)
        if self.apart and any(x in self.apart and not self.apart[x].isdisjoint(big) for x in small):
            return True
        if self.visits and self._two_visits(small, big):
            return True
        (sa, ea), (sb, eb) = self.span[a], self.span[b]
        if min(ea, eb) < max(sa, sb):  # never seen at the same time: no cannot-link can apply
            return False
        small, big = sorted((self.members[a], self.members[b]), key=len)
        if any(x in self.far and not self.far[x].isdisjoint(big) for x in small):
            return True
        ia, ib = (
            np.fromiter(small, np.int64, len(small))[:, None],
            np.fromiter(big, np.int64, len(big))[None, :],
        )
        return bool(_conflict(self.v, self.topo, self.cfg, ia, ib).any())

    def _two_visits(self, small: set[int], big: set[int]) -> bool:
        """Whether joining would give one identity two visits to a camera (``reentry: visit``): its tracklets
        there, in time order, leave a gap longer than ``break_gap``."""
        v = self.v
        cams = {int(v.cam[x]) for x in small}
        for cam in cams & {int(v.cam[x]) for x in big}:
            there = sorted((v.start[x], v.end[x]) for x in small | big if v.cam[x] == cam)
            reach = there[0][1]
            for start, end in there[1:]:
                if start - reach > self.cfg.break_gap:
                    return True
                reach = max(reach, end)
        return False

    def find(self, i: int) -> int:
        """The cluster tracklet ``i`` is in now."""
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def merge(self, keep: int, gone: int) -> None:
        small, big = sorted((self.members[keep], self.members[gone]), key=len)
        big |= small
        self.members[keep], self.members[gone] = big, set()
        self.parent[gone] = keep
        (sa, ea), (sb, eb) = self.span[keep], self.span[gone]
        self.span[keep] = [min(sa, sb), max(ea, eb)]


def _components(
    edges: _Edges, n: int, threshold: float, together: Sequence[tuple[int, int]] = ()
) -> list[np.ndarray]:
    """The edges that can matter, one array of edge indices per connected component of the graph of edges
    below ``threshold`` and of the pairs ``together`` a reviewer joined (components in order of their first
    tracklet). Every merge joins two clusters with such an edge or pair between them, so clusters never leave
    these components and an edge between two components never enters an average."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    below = edges.dist < threshold
    pairs = np.asarray(together, np.int64).reshape(-1, 2)
    rows, cols = np.r_[edges.i[below], pairs[:, 0]], np.r_[edges.j[below], pairs[:, 1]]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    inside = np.flatnonzero(comp[edges.i] == comp[edges.j])
    inside = inside[np.argsort(comp[edges.i[inside]], kind="stable")]
    return np.split(inside, np.flatnonzero(np.diff(comp[edges.i[inside]])) + 1) if len(inside) else []


def _cluster(
    clusters: _Clusters,
    edges: _Edges,
    components: list[np.ndarray],
    threshold: float,
    together: Sequence[tuple[int, int]] = (),
) -> tuple[np.ndarray, list[_Merge], int, int]:
    """Average linkage with cannot-link checks, one component (edge indices) at a time, after the merges a
    reviewer asked for (``together``: tracklet pairs, made one first unless a cannot-link forbids it). Returns
    the root cluster of each tracklet, the merges in order (``_Merge.edge`` indexes ``edges``, -1 for a
    reviewer's merge without an edge), how many closest pairs a cannot-link refused, and how many of the
    reviewer's pairs could not be joined."""
    n = len(clusters.members)
    merges: list[_Merge] = []
    refused = 0
    root = np.arange(n)
    forced: dict[int, list[tuple[int, int]]] = {}
    comp_of = np.full(n, -1, np.int64)
    for k, use in enumerate(components):
        comp_of[edges.i[use]] = comp_of[edges.j[use]] = k
    for a, b in together:
        forced.setdefault(int(comp_of[a]), []).append((a, b))
    for k, use in enumerate(components):
        refused += _cluster_component(clusters, edges, use, threshold, merges, forced.pop(k, []))
    for pairs in forced.values():  # pairs with no edge below the threshold
        _cluster_component(clusters, edges, np.zeros(0, np.int64), threshold, merges, pairs)
    unjoinable = sum(clusters.find(a) != clusters.find(b) for a, b in together)
    for c, mem in enumerate(clusters.members):
        root[list(mem)] = c
    return root, merges, refused, unjoinable


def _cluster_component(
    clusters: _Clusters,
    edges: _Edges,
    use: np.ndarray,
    threshold: float,
    merges: list[_Merge],
    together: Sequence[tuple[int, int]] = (),
) -> int:
    """The heap loop over the edges ``use`` of one component, after joining the tracklet pairs ``together``;
    appends its merges, returns the refusals."""
    n = len(clusters.members)
    # one shared entry [sum, count, best distance, best edge] per cluster pair, reachable from both sides;
    # heap items (average, a * n + b) with a < b
    adj: dict[int, dict[int, list]] = {}
    heap = []
    for e, a, b, d in zip(
        use.tolist(), edges.i[use].tolist(), edges.j[use].tolist(), edges.dist[use].tolist()
    ):
        entry = [d, 1, d, e]
        adj.setdefault(a, {})[b] = adj.setdefault(b, {})[a] = entry
        if d < threshold:
            heap.append((d, a * n + b))
    pop, push = heapq.heappop, heapq.heappush

    def join(a: int, b: int, entry: list | None, reviewer: bool = False) -> None:
        adj_a, adj_b = adj.setdefault(a, {}), adj.setdefault(b, {})
        keep, gone = (a, b) if (len(adj_a), -a) >= (len(adj_b), -b) else (b, a)
        distance = entry[0] / entry[1] if entry else math.nan
        merges.append(
            _Merge(keep, gone, distance, entry[3] if entry else -1, entry[1] if entry else 0, reviewer)
        )
        adj_keep, adj_gone = adj[keep], adj.pop(gone)
        adj_keep.pop(gone, None)
        adj_gone.pop(keep, None)
        for other, e in adj_gone.items():
            adj_other = adj[other]
            del adj_other[gone]
            cur = adj_keep.get(other)
            if cur is None:
                adj_keep[other] = adj_other[keep] = cur = e
            else:
                cur[0] += e[0]
                cur[1] += e[1]
                if (e[2], e[3]) < (cur[2], cur[3]):
                    cur[2], cur[3] = e[2], e[3]
            avg = cur[0] / cur[1]
            if avg < threshold:
                push(heap, (avg, keep * n + other if keep < other else other * n + keep))
        clusters.merge(keep, gone)

    for x, y in together:
        a, b = clusters.find(x), clusters.find(y)
        if a != b and not clusters.cannot_link(a, b):
            join(a, b, adj.get(a, {}).get(b), reviewer=True)
    heapq.heapify(heap)
    refused = 0
    while heap:
        d, pair = pop(heap)
        a, b = divmod(pair, n)
        adj_a, adj_b = adj.get(a), adj.get(b)
        entry = adj_a.get(b) if adj_a is not None and adj_b is not None else None
        if entry is None or entry[0] / entry[1] != d:
            continue  # stale: a cluster is gone or the pair's average changed since this was pushed
        if clusters.cannot_link(a, b):
            del adj_a[b], adj_b[a]
            refused += 1
            continue
        join(a, b, entry)
    return refused


# ----------------------------------------------------------------------------------------------------------
# public entry point


def _canonical(tracklets: Sequence[Tracklet]) -> list[int]:
    seen: set[tuple[str, int]] = set()
    for t in tracklets:
        if len(t) == 0:
            raise InputError(f"tracklet {t.key}: has no frames")
        if t.key in seen:
            raise InputError(f"tracklet {t.key}: (camera, track_id) appears twice")
        seen.add(t.key)
    return sorted(
        range(len(tracklets)),
        key=lambda i: (tracklets[i].start_time, tracklets[i].camera, tracklets[i].track_id),
    )


def _reason(v: _Tracks, a: int, b: int, terms: dict[str, float], distance: float, threshold: float) -> str:
    ta, tb = v.items[a], v.items[b]
    parts = []
    if "appearance" in terms:
        parts.append(f"appearance distance {terms['appearance']:.2f}")
    else:
        parts.append("no appearance to compare")
    gap = terms["time_gap"]
    if ta.camera == tb.camera:
        if "image_distance" in terms:
            parts.append(
                f"the track resumes {gap:.1f} s later {terms['image_distance']:.1f} box heights from "
                f"where it was heading"
            )
        elif "kept_in_sight" in terms:
            parts.append(
                f"back in {ta.camera} {gap:.1f} s later, kept in sight by an overlapping view meanwhile"
            )
        else:
            parts.append(f"re-enters {ta.camera} {gap:.1f} s later")
    elif gap <= 0:
        where = f", {terms['world_distance']:.1f} m apart on the ground" if "world_distance" in terms else ""
        parts.append(f"{ta.camera} and {tb.camera} see them at the same time{where}")
    else:
        odd = " (quicker than the camera links allow)" if terms.get("transit_penalty", 0) > 0 else ""
        parts.append(f"{tb.camera} sees them {gap:.1f} s after {ta.camera}{odd}")
    if "speed" in terms:
        parts.append(f"{terms['speed']:.1f} m/s on the ground between the two")
    return (
        f"{ta.camera}#{ta.track_id} and {tb.camera}#{tb.track_id}: {', '.join(parts)}; average distance "
        f"{distance:.2f} over {int(terms['edges'])} tracklet pair(s), below the threshold {threshold:.2f}."
    )


def associate(
    tracklets: Sequence[Tracklet],
    cfg: AssociateConfig,
    calibration: Calibration | None = None,
    constraints: Constraints | None = None,
    frames: Mapping[str, tuple[int, int]] | None = None,
) -> Association:
    """Join tracklets of all cameras into global identities (see the module docstring for the method).

    ``tracklets`` are not modified. ``calibration``: the cameras' ground-plane homographies and which views
    overlap (:func:`tracker.calibration.load_calibration` reads ``cfg.calibration``); None: uncalibrated.
    ``constraints``: a reviewer's answers; ``same`` pairs are joined first (unless a hard cannot-link forbids
    it), ``different`` pairs are cannot-links like the others. ``frames``: ``{camera: (width, height)}`` of
    the cameras' frames in pixels, so that leaving and entering at a frame's edge are not taken for a broken
    track (cameras it lacks: no such check).
    """
    t0 = time.perf_counter()
    order = _canonical(tracklets)
    n = len(order)
    if n == 0 or not cfg.enabled:
        ids = np.empty(n, np.int64)
        ids[order] = np.arange(1, n + 1)
        return Association(ids, [], {"search": "none", "identities": n})
    calibration = calibration or Calibration()
    v = _Tracks([tracklets[i] for i in order], calibration.homographies, frames)
    topo = _Topology(v.names, cfg.links, calibration.overlaps)
    if cfg.learn_network:
        known = topo.decided | (v.calibrated[:, None] & v.calibrated[None, :])
        topo.learn(learn_overlaps(v, v.names, known), {c: k for k, c in enumerate(v.names)})
    together, apart, unknown = _constraint_pairs(v, constraints or Constraints())

    qa, wa, sim, method = _appearance_edges(v, topo, cfg)
    qs, ws = _spatial_edges(v, topo, cfg)
    t_search = time.perf_counter()
    scale, scale_pairs = _appearance_scale(v, topo, cfg)
    model = _AppearanceModel(v, topo, cfg) if cfg.appearance == "adaptive" else None
    strength = _appearance_strength(v, qa, wa, sim, scale)
    factor = _appearance_factor(cfg, strength)
    pairs_i, pairs_j = np.r_[qa, qs], np.r_[wa, ws]
    known_sim = np.r_[sim, np.full(len(qs), np.nan)]
    edges = _edge_terms(v, topo, cfg, pairs_i, pairs_j, known_sim, scale, model, factor=factor)
    t_terms = time.perf_counter()
    transits: _Transits | None = None
    passes = 0
    while True:  # associate, learn how people move between the views, associate again while that changes
        passes += 1
        components = _components(edges, n, cfg.threshold, together)
        clusters = _Clusters(v, topo, cfg, edges.far, apart)
        root, merges, refused, unjoinable = _cluster(clusters, edges, components, cfg.threshold, together)
        if not cfg.learn_network or model is None or passes >= cfg.network_passes:
            break
        learned = _Transits.learn(v, root, cfg)
        if (
            transits is not None
            and learned.links.keys() == transits.links.keys()
            and (learned.training == transits.training)
        ):
            break
        transits = learned
        si, sj = transits.candidates(v, cfg)
        edges = _edge_terms(
            v,
            topo,
            cfg,
            np.r_[pairs_i, si],
            np.r_[pairs_j, sj],
            np.r_[known_sim, np.full(len(si), np.nan)],
            scale,
            model,
            transits,
            factor=factor,
        )

    if cfg.learn_network and transits is None:
        # the scaled distances do not use them (measured: the first pass joins too few successions for their
        # evidence to help); learned from the final identities all the same, for run.json, so that a user
        # sees how people move between the views and can pin it in associate.links
        transits = _Transits.learn(v, root, cfg)
    first = {}
    for r in root.tolist():  # canonical order is first-appearance order
        first.setdefault(r, len(first) + 1)
    label = np.array([first[r] for r in root.tolist()], np.int64)
    evidence = []
    with_edge = [m for m in merges if m.edge >= 0]
    terms_of = dict(
        zip((m.edge for m in with_edge), edges.terms_of(np.array([m.edge for m in with_edge], int)))
    )
    for m in merges:
        if m.edge < 0:  # a reviewer's merge of two groups no edge links
            a, b = sorted((m.keep, m.gone))
            evidence.append(
                Evidence(
                    int(label[a]),
                    v.items[a].key,
                    v.items[b].key,
                    math.nan,
                    {},
                    f"{_name(v, a)} and {_name(v, b)}: same person (reviewer).",
                )
            )
            continue
        a, b = int(edges.i[m.edge]), int(edges.j[m.edge])
        terms = terms_of[m.edge] | {"edge_distance": float(edges.dist[m.edge]), "edges": float(m.edges)}
        reason = (
            f"{_name(v, a)} and {_name(v, b)}: same person (reviewer); average distance {m.distance:.2f}."
            if m.reviewer
            else _reason(v, a, b, terms, m.distance, cfg.threshold)
        )
        evidence.append(
            Evidence(int(label[a]), v.items[a].key, v.items[b].key, float(m.distance), terms, reason)
        )
    ids = np.empty(n, np.int64)
    ids[order] = label
    info = {
        "search": method,
        "appearance_scale": round(scale, 4),
        "appearance_scale_pairs": scale_pairs,
        "appearance_strength": None if strength is None else round(strength[0], 3),
        "appearance_nearest": None if strength is None else round(strength[1], 4),
        "appearance_factor": round(factor, 4),
        "tracklets": n,
        "with_embedding": int(len(v.emb_rows)),
        "edges": int(len(edges.i)),
        "edges_within_reach": int(sum(len(c) for c in components)),
        "merges": len(merges),
        "refused_cannot_link": refused,
        "constraints_same": len(together),
        "constraints_different": len(apart),
        "constraints_unknown": unknown,
        "constraints_same_refused": unjoinable,
        "identities": len(first),
        "reentry": reentry_mode(cfg, v.names),
        "network": _network_info(topo, transits),
        "passes": passes,
        "appearance_null": model.info() if model is not None else None,
        "search_s": round(t_search - t0, 3),
        "terms_s": round(t_terms - t_search, 3),
        "cluster_s": round(time.perf_counter() - t_terms, 3),
    }
    return Association(ids, evidence, info, _candidates(v, edges, root, clusters, cfg.threshold))


def _name(v: _Tracks, i: int) -> str:
    return f"{v.items[i].camera}#{v.items[i].track_id}"


def _constraint_pairs(v: _Tracks, constraints: Constraints) -> tuple[list, list, int]:
    """The constraints as canonical index pairs: (same pairs, different pairs, pairs naming no tracklet)."""
    index = {t.key: i for i, t in enumerate(v.items)}
    unknown = 0

    def pairs(items) -> list[tuple[int, int]]:
        nonlocal unknown
        out = []
        for a, b in items:
            ia, ib = index.get((str(a[0]), int(a[1]))), index.get((str(b[0]), int(b[1])))
            if ia is None or ib is None or ia == ib:
                unknown += ia is None or ib is None
                continue
            out.append((min(ia, ib), max(ia, ib)))
        return sorted(set(out))

    return pairs(constraints.same), pairs(constraints.different), unknown


MAX_CANDIDATES_PER_IDENTITY = 5


def _candidates(
    v: _Tracks, edges: _Edges, root: np.ndarray, clusters: _Clusters, threshold: float
) -> list[Candidate]:
    """Identity pairs linked by edges but left apart, with their average-linkage distance below twice the
    threshold, at most :data:`MAX_CANDIDATES_PER_IDENTITY` per identity, closest first."""
    n = len(root)
    ri, rj = root[edges.i], root[edges.j]
    apart = ri != rj
    if not apart.any():
        return []
    lo, hi = np.minimum(ri, rj)[apart], np.maximum(ri, rj)[apart]
    key = lo * n + hi
    keys, inverse = np.unique(key, return_inverse=True)
    total = np.bincount(inverse, weights=edges.dist[apart])
    count = np.bincount(inverse)
    mean = total / count
    order = np.lexsort((edges.dist[apart], inverse))  # per pair, its closest edge first
    first = order[np.r_[True, np.diff(inverse[order]) != 0]]
    best = np.flatnonzero(apart)[first]  # edge index of each pair's closest edge, in the order of ``keys``
    out: list[Candidate] = []
    per: dict[int, int] = {}
    for k in np.argsort(mean, kind="stable"):
        if mean[k] >= 2 * threshold:
            break
        a, b = divmod(int(keys[k]), n)
        if per.get(a, 0) >= MAX_CANDIDATES_PER_IDENTITY or per.get(b, 0) >= MAX_CANDIDATES_PER_IDENTITY:
            continue
        per[a], per[b] = per.get(a, 0) + 1, per.get(b, 0) + 1
        e = int(best[k])
        i, j = int(edges.i[e]), int(edges.j[e])
        out.append(
            Candidate(
                v.items[i].key,
                v.items[j].key,
                float(mean[k]),
                int(count[k]),
                bool(clusters.cannot_link(a, b)),
            )
        )
    return out
