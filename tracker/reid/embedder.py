"""The appearance-embedder interface and its factory (no torch import unless MGN is used).

Embedders: ``mgn`` (:mod:`tracker.reid.extract`), ``histogram`` (:mod:`tracker.reid.histogram`), ``onnx``
and ``openvino`` (any re-identification network in those formats, :mod:`tracker.reid.runtime`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from tracker import env
from tracker.config import ModelsConfig, ReidConfig
from tracker.errors import InputError
from tracker.reid.weights import reid_cache_dir, resolve_mgn_weights

log = logging.getLogger(__name__)

RUNTIME_SUFFIXES = {".onnx": "onnx", ".xml": "openvino"}  # reid.weights suffix -> embedder, for ``auto``
# What the fallback warning recommends: the strongest re-identification network a user can get offline
# under a licence that allows use (see benchmarks/RESULTS.md, "Re-identification models").
RECOMMENDED = (
    "reid.embedder openvino with reid.weights = Intel Open Model Zoo's "
    "person-reidentification-retail-0287.xml (Apache-2.0)"
)


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
    """Decide what ``auto`` means here, once: ``mgn`` with a checkpoint's path, a runtime, or ``histogram``.

    ``auto``: the configured file (``reid.weights``: ``.onnx`` runs in ONNX Runtime, ``.xml`` in
    OpenVINO, anything else is an MGN checkpoint); else the MGN-MobileNetV2 made by ``reid-train`` in
    ``<model cache>/reid/`` (:data:`tracker.reid.weights.OWN_MGN_FILE`); else fast-reid's Market-1501
    MGN there; else its one-time download there (skipped at once when ``models.offline`` or
    ``reid.download`` is false); else the offline histogram descriptor, with one warning line saying why
    and what to use instead. ``mgn`` fails with an InputError instead of falling back; ``onnx`` /
    ``openvino`` need ``reid.weights``. The device is made concrete too (``cpu`` for the histogram and the
    runtimes). Returns the resolved config and the fallback reason (None without a fallback).
    """
    if cfg.embedder in ("none", "histogram"):
        return dataclasses.replace(cfg, device="cpu"), None
    runtime = cfg.embedder if cfg.embedder in ("onnx", "openvino") else None
    if cfg.embedder == "auto" and cfg.weights:
        runtime = RUNTIME_SUFFIXES.get(Path(cfg.weights).suffix.lower())
    if runtime:
        if not cfg.weights:
            raise InputError(f"reid.embedder {runtime}: set reid.weights to the model file")
        return dataclasses.replace(cfg, embedder=runtime, device="cpu"), None
    path, why = resolve_mgn_weights(
        cfg.weights, cfg.url, cfg.download, cfg.sha256, offline=models.offline, cache_dir=models.cache_dir
    )
    if path is None:
        target = reid_cache_dir(models.cache_dir) / cfg.url.rstrip("/").rsplit("/", 1)[-1]
        how = f"save {cfg.url} as {target} or set reid.weights"
        if cfg.embedder == "mgn":
            raise InputError(f"reid.embedder mgn: no MGN checkpoint ({why}); {how}")
        log.warning(
            "reid: no MGN checkpoint (%s), using the weak offline histogram descriptor; for a real ReID "
            "network use %s, or for MGN %s",
            why,
            RECOMMENDED,
            how,
        )
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
    if cfg.embedder in ("auto", "onnx", "openvino"):
        cfg, fallback = resolve_embedder(cfg, models)
    if cfg.embedder == "none":
        return None
    if cfg.embedder == "histogram":
        from tracker.reid.histogram import HistogramEmbedder

        return HistogramEmbedder(fallback=fallback)
    if cfg.embedder in ("onnx", "openvino"):
        from tracker.reid.runtime import OnnxEmbedder, OpenVinoEmbedder

        kind = OnnxEmbedder if cfg.embedder == "onnx" else OpenVinoEmbedder
        return kind(Path(cfg.weights).expanduser(), batch_size=cfg.batch_size, threads=cfg.threads)
    if cfg.embedder == "mgn" and cfg.weights is None:
        cfg, _ = resolve_embedder(cfg, models)
    from tracker.reid.extract import build_mgn_embedder

    return build_mgn_embedder(cfg, cfg.weights)
