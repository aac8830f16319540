"""Re-identification metrics: CMC Rank-k, mAP and mINP under the Market-1501 protocol; k-reciprocal re-ranking.

Numpy only. Distances are "smaller is closer"; for L2-normalised features use :func:`cosine_distance`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Market-1501 junk labels: -1 marks junk boxes, 0 ("0000") distractors. The protocol ignores
# both; fast-reid / torchreid keep 0000 images in the gallery as distractors, so pass junk_ids=(-1,)
# to compare with their published numbers.
MARKET_JUNK_IDS = (-1, 0)


def cosine_distance(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """(Q, D), (G, D) L2-normalised features -> (Q, G) float32 distance ``1 - cosine``."""
    return (1.0 - np.asarray(query, np.float32) @ np.asarray(gallery, np.float32).T).astype(np.float32)


def evaluate_ranking(
    dist: np.ndarray,
    q_pids: Sequence[int],
    g_pids: Sequence[int],
    q_cams: Sequence[int],
    g_cams: Sequence[int],
    *,
    ranks: Sequence[int] = (1, 5, 10),
    junk_ids: Sequence[int] = MARKET_JUNK_IDS,
    cross_camera: bool = False,
) -> dict:
    """Rank-k accuracy, mAP and mINP of a (Q, G) distance matrix.

    Market-1501 protocol: for each query, gallery entries with the query's identity *and* camera are
    removed (they are trivially easy), as are gallery entries whose id is in ``junk_ids``; queries with
    a junk id, or with no true match left, are skipped. ``cross_camera=True`` also removes every
    gallery entry from the query's camera (matching across cameras only, as the tracker's association
    does).

    AP is the mean precision at the ranks of the true matches; INP (Zheng et al. 2021) is
    ``number of true matches / rank of the last one``. Ties in distance keep gallery order.

    Returns
    -------
    dict with ``rank1``, ``rank5``, ... (fractions in [0, 1]), ``mAP``, ``mINP``, ``num_queries``
    (queries evaluated) and ``num_skipped``.
    """
    dist = np.asarray(dist, dtype=np.float64)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_cams, g_cams = np.asarray(q_cams), np.asarray(g_cams)
    if dist.shape != (len(q_pids), len(g_pids)) or len(q_cams) != len(q_pids) or len(g_cams) != len(g_pids):
        raise ValueError(f"distance matrix {dist.shape} does not match {len(q_pids)} queries, {len(g_pids)} gallery")
    max_rank = max(ranks)
    order = np.argsort(dist, axis=1, kind="stable")
    g_junk = np.isin(g_pids, np.asarray(junk_ids))
    cmc_sum = np.zeros(max_rank)
    aps, inps = [], []
    skipped = 0
    for qi in range(len(q_pids)):
        if q_pids[qi] in junk_ids:
            skipped += 1
            continue
        ranked = order[qi]
        remove = g_junk[ranked] | ((g_pids[ranked] == q_pids[qi]) & (g_cams[ranked] == q_cams[qi]))
        if cross_camera:
            remove |= g_cams[ranked] == q_cams[qi]
        matches = g_pids[ranked][~remove] == q_pids[qi]
        if not matches.any():
            skipped += 1
            continue
        hit_ranks = np.flatnonzero(matches)  # 0-based positions of the true matches
        first = hit_ranks[0]
        if first < max_rank:
            cmc_sum[first:] += 1
        aps.append(np.mean(np.arange(1, len(hit_ranks) + 1) / (hit_ranks + 1)))
        inps.append(len(hit_ranks) / (hit_ranks[-1] + 1))
    n = len(aps)
    out = {f"rank{r}": float(cmc_sum[r - 1] / n) if n else 0.0 for r in ranks}
    out.update(
        mAP=float(np.mean(aps)) if n else 0.0,
        mINP=float(np.mean(inps)) if n else 0.0,
        num_queries=n,
        num_skipped=skipped,
    )
    return out


def chance_rank1(
    q_pids: Sequence[int],
    g_pids: Sequence[int],
    q_cams: Sequence[int],
    g_cams: Sequence[int],
    *,
    junk_ids: Sequence[int] = MARKET_JUNK_IDS,
    cross_camera: bool = False,
) -> float:
    """Expected Rank-1 of a random ranking under the same exclusions as :func:`evaluate_ranking`.

    For each evaluated query, the fraction of its remaining gallery that are true matches; averaged.
    """
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_cams, g_cams = np.asarray(q_cams), np.asarray(g_cams)
    g_junk = np.isin(g_pids, np.asarray(junk_ids))
    fractions = []
    for pid, cam in zip(q_pids, q_cams):
        if pid in junk_ids:
            continue
        keep = ~g_junk & ~((g_pids == pid) & (g_cams == cam))
        if cross_camera:
            keep &= g_cams != cam
        hits = int((g_pids[keep] == pid).sum())
        if hits:
            fractions.append(hits / int(keep.sum()))
    return float(np.mean(fractions)) if fractions else 0.0


def k_reciprocal_rerank(
    query: np.ndarray, gallery: np.ndarray | None, k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al., CVPR 2017) of L2-normalised features -> (Q, G) distance.

    ``gallery=None`` ranks the query set against itself (all-vs-all, e.g. tracklets) -> (Q, Q).

    Follows the authors' reference algorithm: Euclidean distances over query + gallery, k-reciprocal
    neighbour sets expanded with their own (k1/2)-reciprocal sets, Gaussian-weighted set vectors
    averaged over the k2 nearest neighbours (local query expansion), Jaccard distance mixed with the
    original distance by ``lambda_value``. Memory is O((Q + G)^2): about 3 GB for the full Market-1501
    test split.
    """
    query = np.asarray(query, np.float32)
    feats = query if gallery is None else np.concatenate([query, np.asarray(gallery, np.float32)])
    num_q, num_all = len(query), len(feats)
    sq = np.clip(2.0 - 2.0 * feats @ feats.T, 0.0, None)  # squared Euclidean of unit vectors
    original = (sq / np.maximum(sq.max(axis=0), 1e-12)).T.astype(np.float32)
    initial_rank = np.argsort(original, axis=1, kind="stable").astype(np.int32)
    half_k1 = int(np.around(k1 / 2.0))

    def reciprocal(i: int, k: int) -> np.ndarray:
        forward = initial_rank[i, : k + 1]
        backward = initial_rank[forward, : k + 1]
        return forward[np.any(backward == i, axis=1)]

    V = np.zeros_like(original)
    for i in range(num_all):
        k_rec = reciprocal(i, k1)
        expansion = [k_rec]
        for cand in k_rec:
            cand_rec = reciprocal(int(cand), half_k1)
            if len(np.intersect1d(cand_rec, k_rec)) > 2.0 / 3.0 * len(cand_rec):
                expansion.append(cand_rec)
        idx = np.unique(np.concatenate(expansion))
        weight = np.exp(-original[i, idx])
        V[i, idx] = weight / weight.sum()
    if k2 != 1:
        V = np.stack([V[initial_rank[i, :k2]].mean(axis=0) for i in range(num_all)])
    inv_index = [np.flatnonzero(V[:, j]) for j in range(num_all)]
    jaccard = np.zeros((num_q, num_all), np.float32)
    for i in range(num_q):
        overlap = np.zeros(num_all, np.float32)
        for j in np.flatnonzero(V[i]):
            rows = inv_index[j]
            overlap[rows] += np.minimum(V[i, j], V[rows, j])
        jaccard[i] = 1.0 - overlap / (2.0 - overlap)
    final = jaccard * (1.0 - lambda_value) + original[:num_q] * lambda_value
    return final if gallery is None else final[:, num_q:]
