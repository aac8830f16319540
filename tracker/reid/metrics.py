"""Re-identification metrics: CMC Rank-k, mAP and mINP under the Market-1501 protocol; k-reciprocal re-ranking.

Numpy only. Distances are "smaller is closer"; for L2-normalised features use :func:`cosine_distance`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Market-1501's standard protocol (Zheng et al. 2015, the data set's own evaluation code; fast-reid and
# torchreid do the same): boxes labelled -1 are junk and ignored, the 0000 distractors stay in the gallery
# as different people. junk_ids=(-1, 0) drops the distractors too (an easier gallery).
MARKET_JUNK_IDS = (-1,)


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
        raise ValueError(
            f"distance matrix {dist.shape} does not match {len(q_pids)} queries, {len(g_pids)} gallery"
        )
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
    original distance by ``lambda_value``. Only the k1 + 1 nearest neighbours of each entry are ever
    used, so they are found by partial sorting; the set vectors are sparse and kept so. Memory is
    O((Q + G)^2) for the distance matrix: about 2 GB for the full Market-1501 test split.
    """
    from scipy import sparse

    query = np.asarray(query, np.float32)
    feats = query if gallery is None else np.concatenate([query, np.asarray(gallery, np.float32)])
    num_q, num_all = len(query), len(feats)
    original = np.clip(2.0 - 2.0 * feats @ feats.T, 0.0, None)  # squared Euclidean of unit vectors
    original /= np.maximum(original.max(axis=0), 1e-12)[None, :]
    original = original.T  # the reference transposes after the column-wise normalisation (a view here)
    width = min(k1 + 1, num_all)
    initial_rank = np.empty((num_all, width), np.int64)
    for start in range(0, num_all, 1024):  # the k1 + 1 nearest, in order, a block of rows at a time
        block = original[start : start + 1024]
        near = (
            np.argpartition(block, width - 1, axis=1)[:, :width]
            if width < num_all
            else np.broadcast_to(np.arange(num_all), block.shape)
        )
        order = np.argsort(np.take_along_axis(block, near, axis=1), axis=1, kind="stable")
        initial_rank[start : start + 1024] = np.take_along_axis(near, order, axis=1)
    half_k1 = int(np.around(k1 / 2.0))

    def reciprocal(i: int, k: int) -> np.ndarray:
        forward = initial_rank[i, : k + 1]
        backward = initial_rank[forward, : k + 1]
        return forward[np.any(backward == i, axis=1)]

    rows, cols, vals = [], [], []
    for i in range(num_all):
        k_rec = reciprocal(i, k1)
        expansion = [k_rec]
        for cand in k_rec:
            cand_rec = reciprocal(int(cand), half_k1)
            if len(np.intersect1d(cand_rec, k_rec)) > 2.0 / 3.0 * len(cand_rec):
                expansion.append(cand_rec)
        idx = np.unique(np.concatenate(expansion))
        weight = np.exp(-original[i, idx])
        rows.append(np.full(len(idx), i))
        cols.append(idx)
        vals.append(weight / weight.sum())
    V = sparse.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(num_all, num_all),
    )
    if k2 != 1:  # each row becomes the mean of the rows of its k2 nearest neighbours
        kk = min(k2, width)
        pick = sparse.csr_matrix(
            (
                np.full(num_all * kk, 1.0 / kk, np.float32),
                (np.repeat(np.arange(num_all), kk), initial_rank[:, :kk].ravel()),
            ),
            shape=(num_all, num_all),
        )
        V = (pick @ V).tocsr()
    by_column = V.tocsc()
    jaccard = np.zeros((num_q, num_all), np.float32)
    for i in range(num_q):
        overlap = np.zeros(num_all, np.float32)
        for j, v in zip(V.indices[V.indptr[i] : V.indptr[i + 1]], V.data[V.indptr[i] : V.indptr[i + 1]]):
            lo, hi = by_column.indptr[j], by_column.indptr[j + 1]
            overlap[by_column.indices[lo:hi]] += np.minimum(v, by_column.data[lo:hi])
        jaccard[i] = 1.0 - overlap / (2.0 - overlap)
    final = jaccard * (1.0 - lambda_value) + original[:num_q] * lambda_value
    return final if gallery is None else final[:, num_q:]
