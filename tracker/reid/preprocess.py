"""Crops of any size -> one model-input batch: (N, 3, H, W) float32 RGB 0..255, channels-last.

Two implementations of the same resize (half-pixel centres, bicubic a = -0.75 or bilinear, edge pixels
replicated; crops more than twice the input size in a dimension are first shrunk with OpenCV's area
interpolation, the anti-aliasing that sampling alone does not do):

* on a GPU (:func:`resize_canvas`): the crops of a batch are copied into one uint8 canvas (N, Hc, Wc, 3)
  (pinned host memory in the embedder), sent in one transfer and resized by one ``grid_sample`` whose
  per-sample grid covers only that sample's crop, so the result equals ``F.interpolate`` of each crop
  on its own; the crop's last row and column are replicated into the padding so edge samples do not
  blend with it;
* on the CPU (:func:`resize_on_host`): OpenCV's SIMD resize of each crop straight into one uint8 batch
  buffer, then one conversion of the whole batch. On a CPU this is several times faster than both the
  canvas + ``grid_sample`` path and a per-crop PIL / torchvision-transforms loop (see
  ``benchmarks/reid.py``, rows "preprocess only").
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

EDGE = 2  # replicated padding pixels on the right and bottom of every crop (bicubic reads 2 beyond)


def check_crops(crops: Sequence[np.ndarray]) -> None:
    """Raise ValueError unless every crop is a non-empty uint8 (H, W, 3) array."""
    for i, crop in enumerate(crops):
        if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            shape = getattr(crop, "shape", None)
            raise ValueError(f"crop {i}: expected a uint8 (H, W, 3) array, got {type(crop).__name__} {shape}")
        if crop.shape[0] == 0 or crop.shape[1] == 0:
            raise ValueError(f"crop {i}: empty ({crop.shape[0]}x{crop.shape[1]})")


def limit_size(crop: np.ndarray, max_h: int, max_w: int) -> np.ndarray:
    """Shrink a crop (area interpolation) so that it is at most ``max_h`` x ``max_w``; else return it as is."""
    h, w = crop.shape[:2]
    if h <= max_h and w <= max_w:
        return crop
    return cv2.resize(crop, (min(w, max_w), min(h, max_h)), interpolation=cv2.INTER_AREA)


def canvas_shape(crops: Sequence[np.ndarray]) -> tuple[int, int]:
    """Canvas (Hc, Wc) that holds every crop plus its replicated edge, rounded up to 8 pixels."""
    h = max(c.shape[0] for c in crops) + EDGE
    w = max(c.shape[1] for c in crops) + EDGE
    return -(-h // 8) * 8, -(-w // 8) * 8


def pack_crops(crops: Sequence[np.ndarray], canvas: np.ndarray) -> np.ndarray:
    """Copy crops into ``canvas`` (N, Hc, Wc, 3) uint8 at the top-left, replicating their last row and
    column into the next :data:`EDGE` pixels. Returns (N, 2) int32 crop heights and widths."""
    sizes = np.empty((len(crops), 2), np.int32)
    for i, crop in enumerate(crops):
        h, w = crop.shape[:2]
        sizes[i] = h, w
        dst = canvas[i]
        dst[:h, :w] = crop
        dst[:h, w : w + EDGE] = crop[:, w - 1 : w]
        dst[h : h + EDGE, : w + EDGE] = dst[h - 1 : h, : w + EDGE]
    return sizes


def resize_canvas(
    canvas: torch.Tensor, sizes: torch.Tensor, height: int, width: int, mode: str = "bicubic"
) -> torch.Tensor:
    """Resize each crop in a canvas to the model input.

    Parameters
    ----------
    canvas : (N, Hc, Wc, 3) uint8 BGR, on the compute device.
    sizes : (N, 2) crop heights and widths (any integer dtype, any device).
    mode : "bilinear" or "bicubic".

    Returns
    -------
    (N, 3, height, width) float32 **RGB** in 0..255 (bicubic overshoot clamped), channels-last memory.
    """
    n, hc, wc, _ = canvas.shape
    x = canvas.permute(0, 3, 1, 2).flip(1).float()  # NCHW view of NHWC memory = channels-last; BGR -> RGB
    sizes = sizes.to(device=canvas.device, dtype=torch.float32)
    sy, sx = sizes[:, 0] / hc, sizes[:, 1] / wc
    theta = torch.zeros(n, 2, 3, device=canvas.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx, sx - 1.0
    theta[:, 1, 1], theta[:, 1, 2] = sy, sy - 1.0
    grid = F.affine_grid(theta, [n, 3, height, width], align_corners=False)
    out = F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)
    if mode == "bicubic":
        out = out.clamp_(0.0, 255.0)
    return out.contiguous(memory_format=torch.channels_last)


CV2_MODES = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR}


def resize_on_host(
    crops: Sequence[np.ndarray], height: int, width: int, mode: str = "bicubic"
) -> torch.Tensor:
    """CPU path: uint8 BGR crops (already size-limited) -> (N, 3, height, width) float32 RGB 0..255,
    channels-last. OpenCV rounds to uint8 before the conversion (at most 0.5 from the GPU path)."""
    batch = np.empty((len(crops), height, width, 3), np.uint8)
    for i, crop in enumerate(crops):
        cv2.resize(crop, (width, height), dst=batch[i], interpolation=CV2_MODES[mode])
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).flip(1)  # BGR -> RGB
    return x.to(torch.float32, memory_format=torch.channels_last)


def crops_to_batch(
    crops: Sequence[np.ndarray],
    height: int,
    width: int,
    device: torch.device | str = "cpu",
    mode: str = "bicubic",
) -> torch.Tensor:
    """uint8 BGR crops of any size -> (N, 3, height, width) float32 RGB 0..255 on ``device``.

    The one-call path for training and evaluation; :class:`tracker.reid.extract.MGNEmbedder` does the
    same with reusable pinned buffers.
    """
    check_crops(crops)
    crops = [limit_size(c, 2 * height, 2 * width) for c in crops]
    if torch.device(device).type == "cpu":
        return resize_on_host(crops, height, width, mode)
    canvas = np.empty((len(crops), *canvas_shape(crops), 3), np.uint8)
    sizes = pack_crops(crops, canvas)
    return resize_canvas(torch.from_numpy(canvas).to(device), torch.from_numpy(sizes), height, width, mode)
