"""Box and ground-plane geometry, and the one assignment solver: the concepts every stage shares.

Conventions (see :mod:`tracker.types`): boxes are ``xyxy`` pixels ``x1, y1, x2, y2``; MOTChallenge files use
``xywh`` (top-left corner, width, height); the Kalman state uses ``cxcywh`` (centre, width, height). A
person's *foot point* is the bottom centre of their box, where they stand on the ground. Homographies map
ground-plane points (metres, ``x, y, 1``) to image pixels of the foot point; their inverse maps back.
"""

from __future__ import annotations

import lap
import numpy as np

HORIZON_EPS = 1e-9
"""Image points whose homogeneous ground coordinate ``w`` is at most this lie on or above the horizon."""


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) ``x1, y1, x2, y2`` -> (N, 4) ``x, y, w, h`` in the input's float dtype (float32 for ints)."""
    b = _boxes(boxes)
    return np.c_[b[:, :2], b[:, 2:] - b[:, :2]]


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) ``x, y, w, h`` -> (N, 4) ``x1, y1, x2, y2`` in the input's float dtype (float32 for ints)."""
    b = _boxes(boxes)
    return np.c_[b[:, :2], b[:, :2] + b[:, 2:]]


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) ``x1, y1, x2, y2`` -> (N, 4) float64 ``cx, cy, w, h`` (the Kalman filter's measurement),
    computed in the input's float dtype."""
    b = _boxes(boxes)
    wh = b[:, 2:] - b[:, :2]
    return np.c_[b[:, :2] + wh / 2, wh].astype(np.float64)


def cxcywh_to_xyxy(state: np.ndarray, min_size: float = 1.0) -> np.ndarray:
    """(N, >=4) ``cx, cy, w, h, ...`` -> (N, 4) float32 ``xyxy``; sizes below ``min_size`` become
    ``min_size``."""
    s = np.asarray(state, np.float64).reshape(len(state), -1)
    wh = np.maximum(s[:, 2:4], min_size)
    return np.c_[s[:, :2] - wh / 2, s[:, :2] + wh / 2].astype(np.float32)


def _boxes(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes)
    if not np.issubdtype(b.dtype, np.floating):
        b = b.astype(np.float32)
    return b.reshape(-1, 4)


def foot_points(boxes: np.ndarray) -> np.ndarray:
    """(N, 2) float64 bottom centre of each ``xyxy`` box: where the person stands on the ground."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.c_[(b[:, 0] + b[:, 2]) / 2, b[:, 3]]


def to_ground(inverse: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) image points -> (N, 2) float64 ground points (metres) through the image -> ground homography
    ``inverse`` (the inverse of a camera's ground -> image homography); NaN for points on or above the
    horizon, which no ground point maps to."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    q = np.c_[pts, np.ones(len(pts))] @ np.asarray(inverse, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q[:, 2:] > HORIZON_EPS, q[:, :2] / q[:, 2:], np.nan)


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
    """(N,) fraction of each ``xyxy`` box not covered by a box whose bottom edge is lower (nearer the
    camera)."""
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


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thresh: float) -> np.ndarray:
    """Indices (int64) kept by greedy non-maximum suppression of ``xyxy`` boxes, best score first."""
    order = np.argsort(-np.asarray(scores))
    iou = iou_matrix(boxes, boxes)
    keep: list[int] = []
    suppressed = np.zeros(len(order), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= iou[i] > iou_thresh
    return np.asarray(keep, np.int64)


def linear_assignment(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching (Jonker-Volgenant via lap) of an (N, M) cost matrix that never pairs above
    ``max_cost``.

    Returns ``(matches (K, 2) int rows/cols, unmatched_rows (N - K,), unmatched_cols (M - K,))``.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), int), np.arange(n), np.arange(m)
    _, x, _ = lap.lapjv(cost.astype(np.float64), extend_cost=True, cost_limit=max_cost)
    rows = np.flatnonzero(x >= 0)
    matches = np.c_[rows, x[rows]].astype(int)
    unmatched_cols = np.setdiff1d(np.arange(m), matches[:, 1])
    return matches, np.flatnonzero(x < 0), unmatched_cols


def interpolate_gaps(frames, times, boxes, scores, max_gap: int, step: int | None = None):
    """Fill gaps of at most ``max_gap`` missing steps of a track linearly; filled rows get score 0.

    ``frames`` (T,) int, ``times`` (T,) float, ``boxes`` (T, 4) xyxy, ``scores`` (T,) -> the same four arrays
    with the filled rows inserted in frame order. ``step`` is the frame spacing of processed frames (the
    smallest gap in ``frames`` when not given).
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
    return (
        f[order],
        np.concatenate(parts_t)[order],
        np.concatenate(parts_b)[order],
        np.concatenate(parts_s)[order],
    )


def crop_box(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The part of ``image`` (H, W, C) inside ``box`` (xyxy), clipped to the image and at least 1x1 (a
    view)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = np.round(box).astype(int)
    x1, y1 = min(max(x1, 0), w - 1), min(max(y1, 0), h - 1)
    return image[y1 : max(min(y2, h), y1 + 1), x1 : max(min(x2, w), x1 + 1)]
