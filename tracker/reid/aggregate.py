"""From crop embeddings to one tracklet embedding, and how much each crop should count.

Numpy only: the tracker calls these for every tracklet.
"""

from __future__ import annotations

import math

import numpy as np

# Crop height (pixels) at which the size term of crop_quality reaches 1 - 1/e: a person this tall
# already shows clothing texture and colour layout clearly; taller crops add little.
QUALITY_HEIGHT = 96.0


def crop_quality(box_h: float, score: float, visibility: float = 1.0) -> float:
    """Weight in [0, 1] of one crop in its tracklet's embedding.

    ``size * confidence * visibility``, where ``size = 1 - exp(-box_h / 96)`` rises with the box height
    in pixels and saturates (24 px -> 0.22, 96 px -> 0.63, 200 px -> 0.88), ``score`` is the detector
    confidence and ``visibility`` the unoccluded fraction (1 when unknown). Each factor is clipped to
    [0, 1]; larger, more confident, less occluded crops get higher weight.
    """
    size = 1.0 - math.exp(-max(float(box_h), 0.0) / QUALITY_HEIGHT)
    conf = min(max(float(score), 0.0), 1.0)
    vis = min(max(float(visibility), 0.0), 1.0)
    return size * conf * vis


def tracklet_embedding(features: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Quality-weighted mean of a tracklet's crop embeddings, L2-normalised.

    Parameters
    ----------
    features : (K, D) float
        One (normally L2-normalised) embedding per crop, K >= 1.
    weights : (K,) float or None
        Non-negative weight of each crop (e.g. :func:`crop_quality`); ``None`` or all zeros means equal
        weights.

    Returns
    -------
    (D,) float32, unit length (all zeros only if the weighted mean itself is zero).
    """
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or len(feats) == 0:
        raise ValueError(f"features must have shape (K, D) with K >= 1, got {feats.shape}")
    if weights is None:
        w = np.ones(len(feats))
    else:
        w = np.clip(np.asarray(weights, dtype=np.float64).reshape(-1), 0.0, None)
        if len(w) != len(feats):
            raise ValueError(f"weights has {len(w)} entries, features has {len(feats)} rows")
        if not np.isfinite(w).all() or w.sum() <= 0:
            w = np.ones(len(feats))
    mean = (w[:, None] * feats).sum(axis=0) / w.sum()
    norm = np.linalg.norm(mean)
    return (mean / norm if norm > 0 else mean).astype(np.float32)
