"""The appearance-embedder interface and its factory (no torch import unless MGN is used).

Embedders: ``mgn`` (:mod:`tracker.reid.extract`), ``histogram`` (:mod:`tracker.reid.histogram`), ``onnx``
and ``openvino`` (any re-identification network in those formats, :mod:`tracker.reid.runtime`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from tracker.errors import InputError
from tracker.reid.config import VARIANTS, ReidConfig

log = logging.getLogger(__name__)

EMBEDDERS = ("auto", "mgn", "histogram", "onnx", "openvino", "none")
RUNTIME_SUFFIXES = {".onnx": "onnx", ".xml": "openvino"}  # reid.weights suffix -> embedder, for ``auto``
# What the fallback warning recommends: the strongest re-identification network a user can get offline
# under a licence that allows use (see benchmarks/RESULTS.md, "Re-identification models").
RECOMMENDED = ("reid.embedder openvino with reid.weights = Intel Open Model Zoo's "
               "person-reidentification-retail-0288.xml (Apache-2.0; pip install openvino)")


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


def validate(cfg: ReidConfig) -> None:
    """InputError for values of the ``reid:`` section that cannot work."""
    if cfg.embedder not in EMBEDDERS:
        raise InputError(f"reid.embedder: {cfg.embedder!r} is not one of {', '.join(EMBEDDERS)}")
    if cfg.variant not in VARIANTS:
        raise InputError(f"reid.variant: {cfg.variant!r} is not one of {', '.join(VARIANTS)}")
    if cfg.batch_size < 1:
        raise InputError(f"reid.batch_size: must be at least 1, got {cfg.batch_size}")


def build_embedder(cfg: ReidConfig) -> Embedder | None:
    """The embedder ``cfg.embedder`` asks for; None for ``none``.

    ``auto``: the configured file (``reid.weights``: ``.onnx`` runs in ONNX Runtime, ``.xml`` in
    OpenVINO, anything else is an MGN checkpoint); else the MGN-MobileNetV2 made by ``reid-train`` in
    ``<model cache>/reid/`` (:data:`tracker.reid.weights.OWN_MGN_FILE`); else fast-reid's Market-1501
    MGN there; else its one-time download there (skipped at once when offline or ``reid.download`` is
    false); else the offline histogram descriptor, with one warning line saying why and what to use
    instead. ``mgn`` fails with an InputError instead of falling back; ``onnx`` / ``openvino`` need
    ``reid.weights``.
    """
    from tracker.reid.weights import reid_cache_dir, resolve_mgn_weights

    validate(cfg)
    if cfg.embedder == "none":
        return None
    if cfg.embedder == "histogram":
        from tracker.reid.histogram import HistogramEmbedder

        return HistogramEmbedder()
    runtime = cfg.embedder if cfg.embedder in ("onnx", "openvino") else None
    if cfg.embedder == "auto" and cfg.weights:
        runtime = RUNTIME_SUFFIXES.get(Path(cfg.weights).suffix.lower())
    if runtime:
        from tracker.reid.runtime import OnnxEmbedder, OpenVinoEmbedder

        if not cfg.weights:
            raise InputError(f"reid.embedder {runtime}: set reid.weights to the model file")
        kind = OnnxEmbedder if runtime == "onnx" else OpenVinoEmbedder
        return kind(Path(cfg.weights).expanduser(), batch_size=cfg.batch_size, threads=cfg.threads)
    path, why = resolve_mgn_weights(cfg.weights, cfg.url, cfg.download, cfg.sha256)
    if path is None:
        target = reid_cache_dir() / cfg.url.rstrip("/").rsplit("/", 1)[-1]
        how = f"save {cfg.url} as {target} or set reid.weights"
        if cfg.embedder == "mgn":
            raise InputError(f"reid.embedder mgn: no MGN checkpoint ({why}); {how}")
        from tracker.reid.histogram import HistogramEmbedder

        log.warning("reid: no MGN checkpoint (%s), using the weak offline histogram descriptor; for a real "
                    "ReID network use %s, or for MGN %s", why, RECOMMENDED, how)
        return HistogramEmbedder(fallback=why)
    from tracker.reid.extract import build_mgn_embedder

    return build_mgn_embedder(cfg, path)
