"""The appearance-embedder interface and its factory (no torch import unless MGN is used)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from tracker import env
from tracker.config import ModelsConfig, ReidConfig
from tracker.errors import InputError
from tracker.reid.weights import reid_cache_dir, resolve_mgn_weights

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Turns person crops into appearance vectors.

    ``embed(crops)``: uint8 (H, W, 3) BGR crops of any size -> (N, dim) float32, each row L2-normalised
    (N = 0 gives (0, dim)). ``info()``: what goes into run.json (embedder actually used, weights path and
    sha256 prefix, variant, device, precision, and the fallback reason if any).
    """

    name: str
    dim: int

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray: ...

    def info(self) -> dict: ...


def resolve_embedder(cfg: ReidConfig, models: ModelsConfig = ModelsConfig()) -> tuple[ReidConfig, str | None]:
    """Decide what ``auto`` means here, once: ``mgn`` with a checkpoint's path, or ``histogram``.

    ``auto``: the configured checkpoint (``reid.weights``); else fast-reid's Market-1501 MGN in
    ``<model cache>/reid/``; else its one-time download there (skipped at once when ``models.offline`` or
    ``reid.download`` is false); else the offline histogram descriptor, with one warning line saying why and
    how to get MGN. ``mgn`` fails with an InputError instead of falling back. The device is made concrete
    too (``cpu`` for the histogram). Returns the resolved config and the fallback reason (None without a fallback).
    """
    if cfg.embedder in ("none", "histogram"):
        return dataclasses.replace(cfg, device="cpu"), None
    path, why = resolve_mgn_weights(
        cfg.weights, cfg.url, cfg.download, cfg.sha256, offline=models.offline, cache_dir=models.cache_dir
    )
    if path is None:
        target = reid_cache_dir(models.cache_dir) / cfg.url.rstrip("/").rsplit("/", 1)[-1]
        how = f"save {cfg.url} as {target} or set reid.weights"
        if cfg.embedder == "mgn":
            raise InputError(f"reid.embedder mgn: no MGN checkpoint ({why}); {how}")
        log.warning("reid: no MGN checkpoint (%s), using the offline histogram descriptor; for MGN, %s", why, how)
        return dataclasses.replace(cfg, embedder="histogram", device="cpu"), why
    try:
        device = env.resolve_device(cfg.device)
    except ValueError as exc:
        raise InputError(f"reid.device: {exc}") from None
    return dataclasses.replace(cfg, embedder="mgn", weights=str(path), device=device), None


def build_embedder(cfg: ReidConfig, models: ModelsConfig = ModelsConfig()) -> Embedder | None:
    """The embedder ``cfg.embedder`` asks for (``auto`` is resolved first, see :func:`resolve_embedder`);
    None for ``none``."""
    fallback = None
    if cfg.embedder == "auto":
        cfg, fallback = resolve_embedder(cfg, models)
    if cfg.embedder == "none":
        return None
    if cfg.embedder == "histogram":
        from tracker.reid.histogram import HistogramEmbedder

        return HistogramEmbedder(fallback=fallback)
    if cfg.embedder == "mgn" and cfg.weights is None:
        cfg, _ = resolve_embedder(cfg, models)
    from tracker.reid.extract import build_mgn_embedder

    return build_mgn_embedder(cfg, cfg.weights)
