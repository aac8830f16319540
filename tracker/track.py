"""Per-camera multi-object tracking: a constant-velocity Kalman filter per track and Hungarian assignment.

The association runs in two stages, as in ByteTrack: confident detections are matched to every live track
first, then the remaining tracks get a second chance against low-confidence detections (partly occluded
people often score low). Tracks are born from unmatched confident detections, reported once they have
``min_hits`` matches, and die after ``max_age`` seconds without one. Finished tracks become
:class:`~tracker.types.Tracklet` objects with a few good crops for re-identification.

Box state: ``[cx, cy, w, h, vcx, vcy, vw, vh]`` in pixels and pixels per processed frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lap
import numpy as np
from filterpy.kalman import update as kf_update

from tracker.config import TrackConfig
from tracker.types import Crop, Detections, Tracklet

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)
# Noise scales relative to the box height (as in DeepSORT / ByteTrack): position and velocity.
_STD_POS, _STD_VEL = 1.0 / 20, 1.0 / 160


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair: ``a`` (N, 4) and ``b`` (M, 4) xyxy -> (N, M) float32."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def visibility(boxes: np.ndarray) -> np.ndarray:
    """(N,) fraction of each box not covered by a box whose bottom edge is lower (nearer the camera)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    if n < 2:
        return np.ones(n, np.float32)
    lt = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    nearer = boxes[None, :, 3] > boxes[:, None, 3]
    area = np.maximum(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1), 1e-6)
    covered = np.where(nearer, inter, 0).max(axis=1) / area
    return np.clip(1.0 - covered, 0.0, 1.0).astype(np.float32)


def linear_assignment(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching (Hungarian / Jonker-Volgenant via lap) that never pairs above ``max_cost``.

    Returns ``(matches (K, 2) int rows/cols, unmatched_rows, unmatched_cols)``.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), int), np.arange(n), np.arange(m)
    _, x, _ = lap.lapjv(cost.astype(np.float64), extend_cost=True, cost_limit=max_cost)
    rows = np.flatnonzero(x >= 0)
    matches = np.c_[rows, x[rows]].astype(int)
    unmatched_cols = np.setdiff1d(np.arange(m), matches[:, 1])
    return matches, np.flatnonzero(x < 0), unmatched_cols


def _xyxy_to_z(box: np.ndarray) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + w / 2, box[1] + h / 2, w, h], np.float64)


def _x_to_xyxy(x: np.ndarray) -> np.ndarray:
    cx, cy, w, h = x[:4]
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


@dataclass
class _Track:
    """Internal state of one live track; rows are appended on every matched frame."""

    track_id: int
    x: np.ndarray
    P: np.ndarray
    hits: int = 1
    misses: int = 0
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    crops: list[Crop] = field(default_factory=list)
    feature: np.ndarray | None = None
    last_crop_frame: int = -(10**9)

    @property
    def box(self) -> np.ndarray:
        return _x_to_xyxy(self.x)

    def update(self, box: np.ndarray, score: float) -> None:
        h = max(self.x[3], 1.0)
        r = np.diag(np.full(4, (_STD_POS * h) ** 2))
        self.x, self.P = kf_update(self.x, self.P, _xyxy_to_z(box), r, _H)
        self.hits += 1
        self.misses = 0


def predict_all(tracks: list[_Track], vel_scale: float = 1.0) -> None:
    """One constant-velocity Kalman prediction for every track at once (vectorised ``x = F x``,
    ``P = F P F^T + Q``, the same step as filterpy's ``predict``); each track counts one more miss.

    Process noise scales with each box's height; a box whose size would shrink below one pixel stops
    changing size.
    """
    if not tracks:
        return
    x = np.stack([t.x for t in tracks])  # (N, 8)
    P = np.stack([t.P for t in tracks])  # (N, 8, 8)
    shrink = (x[:, 2] + x[:, 6] <= 1) | (x[:, 3] + x[:, 7] <= 1)
    x[shrink, 6:8] = 0
    h = np.maximum(x[:, 3], 1.0)
    std = np.concatenate([np.repeat((_STD_POS * h)[:, None], 4, 1),
                          np.repeat((_STD_VEL * vel_scale * h)[:, None], 4, 1)], axis=1)  # (N, 8)
    x = x @ _F.T
    P = _F @ P @ _F.T
    P[:, np.arange(8), np.arange(8)] += std**2
    for t, xi, Pi in zip(tracks, x, P):
        t.x, t.P = xi, Pi
        t.misses += 1


def _new_state(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = _xyxy_to_z(box)
    h = max(z[3], 1.0)
    std = np.r_[[2 * _STD_POS * h] * 4, [10 * _STD_VEL * h] * 4]
    return np.r_[z, np.zeros(4)], np.diag(std**2)


class CameraTracker:
    """Tracks people in one camera. Feed frames in order with :meth:`update`; call :meth:`finish` at the end.

    Parameters
    ----------
    cfg : TrackConfig
    fps : float
        Frames per second of the *processed* frames (video fps / stride), to turn ``max_age`` into frames.
    camera : str
        Camera name stamped on the tracklets.
    quality : callable, optional
        ``quality(box_height, score, visibility) -> float`` weighing crops for re-identification.
    """

    def __init__(self, cfg: TrackConfig, fps: float, camera: str = "cam", quality=None):
        self.cfg = cfg
        self.camera = camera
        self.max_misses = max(1, int(round(cfg.max_age * fps)))
        self.crop_every = max(1, int(round(fps / 2)))
        # Velocity noise is tuned per frame at 30 fps; at lower rates velocity changes more between frames.
        self.vel_scale = 30.0 / max(fps, 1e-3)
        self._quality = quality or _default_quality
        self._tracks: list[_Track] = []
        self._done: list[_Track] = []
        self._next_id = 1

    def update(
        self,
        frame: int,
        time: float,
        detections: Detections,
        image: np.ndarray | None = None,
        features: np.ndarray | None = None,
    ) -> Detections:
        """Advance one frame.

        ``features`` (N, D) are optional L2-normalised appearance vectors of the detections, used with
        ``cfg.appearance_weight > 0``. Returns the detections matched to confirmed tracks, with
        ``tracker_id`` set.
        """
        cfg = self.cfg
        keep = detections.confidence >= cfg.low_thresh
        dets, feats = detections[keep], (features[keep] if features is not None else None)
        predict_all(self._tracks, self.vel_scale)

        high = np.flatnonzero(dets.confidence >= cfg.high_thresh)
        low = np.flatnonzero(dets.confidence < cfg.high_thresh)
        tracks = self._tracks
        track_boxes = np.array([t.box for t in tracks], np.float32).reshape(-1, 4)

        cost = 1.0 - iou_matrix(track_boxes, dets.xyxy[high])
        if feats is not None and cfg.appearance_weight > 0 and len(high):
            cost = self._with_appearance(cost, feats[high], 1.0 - cfg.match_iou)
        m1, rest_t, rest_hi = linear_assignment(cost, 1.0 - cfg.match_iou)
        matched = [(tracks[i], high[j]) for i, j in m1]

        rest_tracks = [tracks[i] for i in rest_t]
        cost_low = 1.0 - iou_matrix(track_boxes[rest_t], dets.xyxy[low])
        m2, _, _ = linear_assignment(cost_low, 1.0 - cfg.low_match_iou)
        matched += [(rest_tracks[i], low[j]) for i, j in m2]

        vis = visibility(dets.xyxy)
        out_ids = np.full(len(dets), -1, np.int64)
        for track, j in matched:
            track.update(dets.xyxy[j], float(dets.confidence[j]))
            self._record(track, frame, time, dets.xyxy[j], float(dets.confidence[j]), float(vis[j]), image,
                         track.box)
            if feats is not None:
                f = feats[j] if track.feature is None else 0.9 * track.feature + 0.1 * feats[j]
                track.feature = f / max(np.linalg.norm(f), 1e-12)
            if track.hits >= cfg.min_hits:
                out_ids[j] = track.track_id

        for j in rest_hi:
            d = high[j]
            if dets.confidence[d] >= cfg.new_track_thresh:
                x, p = _new_state(dets.xyxy[d])
                t = _Track(self._next_id, x, p)
                self._next_id += 1
                self._record(t, frame, time, dets.xyxy[d], float(dets.confidence[d]), float(vis[d]), image)
                if feats is not None:
                    t.feature = feats[d]
                self._tracks.append(t)

        alive = []
        for t in self._tracks:
            tentative = t.hits < cfg.min_hits
            if t.misses > self.max_misses or (tentative and t.misses > 0):
                self._done.append(t)
            else:
                alive.append(t)
        self._tracks = alive
        out = dets[out_ids >= 0]
        out.tracker_id = out_ids[out_ids >= 0]
        return out

    def _with_appearance(self, iou_cost: np.ndarray, feats: np.ndarray, gate: float) -> np.ndarray:
        w = self.cfg.appearance_weight
        tf = [t.feature for t in self._tracks]
        if not tf or any(f is None for f in tf):
            return iou_cost
        app = 1.0 - np.asarray(tf, np.float32) @ feats.T
        cost = (1 - w) * iou_cost + w * np.clip(app, 0, 2)
        return np.where(iou_cost > gate, np.inf, cost)

    def _record(self, t: _Track, frame: int, time: float, box, score: float, vis: float, image,
                smoothed: np.ndarray | None = None) -> None:
        """Append a matched frame: the Kalman-filtered box (``smoothed``, when given) goes into the track,
        the detection's own ``box`` is what crops are cut from."""
        t.frames.append(frame)
        t.times.append(time)
        t.boxes.append(np.asarray(box if smoothed is None else smoothed, np.float32))
        t.scores.append(score)
        if image is None or frame - t.last_crop_frame < self.crop_every:
            return
        crop = _cut(image, box, self.cfg.min_crop_height)
        if crop is None:
            return
        t.last_crop_frame = frame
        q = float(self._quality(float(box[3] - box[1]), score, vis))
        t.crops.append(Crop(frame, np.asarray(box, np.float32), score, q, crop))
        if len(t.crops) > self.cfg.max_crops:
            t.crops.pop(int(np.argmin([c.quality for c in t.crops])))

    def finish(self) -> list[Tracklet]:
        """End every track; return the confirmed ones as tracklets, ordered by track id."""
        self._done.extend(self._tracks)
        self._tracks = []
        tracklets = [self._to_tracklet(t) for t in self._done if t.hits >= self.cfg.min_hits]
        self._done = []
        tracklets = [t for t in tracklets if len(t) >= self.cfg.min_length]
        return sorted(tracklets, key=lambda t: t.track_id)

    def _to_tracklet(self, t: _Track) -> Tracklet:
        frames = np.asarray(t.frames, np.int64)
        times = np.asarray(t.times, np.float64)
        boxes = np.asarray(t.boxes, np.float32)
        scores = np.asarray(t.scores, np.float32)
        if self.cfg.interpolate:
            frames, times, boxes, scores = interpolate_gaps(frames, times, boxes, scores, self.max_misses)
        return Tracklet(self.camera, t.track_id, frames, times, boxes, scores, crops=sorted(t.crops, key=lambda c: c.frame))


def interpolate_gaps(frames, times, boxes, scores, max_gap: int, step: int | None = None):
    """Fill gaps of at most ``max_gap`` missing steps linearly (interpolated rows get score 0).

    ``step`` is the frame spacing of processed frames (the smallest gap in ``frames`` when not given).
    """
    if len(frames) < 2:
        return frames, times, boxes, scores
    diffs = np.diff(frames)
    step = int(step or diffs.min())
    gaps = np.flatnonzero((diffs > step) & (diffs <= step * (max_gap + 1)))
    if not len(gaps):
        return frames, times, boxes, scores
    parts_f, parts_t, parts_b, parts_s = [frames], [times], [boxes], [scores]
    for g in gaps:
        new_f = np.arange(frames[g] + step, frames[g + 1], step)
        a = (new_f - frames[g]) / (frames[g + 1] - frames[g])
        parts_f.append(new_f)
        parts_t.append(times[g] + a * (times[g + 1] - times[g]))
        parts_b.append((boxes[g] + a[:, None] * (boxes[g + 1] - boxes[g])).astype(np.float32))
        parts_s.append(np.zeros(len(new_f), np.float32))
    f = np.concatenate(parts_f)
    order = np.argsort(f, kind="stable")
    return f[order], np.concatenate(parts_t)[order], np.concatenate(parts_b)[order], np.concatenate(parts_s)[order]


def crop_box(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The part of ``image`` inside ``box`` (xyxy), clipped to the image and at least 1x1 (a view, no copy)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = np.round(box).astype(int)
    x1, y1 = min(max(x1, 0), w - 1), min(max(y1, 0), h - 1)
    return image[y1 : max(min(y2, h), y1 + 1), x1 : max(min(x2, w), x1 + 1)]


def _cut(image: np.ndarray, box: np.ndarray, min_height: int) -> np.ndarray | None:
    """Copy the box out of the image, or None when it is too small or mostly outside the frame."""
    crop = crop_box(image, box)
    x1, y1, x2, y2 = np.round(box).astype(int)
    if crop.shape[0] < min_height or crop.shape[1] < 4 or crop.shape[0] * crop.shape[1] < 0.8 * (x2 - x1) * (y2 - y1):
        return None
    return crop.copy()


def _default_quality(height: float, score: float, vis: float) -> float:
    return float(np.clip(height / 256.0, 0, 1) * np.clip(score, 0, 1) * vis)
