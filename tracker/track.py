"""Per-camera multi-object tracking: a constant-velocity Kalman filter per track and Hungarian assignment.

The association runs in two stages, as in ByteTrack: confident detections are matched to every live track
first, then the remaining tracks get a second chance against low-confidence detections (partly occluded
people often score low). Tracks are born from unmatched confident detections, reported once they have
``min_hits`` matches, and die after ``max_age`` seconds without one. Finished tracks become
:class:`~tracker.types.Tracklet` objects with a few good crops for re-identification.

Box state: ``[cx, cy, w, h, vcx, vcy, vw, vh]`` in pixels and pixels per processed frame. The live tracks
are held as stacked arrays (``(N, 8)`` states, ``(N, 8, 8)`` covariances), so that prediction and update
are one batched step for all tracks (:func:`kalman_predict`, :func:`kalman_update`: the same arithmetic as
filterpy's ``predict`` / ``update``, which the tests check step by step). Matched rows go into a per-frame
log that :meth:`CameraTracker.finish` cuts into tracklets, so a frame costs a fixed number of array
operations whatever the number of tracks.
"""

from __future__ import annotations

import math

import numpy as np

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


CROWDED_IOU = 0.3
"""A detection overlapping another track's predicted box by this IoU does not update its own track's
appearance: its crop may show the other person (PETS09-S2L1, YOLOv8n ``--no-associate``: IDF1 0.806 ->
0.818; the same from 0.1 to 0.3, no gain at 0.5)."""

REFERENCE_FPS = 30.0
"""Frame rate at which the per-frame settings (velocity noise, ``low_match_iou``) are given."""


def scaled_iou(iou_at_reference: float, fps: float) -> float:
    """An IoU threshold given at :data:`REFERENCE_FPS` for frames at ``fps``.

    Between two frames a person moves ``REFERENCE_FPS / fps`` times as far at a lower frame rate, and the
    prediction error (a random walk of the velocity) grows with the square root of that: the IoU a correct
    match loses, ``1 - iou``, is scaled by ``sqrt(REFERENCE_FPS / fps)`` (0.7 at 30 fps is 0.58 at 15 fps,
    0.48 at 10 fps), and never raised above the given value at higher rates.
    """
    factor = math.sqrt(REFERENCE_FPS / max(fps, 1e-3))
    return float(min(iou_at_reference, max(0.0, 1.0 - (1.0 - iou_at_reference) * factor)))


# ------------------------------------------------------------------------------------- Kalman filter

F = np.eye(8)
F[:4, 4:] = np.eye(4)
"""(8, 8) constant-velocity transition: position += velocity, per processed frame."""
H = np.eye(4, 8)
"""(4, 8) measurement matrix: a detection measures ``cx, cy, w, h``."""
# Noise scales relative to the box height (as in DeepSORT / ByteTrack): position and velocity.
STD_POS, STD_VEL = 1.0 / 20, 1.0 / 160
_R_UNIT = np.full(4, STD_POS)  # measurement noise per pixel of box height
_P0_UNIT = np.r_[[2 * STD_POS] * 4, [10 * STD_VEL] * 4]  # initial uncertainty per pixel of box height
_DIAG8 = (np.arange(8), np.arange(8))
_DIAG4 = (np.arange(4), np.arange(4))


def kalman_predict(x: np.ndarray, P: np.ndarray, q_std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One constant-velocity prediction of N filters: ``x = F x``, ``P = F P F^T + diag(q_std^2)``.

    ``x`` (N, 8) and ``P`` (N, 8, 8) float64, ``q_std`` (N, 8) process-noise standard deviations; returns
    new arrays (filterpy's ``predict(x, P, F, Q)`` on every row).
    """
    x = x @ F.T
    P = F @ P @ F.T
    P[:, _DIAG8[0], _DIAG8[1]] += q_std**2
    return x, P


def kalman_update(
    x: np.ndarray, P: np.ndarray, z: np.ndarray, r_std: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Correct N filters with one measurement each, in one batched solve.

    ``x`` (N, 8), ``P`` (N, 8, 8), ``z`` (N, 4) measured ``cx, cy, w, h``, ``r_std`` (N, 4) measurement
    standard deviations (diagonal R). The innovation covariances ``S = H P H^T + R`` (N, 4, 4) are solved
    for the gains at once (``K^T = S^-1 H P``, as P and S are symmetric); the covariance update is
    ``P - K H P``, equal to the Joseph form filterpy's ``update`` uses up to rounding. Returns new arrays.
    """
    S = P[:, :4, :4].copy()
    S[:, _DIAG4[0], _DIAG4[1]] += r_std**2
    Kt = np.linalg.solve(S, P[:, :4, :])  # (N, 4, 8)
    K = Kt.transpose(0, 2, 1)  # (N, 8, 4)
    y = z - x[:, :4]
    x = x + (K @ y[:, :, None])[:, :, 0]
    return x, P - K @ P[:, :4, :]


def new_states(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Initial states of tracks born from measurements ``z`` (N, 4) ``cx, cy, w, h``: zero velocity and a
    diagonal covariance scaled by each box's height; returns ``x`` (N, 8), ``P`` (N, 8, 8)."""
    n = len(z)
    std = np.maximum(z[:, 3:4], 1.0) * _P0_UNIT
    P = np.zeros((n, 8, 8))
    P[:, _DIAG8[0], _DIAG8[1]] = std**2
    x = np.zeros((n, 8))
    x[:, :4] = z
    return x, P


# ------------------------------------------------------------------------------------ score thresholds


class ScoreCalibration:
    """What a detector's scores mean in this run, learned from the run itself.

    Scores of different detectors mean different things (public FRCNN scores are almost all ~1 and its false
    positives spread over 0.05-0.95; ACF scores run from -0.5 to 139; the motion detector scores how solidly
    a box is filled), so fixed thresholds suit one detector and fail another. This keeps the last
    ``window`` detections' scores together with whether each was matched to a confirmed track, and fits the
    *tracked rate* as a non-decreasing function of the score (equal-count score bins, pooled adjacent
    violators). :meth:`threshold` is then the lowest score from which a detection is tracked at least that
    often: a detector-independent meaning of "confident". On MOT17 and PETS09 the tracked rate follows the
    detections' precision against ground truth closely (benchmarks/RESULTS.md).
    """

    def __init__(self, window: int = 8192, bins: int = 20):
        self.scores = np.zeros(window, np.float32)
        self.tracked = np.zeros(window, bool)
        self.bins = bins
        self.count = 0  # detections seen (the buffer holds the last ``window`` of them)
        self.out_of_range = False  # a score outside [0, 1] was seen: scores are not probabilities
        self._edges: np.ndarray | None = None
        self._rates: np.ndarray | None = None

    def add(self, scores: np.ndarray, tracked: np.ndarray) -> None:
        """Record one frame's detection ``scores`` (N,) and whether each was ``tracked`` (N,) bool."""
        n, w = len(scores), len(self.scores)
        if not n:
            return
        if n >= w:
            scores, tracked, n = scores[-w:], tracked[-w:], w
        at = (self.count + np.arange(n)) % w
        self.scores[at], self.tracked[at] = scores, tracked
        self.count += n
        if n and not self.out_of_range:
            self.out_of_range = bool(scores.min() < 0 or scores.max() > 1)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the buffered scores."""
        return float(np.quantile(self.scores[: min(self.count, len(self.scores))], q))

    def fit(self) -> None:
        """Refit the tracked-rate curve on the buffer."""
        n = min(self.count, len(self.scores))
        s, t = self.scores[:n], self.tracked[:n]
        edges = np.unique(np.quantile(s, np.linspace(0, 1, self.bins + 1)))
        if len(edges) < 2:
            edges = np.r_[edges, edges[-1]]
        which = np.clip(np.searchsorted(edges, s, "right") - 1, 0, len(edges) - 2)
        count = np.bincount(which, minlength=len(edges) - 1).astype(np.float64)
        hits = np.bincount(which, weights=t, minlength=len(edges) - 1)
        self._edges, self._rates = edges, _isotonic((hits + 0.5) / (count + 1.0), count + 1.0)

    def threshold(self, rate: float) -> float:
        """The lowest score from which the fitted tracked rate is at least ``rate`` (the top bin's lower edge
        when no bin reaches it, so that the most confident detections always qualify)."""
        ok = np.flatnonzero(self._rates >= rate)
        return float(self._edges[ok[0] if len(ok) else len(self._rates) - 1])


def _isotonic(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit of ``values`` (pool adjacent violators); same shape."""
    blocks: list[list[float]] = []  # [mean, weight, length]
    for v, w in zip(values.tolist(), weights.tolist()):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            b = blocks[-1]
            b[0], b[1], b[2] = (b[0] * b[1] + v2 * w2) / (b[1] + w2), b[1] + w2, b[2] + n2
    return np.repeat([b[0] for b in blocks], [b[2] for b in blocks])


CALIBRATION_WARMUP = 400
"""Detections an ``auto`` tracker sees (using the configured thresholds) before it uses learned ones."""
REFIT_FRAMES = 25
"""Frames between refits of the learned thresholds."""


# --------------------------------------------------------------------------------------------- tracker


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
        self.low_match_iou = scaled_iou(cfg.low_match_iou, fps)
        """The second stage's IoU threshold at this frame rate (:func:`scaled_iou`)."""
        self._q_unit = np.r_[
            [STD_POS] * 4, [STD_VEL * self.vel_scale] * 4
        ]  # process noise per pixel of height
        self._quality = quality
        self._next_id = 1
        self._calibration = ScoreCalibration() if cfg.thresholds == "auto" else None
        self._since_fit = 0
        self.thresholds = (cfg.low_thresh, cfg.high_thresh, cfg.new_track_thresh)
        """(low, high, new track) score thresholds in use: the configured ones, or in ``auto`` mode the
        learned ones once :data:`CALIBRATION_WARMUP` detections have been seen."""
        self._reset()

    def _reset(self) -> None:
        # Live tracks, one row each.
        self._ids = np.zeros(0, np.int64)
        self._x = np.zeros((0, 8))
        self._P = np.zeros((0, 8, 8))
        self._hits = np.zeros(0, np.int64)
        self._misses = np.zeros(0, np.int64)
        self._last_crop = np.zeros(0, np.int64)
        self._feat: np.ndarray | None = None  # (N, D) float32 appearance, when features are given
        self._has_feat = np.zeros(0, bool)
        # Everything matched so far: one entry per frame (frame, time, track ids, cxcywh boxes, scores).
        self._log: list[tuple[int, float, np.ndarray, np.ndarray, np.ndarray]] = []
        self._confirmed: set[int] = set()
        self._crops: dict[int, list[Crop]] = {}

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
        low_thresh, high_thresh, new_thresh = self._thresholds()
        boxes, conf = detections.xyxy, detections.confidence
        kept = np.flatnonzero(conf >= low_thresh)
        if len(kept) < len(conf):
            boxes, conf = boxes[kept], conf[kept]
            features = features[kept] if features is not None else None
        self._predict()

        is_high = conf >= high_thresh
        high, low = np.flatnonzero(is_high), np.flatnonzero(~is_high)
        track_boxes = cxcywh_to_xyxy(self._x) if len(self._x) else np.zeros((0, 4), np.float32)
        iou = iou_matrix(track_boxes, boxes)  # (N, M): one matrix for both stages

        cost = 1.0 - iou[:, high]
        if features is not None and cfg.appearance_weight > 0 and len(high):
            cost = self._with_appearance(cost, features[high], 1.0 - cfg.match_iou)
        r1, c1, rest_t = _assign(cost, 1.0 - cfg.match_iou)
        r2, c2, lost = _assign(1.0 - iou[rest_t][:, low], 1.0 - self.low_match_iou)
        lost = rest_t[lost]
        lost_boxes = track_boxes[lost[self._hits[lost] >= cfg.min_hits]]  # confirmed, unmatched
        rows = np.concatenate([r1, rest_t[r2]])
        dets = np.concatenate([high[c1], low[c2]])
        unmatched_high = np.ones(len(high), bool)
        unmatched_high[c1] = False

        z = xyxy_to_cxcywh(boxes)
        if len(rows):
            self._correct(rows, z[dets])
            ids = self._ids[rows]
            self._log.append((frame, time, ids, self._x[rows, :4], conf[dets]))
            self._confirmed.update(ids[self._hits[rows] >= cfg.min_hits].tolist())
            if image is not None:
                self._crop(rows, dets, frame, image, boxes, conf)
            if features is not None:
                # a detection that overlaps another track's predicted box may show that person too
                other = iou[:, dets].copy()
                other[rows, np.arange(len(rows))] = 0.0
                clean = other.max(axis=0, initial=0.0) < CROWDED_IOU
                self._blend_features(rows[clean], features[dets[clean]])
        out_ids = np.full(len(boxes), -1, np.int64)
        confirmed = self._hits[rows] >= cfg.min_hits
        out_ids[dets[confirmed]] = self._ids[rows[confirmed]]

        born = high[unmatched_high]
        born = born[conf[born] >= new_thresh]
        if len(born):
            self._birth(born, frame, time, boxes, z, conf, image, features)
        self._prune()
        sel = out_ids >= 0
        if self._calibration is not None and len(detections):
            self._calibrate(detections, kept[sel], lost_boxes)
        if detections.data:
            out = detections[kept[sel]]
            out.tracker_id = out_ids[sel]
            return out
        return Detections(boxes[sel], conf[sel], out_ids[sel])

    def _thresholds(self) -> tuple[float, float, float]:
        """The (low, high, new track) score thresholds for this frame.

        ``fixed``: the configured ones. ``auto``: ``low_thresh`` and ``high_thresh`` apply to scores in [0, 1]
        as given, and to a detector whose scores leave [0, 1] (raw public detections) as quantiles of the
        run's scores (thresholds set outside [0, 1] are that detector's own scores, used as given); the new-track threshold is the score from which detections are tracked at least
        ``tracked_rate_new`` of the time (:class:`ScoreCalibration`), never below the high threshold. Refit
        every :data:`REFIT_FRAMES` frames; the configured values until :data:`CALIBRATION_WARMUP`
        detections have been seen."""
        c, cfg = self._calibration, self.cfg
        if c is None or c.count == 0:
            return self.thresholds
        self._since_fit -= 1
        if self._since_fit > 0:
            return self.thresholds
        self._since_fit = REFIT_FRAMES
        low, high, new = cfg.low_thresh, cfg.high_thresh, cfg.new_track_thresh
        if c.out_of_range and all(0.0 <= v <= 1.0 for v in (low, high, new)):
            low, high = c.quantile(cfg.low_thresh), c.quantile(cfg.high_thresh)
            new = c.quantile(cfg.new_track_thresh)
        if c.count >= CALIBRATION_WARMUP:
            c.fit()
            new = c.threshold(cfg.tracked_rate_new)
        self.thresholds = (low, high, max(new, high))
        return self.thresholds

    def _calibrate(self, detections: Detections, tracked: np.ndarray, lost_boxes: np.ndarray) -> None:
        """Tell the score calibration which of this frame's detections were tracked: those matched to a
        confirmed track (indices ``tracked``), and those dropped below the low threshold that a confirmed
        track left unmatched this frame would have taken (IoU >= :attr:`low_match_iou` with its predicted
        box in ``lost_boxes``), so that the low threshold's own effect does not feed back into what it
        learns."""
        labels = np.zeros(len(detections), bool)
        labels[tracked] = True
        dropped = np.flatnonzero(detections.confidence < self.thresholds[0])
        if len(dropped) and len(lost_boxes):
            near = iou_matrix(lost_boxes, detections.xyxy[dropped]).max(0) >= self.low_match_iou
            labels[dropped[near]] = True
        self._calibration.add(detections.confidence, labels)

    # -------------------------------------------------------------------------------- array steps

    def _predict(self) -> None:
        """Predict every live track one frame ahead; each counts one more miss until it is matched.

        Process noise scales with each box's height; a box whose size would shrink below one pixel stops
        changing size."""
        if not len(self._ids):
            return
        x = self._x
        shrink = (x[:, 2] + x[:, 6] <= 1) | (x[:, 3] + x[:, 7] <= 1)
        if shrink.any():
            x = x.copy()
            x[shrink, 6:8] = 0
        h = np.maximum(x[:, 3], 1.0)[:, None]
        self._x, self._P = kalman_predict(x, self._P, h * self._q_unit)
        self._misses += 1

    def _correct(self, rows: np.ndarray, z: np.ndarray) -> None:
        """Kalman update of tracks ``rows`` with detections ``z`` (K, 4) cxcywh; resets their misses."""
        x, P = self._x[rows], self._P[rows]
        r_std = np.maximum(x[:, 3:4], 1.0) * _R_UNIT
        self._x[rows], self._P[rows] = kalman_update(x, P, z, r_std)
        self._hits[rows] += 1
        self._misses[rows] = 0

    def _birth(self, born, frame, time, boxes, z, conf, image, features) -> None:
        n = len(born)
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        x, P = new_states(z[born])
        start = len(self._ids)
        cat = np.concatenate
        self._ids = cat([self._ids, ids])
        self._x, self._P = cat([self._x, x]), cat([self._P, P])
        self._hits = cat([self._hits, np.ones(n, np.int64)])
        self._misses = cat([self._misses, np.zeros(n, np.int64)])
        self._last_crop = cat([self._last_crop, np.full(n, -(10**9), np.int64)])
        self._log.append((frame, time, ids, z[born], conf[born]))
        if self.cfg.min_hits <= 1:
            self._confirmed.update(ids.tolist())
        if features is not None:
            f = np.asarray(features[born], np.float32)
            self._feat = f if self._feat is None else np.concatenate([self._feat, f])
            self._has_feat = cat([self._has_feat, np.ones(n, bool)])
        else:
            if self._feat is not None:
                self._feat = np.concatenate([self._feat, np.zeros((n, self._feat.shape[1]), np.float32)])
            self._has_feat = cat([self._has_feat, np.zeros(n, bool)])
        if image is not None:
            self._crop(np.arange(start, start + n), born, frame, image, boxes, conf)

    def _prune(self) -> None:
        """Drop tracks unmatched for longer than ``max_age`` and tentative tracks that missed once."""
        if not len(self._ids):
            return
        dead = (self._misses > self.max_misses) | ((self._hits < self.cfg.min_hits) & (self._misses > 0))
        if not dead.any():
            return
        alive = ~dead
        self._ids, self._x, self._P = self._ids[alive], self._x[alive], self._P[alive]
        self._hits, self._misses, self._last_crop = (
            self._hits[alive],
            self._misses[alive],
            self._last_crop[alive],
        )
        self._has_feat = self._has_feat[alive]
        if self._feat is not None:
            self._feat = self._feat[alive]

    def _with_appearance(self, iou_cost: np.ndarray, feats: np.ndarray, gate: float) -> np.ndarray:
        w = self.cfg.appearance_weight
        if self._feat is None or not len(self._ids) or not self._has_feat.all():
            return iou_cost
        app = 1.0 - self._feat @ feats.T
        cost = (1 - w) * iou_cost + w * np.clip(app, 0, 2)
        return np.where(iou_cost > gate, np.inf, cost)

    def _blend_features(self, rows: np.ndarray, feats: np.ndarray) -> None:
        """Exponential moving average (0.9 old, 0.1 new) of the matched tracks' appearance, L2-normalised."""
        feats = np.asarray(feats, np.float32)
        if self._feat is None:
            self._feat = np.zeros((len(self._ids), feats.shape[1]), np.float32)
        old = self._feat[rows]
        has = self._has_feat[rows][:, None]
        f = np.where(has, 0.9 * old + 0.1 * feats, feats)
        self._feat[rows] = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        self._has_feat[rows] = True

    def _crop(self, rows, dets, frame: int, image: np.ndarray, boxes, conf) -> None:
        """Cut crops for tracks ``rows`` from their detections ``dets`` (at most one per ``crop_every``
        frames a track), keeping each track's ``max_crops`` best by quality."""
        due = frame - self._last_crop[rows] >= self.crop_every
        if not due.any():
            return
        vis = visibility(boxes)
        for r, d in zip(rows[due].tolist(), dets[due].tolist()):
            box = boxes[d]
            crop = _cut(image, box, self.cfg.min_crop_height)
            if crop is None:
                continue
            self._last_crop[r] = frame
            score = float(conf[d])
            q = float(self._quality(float(box[3] - box[1]), score, float(vis[d])))
            crops = self._crops.setdefault(int(self._ids[r]), [])
            crops.append(Crop(frame, np.asarray(box, np.float32), score, q, crop))
            if len(crops) > self.cfg.max_crops:
                crops.pop(int(np.argmin([c.quality for c in crops])))

    # ------------------------------------------------------------------------------------- finish

    def finish(self) -> list[Tracklet]:
        """End every track; return the confirmed ones as tracklets, ordered by track id."""
        log, confirmed, crops = self._log, self._confirmed, self._crops
        self._reset()
        if not log:
            return []
        sizes = [len(e[2]) for e in log]
        ids = np.concatenate([e[2] for e in log])
        frames = np.repeat([e[0] for e in log], sizes).astype(np.int64)
        times = np.repeat(np.asarray([e[1] for e in log], np.float64), sizes)
        boxes = cxcywh_to_xyxy(np.concatenate([e[3] for e in log]))
        scores = np.concatenate([e[4] for e in log]).astype(np.float32)
        keep = np.isin(ids, np.fromiter(confirmed, np.int64, len(confirmed)))
        order = np.flatnonzero(keep)[np.argsort(ids[keep], kind="stable")]
        ids = ids[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
        tracklets = []
        for s, e in zip(starts, np.r_[starts[1:], len(ids)]):
            rows = order[s:e]
            tid = int(ids[s])
            parts = frames[rows], times[rows], boxes[rows], scores[rows]
            if self.cfg.interpolate:
                parts = interpolate_gaps(*parts, self.max_misses)
            if len(parts[0]) >= self.cfg.min_length:
                own = sorted(crops.get(tid, []), key=lambda c: c.frame)
                tracklets.append(Tracklet(self.camera, tid, *parts, crops=own))
        return tracklets


def _assign(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching of an (N, M) cost matrix that never pairs at ``max_cost`` or above.

    Returns ``(rows (K,), cols (K,), unmatched rows)`` int64. A row and a column that are each other's only
    candidate below ``max_cost`` form a component of their own and are paired directly; only the rest (rows
    and columns with a choice) go to :func:`~tracker.geometry.linear_assignment`, which gives the same
    optimum at a fraction of the cost in the usual sparse frames.
    """
    n, m = cost.shape
    ok = cost < max_cost
    rdeg, cdeg = ok.sum(1), ok.sum(0)
    single = ok & (rdeg == 1)[:, None] & (cdeg == 1)[None, :]
    rows, cols = np.nonzero(single)
    hard_r = np.flatnonzero(rdeg > single.sum(1))
    if len(hard_r):
        hard_c = np.flatnonzero(cdeg > single.sum(0))
        m_, _, _ = linear_assignment(cost[hard_r][:, hard_c], max_cost)
        rows = np.concatenate([rows, hard_r[m_[:, 0]]])
        cols = np.concatenate([cols, hard_c[m_[:, 1]]])
    matched = np.zeros(n, bool)
    matched[rows] = True
    return rows.astype(np.int64), cols.astype(np.int64), np.flatnonzero(~matched)


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
