"""Time chunks of a long camera and the stitching of their tracks.

A camera of ``F`` frames is cut into ``n ~ F / (chunk_seconds * fps)`` chunks of about equal length that can
be tracked independently, in parallel. Each chunk *owns* the frames ``own_start <= index < stop`` and also
processes a lead-in of ``overlap`` seconds before ``own_start`` (``start <= index < own_start``), which the
previous chunk owns: the detector's background model and the tracker warm up there, and the tracks of the two
chunks are matched there.

:func:`stitch` joins the chunks' tracklets: in each overlap, tracklets of the earlier chunk that have rows
there are matched one-to-one (Hungarian, on the mean IoU of their boxes over the frames both have) to
tracklets of the later chunk. A matched pair becomes one tracklet: the earlier rows, then the later chunk's
rows after the earlier tracklet's last frame (gaps up to the tracker's ``max_age`` interpolated). Unmatched
later tracklets keep only the frames their chunk owns. Stitched tracklets are renumbered ``1..N`` by (first
frame, chunk, track id), so the result depends only on the chunks' contents, not on the order they finished
in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracker.geometry import interpolate_gaps, iou_matrix, linear_assignment
from tracker.types import Crop, Tracklet

MIN_COMMON_FRAMES = 3  # frames a pair must share in the overlap to be matched
MIN_MEAN_IOU = 0.5  # mean IoU over those frames for a match


@dataclass(frozen=True)
class Chunk:
    """Frames ``start <= index < stop`` are processed (``stop`` None: to the end), and frames
    ``own_start <= index < stop`` are this chunk's output. 1-based frame numbers of the camera's video."""

    start: int
    own_start: int
    stop: int | None

    @property
    def whole(self) -> bool:
        return self.start == 1 and self.stop is None


WHOLE = Chunk(1, 1, None)


def plan_chunks(
    frames_total: int | None, fps: float, chunk_seconds: float, overlap_seconds: float
) -> list[Chunk]:
    """The chunks of a camera with ``frames_total`` frames at ``fps``.

    One chunk (:data:`WHOLE`) when ``chunk_seconds`` is 0, the frame count is unknown, or the video is not
    much longer than one chunk; otherwise ``round(frames_total / (chunk_seconds * fps))`` chunks of equal
    length, each after the first with a lead-in of ``overlap_seconds``. The last chunk runs to the end of the
    video, whatever the container's frame count says.
    """
    if chunk_seconds <= 0 or not frames_total or fps <= 0:
        return [WHOLE]
    length = max(1, round(chunk_seconds * fps))
    n = max(1, round(frames_total / length))
    if n == 1:
        return [WHOLE]
    lead = max(1, round(overlap_seconds * fps))
    owns = [1 + round(k * frames_total / n) for k in range(n)]
    stops = [*owns[1:], None]
    return [
        Chunk(max(1, own - lead) if k else 1, own, stop)
        for k, (own, stop) in enumerate(zip(owns, stops, strict=True))
    ]


@dataclass
class ChunkTracks:
    """One chunk's tracklets and, per tracklet, the appearance features of its crops.

    ``features[i]`` is ``(len(tracklets[i].crops), D)`` float32 (row ``j`` belongs to crop ``j``), or None
    when there is no embedder or the tracklet has no crops.
    """

    chunk: Chunk
    tracklets: list[Tracklet]
    features: list[np.ndarray | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.features:
            self.features = [None] * len(self.tracklets)
        if len(self.features) != len(self.tracklets):
            raise ValueError(f"{len(self.features)} feature arrays for {len(self.tracklets)} tracklets")


@dataclass
class _Growing:
    """A tracklet being stitched: its rows so far, its crops with their features, and where it began."""

    camera: str
    order: tuple[int, int, int]  # (first frame, chunk number, track id in that chunk): for renumbering
    frames: np.ndarray
    times: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    crops: list[Crop]
    features: list[np.ndarray | None]

    @classmethod
    def of(cls, t: Tracklet, feats: np.ndarray | None, chunk_no: int, keep_from: int = 1) -> _Growing | None:
        rows = t.frames >= keep_from
        if not rows.any():
            return None
        crops = [
            (c, None if feats is None else feats[j]) for j, c in enumerate(t.crops) if c.frame >= keep_from
        ]
        frames = t.frames[rows]
        return cls(
            t.camera,
            (int(frames[0]), chunk_no, t.track_id),
            frames,
            t.times[rows],
            t.boxes[rows],
            t.scores[rows],
            [c for c, _ in crops],
            [f for _, f in crops],
        )

    @property
    def last(self) -> int:
        return int(self.frames[-1])

    def extend(self, other: _Growing, max_gap: int, step: int, interpolate: bool) -> None:
        """Append ``other``'s rows and crops after this tracklet's last frame."""
        cut = self.last
        after = other.frames > cut
        frames = np.r_[self.frames, other.frames[after]]
        times = np.r_[self.times, other.times[after]]
        boxes = np.r_[self.boxes, other.boxes[after]]
        scores = np.r_[self.scores, other.scores[after]]
        if interpolate:
            frames, times, boxes, scores = interpolate_gaps(frames, times, boxes, scores, max_gap, step)
        self.frames, self.times, self.boxes, self.scores = frames, times, boxes, scores
        for c, f in zip(other.crops, other.features):
            if c.frame > cut:
                self.crops.append(c)
                self.features.append(f)

    def limit_crops(self, max_crops: int) -> None:
        """Drop the lowest-quality crops (the first of equals) until at most ``max_crops`` remain, as the
        tracker does while tracking."""
        while len(self.crops) > max_crops:
            i = int(np.argmin([c.quality for c in self.crops]))
            del self.crops[i], self.features[i]

    def rows_in(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        sel = (self.frames >= lo) & (self.frames < hi)
        return self.frames[sel], self.boxes[sel]


def _overlap_cost(left: list[_Growing], right: list[_Growing], lo: int, hi: int) -> np.ndarray:
    """(L, R) cost ``1 - mean IoU`` over the frames in ``[lo, hi)`` both tracklets have; ``inf`` where they
    share fewer than :data:`MIN_COMMON_FRAMES`."""
    cost = np.full((len(left), len(right)), np.inf)
    rows = [g.rows_in(lo, hi) for g in left]
    cols = [g.rows_in(lo, hi) for g in right]
    for i, (fa, ba) in enumerate(rows):
        for j, (fb, bb) in enumerate(cols):
            common, ia, ib = np.intersect1d(fa, fb, assume_unique=True, return_indices=True)
            if len(common) < MIN_COMMON_FRAMES:
                continue
            ious = np.diag(iou_matrix(ba[ia], bb[ib]))
            cost[i, j] = 1.0 - float(ious.mean())
    return cost


def stitch(
    parts: list[ChunkTracks],
    max_crops: int,
    min_length: int,
    max_gap: int,
    step: int = 1,
    interpolate: bool = True,
) -> ChunkTracks:
    """Join the tracklets of a camera's chunks into one set (see the module docstring).

    ``parts`` in any order; ``max_crops`` / ``min_length`` / ``interpolate`` as in the tracker's config
    (``track.max_crops``, ``track.min_length``, ``track.interpolate``); ``max_gap``: the longest gap in
    processed frames to interpolate (the tracker's ``max_age`` in frames); ``step``: the frame stride. A
    single whole chunk is returned unchanged.
    """
    parts = sorted(parts, key=lambda p: p.chunk.start)
    if len(parts) == 1 and parts[0].chunk.whole:
        return parts[0]
    done: list[_Growing] = []
    live: list[_Growing] = []
    for k, part in enumerate(parts):
        lo, own = part.chunk.start, part.chunk.own_start
        incoming = [_Growing.of(t, f, k) for t, f in zip(part.tracklets, part.features)]
        left = [g for g in live if g.last >= lo]
        done.extend(g for g in live if g.last < lo)
        matches = np.zeros((0, 2), int)
        if left and incoming:
            cost = _overlap_cost(left, incoming, lo, own)
            matches, _, _ = linear_assignment(np.where(np.isfinite(cost), cost, 2.0), 1.0 - MIN_MEAN_IOU)
        for i, j in matches:
            left[i].extend(incoming[j], max_gap, step, interpolate)
        matched = {int(j) for j in matches[:, 1]}
        live = list(left)
        for j, (t, f) in enumerate(zip(part.tracklets, part.features)):
            if j in matched:
                continue
            owned = _Growing.of(t, f, k, keep_from=own)  # the earlier chunk speaks for the lead-in
            if owned is not None and len(owned.frames) >= min_length:
                live.append(owned)
    done.extend(live)
    done.sort(key=lambda g: g.order)
    tracklets, features = [], []
    for new_id, g in enumerate(done, start=1):
        g.limit_crops(max_crops)
        tracklets.append(
            Tracklet(g.camera, new_id, g.frames, g.times, g.boxes, g.scores, crops=list(g.crops))
        )
        feats = [f for f in g.features if f is not None]
        whole = g.crops and len(feats) == len(g.crops)
        features.append(np.stack(feats).astype(np.float32) if whole else None)
    return ChunkTracks(WHOLE, tracklets, features)
