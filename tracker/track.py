"""Per-camera multi-object tracking: a constant-velocity Kalman filter per track and Hungarian assignment.

The association runs in two stages, as in ByteTrack: confident detections are matched to every live track
first, then the remaining tracks get a second chance against low-confidence detections (partly occluded
people often score low). Tracks are born from unmatched confident detections, reported once they have
``min_hits`` matches, and die after ``max_age`` seconds without one. Finished tracks become
:class:`~tracker.types.Tracklet` objects with a few good crops for re-identification.

Box state: ``[cx, cy, w, h, vcx, vcy, vw, vh]`` in pixels and pixels per processed frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from filterpy.kalman import update as kf_update

from tracker.config import TrackConfig
from tracker.geometry import (
    crop_box,
    cxcywh_to_xyxy,
    interpolate_gaps,
    iou_matrix,
    linear_assignment,
    visibility,
    xyxy_to_cxcywh,
)
from tracker.types import Crop, Detections, Tracklet

# Crop height (pixels) at which the size term of crop_quality reaches 1 - 1/e: a person this tall
# already shows clothing texture and colour layout clearly; taller crops add little.
QUALITY_HEIGHT = 96.0


def crop_quality(box_h: float, score: float, visibility: float = 1.0) -> float:
    """Weight in [0, 1] of one crop: which crops a track keeps, and how much each counts in its tracklet's
    appearance embedding.

    ``size * confidence * visibility``, where ``size = 1 - exp(-box_h / 96)`` rises with the box height
    in pixels and saturates (24 px -> 0.22, 96 px -> 0.63, 200 px -> 0.88), ``score`` is the detector
    confidence and ``visibility`` the unoccluded fraction (1 when unknown). Each factor is clipped to
    [0, 1]; larger, more confident, less occluded crops get higher weight.
    """
    size = 1.0 - math.exp(-max(float(box_h), 0.0) / QUALITY_HEIGHT)
    conf = min(max(float(score), 0.0), 1.0)
    vis = min(max(float(visibility), 0.0), 1.0)
    return size * conf * vis


def max_misses(cfg: TrackConfig, fps: float) -> int:
    """Processed frames a track may go unmatched before it dies (``max_age`` seconds at ``fps``); also the
    longest gap a finished tracklet is interpolated across."""
    return max(1, int(round(cfg.max_age * fps)))


_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)
# Noise scales relative to the box height (as in DeepSORT / ByteTrack): position and velocity.
_STD_POS, _STD_VEL = 1.0 / 20, 1.0 / 160


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
        """(4,) float32 xyxy of the current state."""
        return cxcywh_to_xyxy(self.x[None])[0]

    def update(self, box: np.ndarray, score: float) -> None:
        h = max(self.x[3], 1.0)
        r = np.diag(np.full(4, (_STD_POS * h) ** 2))
        self.x, self.P = kf_update(self.x, self.P, xyxy_to_cxcywh(box)[0], r, _H)
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
    std = np.concatenate(
        [np.repeat((_STD_POS * h)[:, None], 4, 1), np.repeat((_STD_VEL * vel_scale * h)[:, None], 4, 1)],
        axis=1,
    )  # (N, 8)
    x = x @ _F.T
    P = _F @ P @ _F.T
    P[:, np.arange(8), np.arange(8)] += std**2
    for t, xi, Pi in zip(tracks, x, P):
        t.x, t.P = xi, Pi
        t.misses += 1


def _new_state(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = xyxy_to_cxcywh(box)[0]
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
        ``quality(box_height, score, visibility) -> float`` weighing crops (default :func:`crop_quality`).
    """

    def __init__(self, cfg: TrackConfig, fps: float, camera: str = "cam", quality=crop_quality):
        self.cfg = cfg
        self.camera = camera
        self.max_misses = max_misses(cfg, fps)
        self.crop_every = max(1, int(round(fps / 2)))
        # Velocity noise is tuned per frame at 30 fps; at lower rates velocity changes more between frames.
        self.vel_scale = 30.0 / max(fps, 1e-3)
        self._quality = quality
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
            self._record(
                track, frame, time, dets.xyxy[j], float(dets.confidence[j]), float(vis[j]), image, track.box
            )
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

    def _record(
        self,
        t: _Track,
        frame: int,
        time: float,
        box,
        score: float,
        vis: float,
        image,
        smoothed: np.ndarray | None = None,
    ) -> None:
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
        return Tracklet(
            self.camera,
            t.track_id,
            frames,
            times,
            boxes,
            scores,
            crops=sorted(t.crops, key=lambda c: c.frame),
        )


def _cut(image: np.ndarray, box: np.ndarray, min_height: int) -> np.ndarray | None:
    """Copy the box out of the image, or None when it is too small or mostly outside the frame."""
    crop = crop_box(image, box)
    x1, y1, x2, y2 = np.round(box).astype(int)
    if (
        crop.shape[0] < min_height
        or crop.shape[1] < 4
        or crop.shape[0] * crop.shape[1] < 0.8 * (x2 - x1) * (y2 - y1)
    ):
        return None
    return crop.copy()
