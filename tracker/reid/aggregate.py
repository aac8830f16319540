"""From crop embeddings to one tracklet embedding (weights: :func:`tracker.track.crop_quality`).

Numpy only: it runs for every tracklet.
"""

from __future__ import annotations

import numpy as np


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
