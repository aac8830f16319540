"""Fast batched MGN embedding extraction on CPU and CUDA, and ONNX export.

One :meth:`MGNEmbedder.embed` call takes uint8 BGR crops of any size and returns (N, 2048) float32
L2-normalised features:

* crops are sorted by size and cut into batches, so each batch's canvas (see
  :mod:`tracker.reid.preprocess`) wastes little padding; results are put back in the caller's order;
* CUDA: each batch is packed into one uint8 canvas (one ``memcpy`` per crop, no PIL), sent in one
  non-blocking transfer from one of two pinned host buffers used in turn (packing batch k+1 overlaps
  the GPU work of batch k), and resized + normalised on the GPU; ``cudnn.benchmark``, channels-last
  memory, fp16 or bf16 autocast, features kept on the GPU until the end; optional ``torch.compile``;
* CPU: OpenCV resizes each crop straight into one batch buffer (the fastest resize on a CPU, see
  :mod:`tracker.reid.preprocess`); float32 (or bf16 autocast); intra-op threads from the cores this
  process may use.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tracker import env
from tracker.config import ReidConfig
from tracker.errors import InputError
from tracker.reid.checkpoint import load_model
from tracker.reid.mgn import EMBED_DIM, MGN
from tracker.reid.preprocess import (
    canvas_shape,
    check_crops,
    limit_size,
    pack_crops,
    resize_canvas,
    resize_on_host,
)
from tracker.reid.weights import sha256_file

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the first CUDA GPU when there is one, else the CPU; ``cuda[:N]`` must exist."""
    try:
        return torch.device(env.resolve_device(name))
    except ValueError as exc:
        raise InputError(f"reid.device: {exc}") from None


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` -> fp16 on CUDA, fp32 on the CPU; fp16 needs CUDA."""
    if name == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if name not in PRECISIONS:
        raise InputError(f"reid.precision: {name!r} is not one of auto, {', '.join(PRECISIONS)}")
    if name == "fp16" and device.type != "cuda":
        raise InputError("reid.precision: fp16 needs a CUDA device (use fp32 or bf16 on the CPU)")
    return name


def set_cpu_threads(threads: int = 0) -> int:
    """Intra-op threads for CPU inference: ``threads``, else every core this process may run on (left
    alone when ``OMP_NUM_THREADS`` is set). Returns the number in effect."""
    if threads > 0:
        torch.set_num_threads(threads)
    elif not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(env.cpu_count())
    return torch.get_num_threads()


class _HostSlot:
    """A reusable pinned host buffer for one in-flight batch, with the event marking its copy done."""

    def __init__(self) -> None:
        self.flat = torch.empty(0, dtype=torch.uint8)
        self.sizes = torch.empty((0, 2), dtype=torch.int32).pin_memory()
        self.done: torch.cuda.Event | None = None

    def views(self, n: int, hc: int, wc: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.done is not None:
            self.done.synchronize()  # the previous copy out of this buffer has finished
        need = n * hc * wc * 3
        if self.flat.numel() < need:
            self.flat = torch.empty(int(need * 1.25), dtype=torch.uint8).pin_memory()
        if len(self.sizes) < n:
            self.sizes = torch.empty((int(n * 1.25) + 1, 2), dtype=torch.int32).pin_memory()
        return self.flat[:need].view(n, hc, wc, 3), self.sizes[:n]


class MGNEmbedder:
    """:class:`~tracker.reid.embedder.Embedder` backed by an MGN network.

    Build with :func:`build_mgn_embedder`. ``embed(crops)``: uint8 (H, W, 3) BGR crops of any size ->
    (N, 2048) float32 L2-normalised; N = 0 gives (0, 2048).
    """

    name = "mgn"
    dim = EMBED_DIM

    def __init__(
        self,
        model: MGN,
        *,
        device: torch.device,
        precision: str,
        height: int,
        width: int,
        batch_size: int,
        interpolation: str = "bicubic",
        channels_last: bool = True,
        compile: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.device = device
        self.precision = precision
        self.height, self.width = height, width
        self.batch_size = batch_size
        self.interpolation = interpolation
        self.channels_last = channels_last
        self.details = dict(details or {})
        self.threads = set_cpu_threads(self.details.get("threads", 0)) if device.type == "cpu" else None
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model = model.eval().to(device, memory_format=fmt)
        self._forward = model
        self.compiled = False
        if compile:
            self._forward = torch.compile(model, dynamic=False)
            self.compiled = True
        self._slots = [_HostSlot(), _HostSlot()] if device.type == "cuda" else []

    def info(self) -> dict:
        return {
            "embedder": self.name,
            "dim": self.dim,
            **self.details,
            "device": str(self.device)
            + (f" ({torch.cuda.get_device_name(self.device)})" if self.device.type == "cuda" else ""),
            "precision": self.precision,
            "input": [self.height, self.width],
            "interpolation": self.interpolation,
            "flip": self.model.test_flip,
            "batch_size": self.batch_size,
            "channels_last": self.channels_last,
            "compile": self.compiled,
            "threads": self.threads,
            "fallback": None,
        }

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        dtype = PRECISIONS[self.precision]
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32),
        ):
            try:
                return self._forward(x)
            except Exception as exc:  # torch.compile needs a working compiler toolchain; eager always works
                if not self.compiled:
                    raise
                log.warning(
                    "reid: torch.compile failed (%s); continuing without it", str(exc).splitlines()[0]
                )
                self._forward, self.compiled = self.model, False
                return self._forward(x)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 BGR crops -> (N, 2048) float32 L2-normalised. Out of GPU memory, the batch size is
        halved (kept for later calls) and the call repeated."""
        check_crops(crops)
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        crops = [limit_size(c, 2 * self.height, 2 * self.width) for c in crops]
        while True:
            try:
                return self._embed(crops)
            except torch.cuda.OutOfMemoryError:
                if self.batch_size == 1:
                    raise
                self.batch_size //= 2
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                log.warning("reid: out of GPU memory; embedding batch size lowered to %d", self.batch_size)

    def _embed(self, crops: list[np.ndarray]) -> np.ndarray:
        n = len(crops)
        shapes = np.array([c.shape[:2] for c in crops])
        order = np.lexsort((shapes[:, 1], shapes[:, 0]))
        feats = torch.empty((n, self.dim), dtype=torch.float32, device=self.device)
        for k, start in enumerate(range(0, n, self.batch_size)):
            idx = order[start : start + self.batch_size]
            batch = [crops[i] for i in idx]
            if self.device.type == "cuda":
                hc, wc = canvas_shape(batch)
                slot = self._slots[k % 2]
                host, host_sizes = slot.views(len(batch), hc, wc)
                host_sizes.numpy()[:] = pack_crops(batch, host.numpy())
                canvas = host.to(self.device, non_blocking=True)
                sizes = host_sizes.to(self.device, non_blocking=True)
                slot.done = torch.cuda.Event()
                slot.done.record()
                x = resize_canvas(canvas, sizes, self.height, self.width, self.interpolation)
            else:
                x = resize_on_host(batch, self.height, self.width, self.interpolation)
            if not self.channels_last:
                x = x.contiguous()
            feats[start : start + len(batch)] = self._run(x)
        out = np.empty((n, self.dim), np.float32)
        out[order] = feats.cpu().numpy()
        return out


def build_mgn_embedder(cfg: ReidConfig, weights: str | Path) -> MGNEmbedder:
    """Load a checkpoint (any supported layout) and wrap it for extraction as ``cfg`` says.

    The input size is the checkpoint's own when its metadata records one (a network trained at
    another size), else ``cfg.height`` x ``cfg.width``.
    """
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    model, meta = load_model(weights, test_flip=cfg.flip)
    height, width = int(meta.get("height", cfg.height)), int(meta.get("width", cfg.width))
    if height < 48 or width < 16:
        raise InputError(f"reid: input size {height}x{width} is too small for MGN (at least 48x16)")
    details = {
        "weights": str(Path(weights).resolve()),
        "sha256": sha256_file(weights)[:16],
        "variant": meta["layout"],
        "num_classes": meta["num_classes"],
        "threads": cfg.threads,
    }
    return MGNEmbedder(
        model,
        device=device,
        precision=precision,
        height=height,
        width=width,
        batch_size=cfg.batch_size,
        interpolation=cfg.interpolation,
        channels_last=cfg.channels_last,
        compile=cfg.compile,
        details=details,
    )


def export_onnx(model: MGN, path: str | Path, height: int = 384, width: int = 128, opset: int = 17) -> Path:
    """Export an MGN (eval mode) to ONNX: input ``images`` float32 (batch, 3, height, width) RGB 0..255,
    output ``features`` (batch, 2048) L2-normalised; the batch axis is dynamic. The metadata key
    ``reid_preprocess`` says so (read by :class:`tracker.reid.runtime.OnnxEmbedder`). Needs the ``onnx``
    package (the TorchScript-based exporter is used, so ``onnxscript`` is not needed)."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        raise InputError("ONNX export needs the 'onnx' package (pip install onnx)")
    from tracker.fsutil import atomic_path

    path = Path(path)
    model = model.eval().to("cpu", memory_format=torch.contiguous_format)
    example = torch.zeros(1, 3, height, width)
    # The TorchScript-based exporter warns that it is deprecated in favour of the dynamo one, which
    # needs onnxscript; the graph it writes is the same standard ONNX either way.
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            dynamo=False,
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
            opset_version=opset,
        )
        import json

        import onnx

        graph = onnx.load(str(tmp))
        entry = graph.metadata_props.add()
        entry.key = "reid_preprocess"
        entry.value = json.dumps(
            {"colour": "RGB", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "interpolation": "bicubic"}
        )
        onnx.save(graph, str(tmp))
    return path
