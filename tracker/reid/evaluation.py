"""Evaluating an embedder on a re-identification dataset folder (what ``reid-eval`` runs).

* Market-1501 layout: every query image against the gallery, Market protocol (see
  :func:`tracker.reid.metrics.evaluate_ranking`), optional k-reciprocal re-ranking.
* MARS layout: tracklet level; each tracklet's embedding is the mean of its crops'
  (:func:`tracker.reid.aggregate.tracklet_embedding`), and every tracklet is a query against all
  others, closer to how the tracker associates tracklets across cameras.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.reid.aggregate import tracklet_embedding
from tracker.reid.data import ImageRecord, find_eval_split, group_tracklets, read_images
from tracker.reid.embedder import Embedder
from tracker.reid.metrics import (
    MARKET_JUNK_IDS,
    chance_rank1,
    cosine_distance,
    evaluate_ranking,
    k_reciprocal_rerank,
)

CHUNK = 512  # images decoded and embedded at a time (bounds memory on large datasets)


def embed_records(embedder: Embedder, records: Sequence[ImageRecord], progress: bool = False) -> np.ndarray:
    """(N, D) embeddings of the crops named by ``records``, decoded and embedded ``CHUNK`` at a time."""
    from tqdm import tqdm

    out = np.zeros((len(records), embedder.dim), np.float32)
    starts = range(0, len(records), CHUNK)
    for start in tqdm(starts, desc="embedding", unit="chunk", disable=not progress, leave=False):
        chunk = records[start : start + CHUNK]
        out[start : start + len(chunk)] = embedder.embed(read_images([r.path for r in chunk]))
    return out


@dataclass(frozen=True)
class Embedded:
    """A dataset's evaluation split embedded once, ready to be scored several ways: query features
    (Q, D), gallery features (G, D) or None (tracklets all against all), ids and cameras, sizes, and
    the embedding wall time in seconds."""

    data: str
    level: str
    query: np.ndarray
    gallery: np.ndarray | None
    q_pids: list[int]
    g_pids: list[int]
    q_cams: list[int]
    g_cams: list[int]
    sizes: dict
    seconds: float


def embed_folder(data: str | Path, embedder: Embedder, progress: bool = False) -> Embedded:
    """Embed the evaluation split of a dataset folder (images, or tracklets as mean embeddings)."""
    split = find_eval_split(data)
    start = time.perf_counter()
    if split.kind == "images":
        qf = embed_records(embedder, split.query, progress)
        gf = embed_records(embedder, split.gallery, progress)
        q_pids, q_cams = [r.pid for r in split.query], [r.cam for r in split.query]
        g_pids, g_cams = [r.pid for r in split.gallery], [r.cam for r in split.gallery]
        sizes = {"query_images": len(qf), "gallery_images": len(gf)}
    else:
        feats = embed_records(embedder, split.query, progress)
        groups = group_tracklets(split.query)
        qf = np.stack([tracklet_embedding(feats[idx]) for idx in groups.values()])
        gf = None  # all tracklets against all tracklets
        q_pids = g_pids = [key[0] for key in groups]
        q_cams = g_cams = [key[1] for key in groups]
        sizes = {"images": len(feats), "tracklets": len(groups)}
    return Embedded(
        str(data), split.kind, qf, gf, q_pids, g_pids, q_cams, g_cams, sizes, time.perf_counter() - start
    )


def score(
    emb: Embedded,
    embedder: Embedder,
    *,
    rerank: bool = False,
    junk_ids: Sequence[int] = MARKET_JUNK_IDS,
    cross_camera: bool = False,
) -> dict:
    """Metrics of an embedded split (see :func:`evaluate_folder`)."""
    qf, gf = emb.query, emb.gallery
    dist = k_reciprocal_rerank(qf, gf) if rerank else cosine_distance(qf, qf if gf is None else gf)
    exclusions = {"junk_ids": tuple(junk_ids), "cross_camera": cross_camera}
    metrics = evaluate_ranking(dist, emb.q_pids, emb.g_pids, emb.q_cams, emb.g_cams, **exclusions)
    images = emb.sizes.get("images", emb.sizes.get("query_images", 0) + emb.sizes.get("gallery_images", 0))
    return {
        "data": emb.data,
        "level": emb.level,
        **emb.sizes,
        "rerank": rerank,
        "cross_camera": cross_camera,
        **metrics,
        "chance_rank1": chance_rank1(emb.q_pids, emb.g_pids, emb.q_cams, emb.g_cams, **exclusions),
        "embed_seconds": emb.seconds,
        "images_per_s": images / emb.seconds if emb.seconds > 0 else None,
        "embedder": embedder.info(),
    }


def evaluate_folder(
    data: str | Path,
    embedder: Embedder,
    *,
    rerank: bool = False,
    junk_ids: Sequence[int] = MARKET_JUNK_IDS,
    cross_camera: bool = False,
    progress: bool = False,
) -> dict:
    """Metrics of ``embedder`` on a dataset folder; also the chance Rank-1, what was evaluated and the
    embedding rate (images per second, decoding included)."""
    emb = embed_folder(data, embedder, progress)
    return score(emb, embedder, rerank=rerank, junk_ids=junk_ids, cross_camera=cross_camera)
