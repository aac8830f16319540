import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tracker.reid.preprocess import canvas_shape, check_crops, crops_to_batch, pack_crops, resize_canvas


def _reference(crop: np.ndarray, h: int, w: int, mode: str) -> torch.Tensor:
    """What resizing the crop on its own gives: RGB, F.interpolate with half-pixel centres."""
    x = torch.from_numpy(crop[..., ::-1].copy()).permute(2, 0, 1)[None].float()
    out = F.interpolate(x, size=(h, w), mode=mode, align_corners=False)[0]
    return out.clamp(0, 255) if mode == "bicubic" else out


def _crops():
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(50, 20), (96, 32), (7, 3), (150, 60)]
    ]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_canvas_resize_equals_resizing_each_crop(mode):
    """The GPU path (run here on CPU tensors): one grid_sample over a padded canvas."""
    crops = _crops()
    canvas = np.empty((len(crops), *canvas_shape(crops), 3), np.uint8)
    sizes = pack_crops(crops, canvas)
    batch = resize_canvas(torch.from_numpy(canvas), torch.from_numpy(sizes), 96, 32, mode)
    assert batch.shape == (4, 3, 96, 32) and batch.dtype == torch.float32
    assert batch.is_contiguous(memory_format=torch.channels_last)
    for crop, got in zip(crops, batch):
        torch.testing.assert_close(got, _reference(crop, 96, 32, mode), atol=0.01, rtol=0)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_host_resize_agrees_with_the_canvas_path(mode):
    """The CPU path (OpenCV per crop into one buffer) differs from the exact resize by uint8 rounding."""
    crops = _crops()
    batch = crops_to_batch(crops, 96, 32, "cpu", mode)
    assert batch.shape == (4, 3, 96, 32) and batch.is_contiguous(memory_format=torch.channels_last)
    for crop, got in zip(crops, batch):
        diff = (got - _reference(crop, 96, 32, mode)).abs()
        assert float(diff.max()) <= 1.0 and float(diff.mean()) < 0.35


def test_oversized_crops_are_shrunk_with_antialiasing():
    # A one-pixel checkerboard 8x the input size averages to mid-grey; plain sampling would alias.
    board = (np.indices((768, 256)).sum(0) % 2 * 255).astype(np.uint8)
    crop = np.repeat(board[:, :, None], 3, axis=2)
    out = crops_to_batch([crop], 96, 32)
    assert abs(float(out.mean()) - 127.5) < 2 and float(out.std()) < 5


def test_canvas_padding_replicates_edges():
    crop = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    canvas = np.zeros((1, *canvas_shape([crop]), 3), np.uint8)
    sizes = pack_crops([crop], canvas)
    assert sizes.tolist() == [[2, 3]]
    assert (canvas[0, :2, 3] == crop[:, 2]).all() and (canvas[0, 2, :3] == crop[1]).all()
    out = resize_canvas(torch.from_numpy(canvas), torch.from_numpy(sizes), 4, 6, "bilinear")
    torch.testing.assert_close(out[0], _reference(crop, 4, 6, "bilinear"), atol=1e-3, rtol=0)


def test_check_crops_rejects_bad_input():
    with pytest.raises(ValueError, match="crop 1"):
        check_crops([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.float32)])
    with pytest.raises(ValueError, match="empty"):
        check_crops([np.zeros((0, 4, 3), np.uint8)])
