import numpy as np
import pytest
import torch

from tests.reid.conftest import SMALL_H, SMALL_W
from tracker.reid.checkpoint import load_model
from tracker.reid.extract import export_onnx


def test_onnx_export_matches_pytorch(small_checkpoint, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, _ = load_model(small_checkpoint)
    path = export_onnx(model, tmp_path / "mgn.onnx", SMALL_H, SMALL_W)
    x = torch.rand(3, 3, SMALL_H, SMALL_W, generator=torch.Generator().manual_seed(0)) * 255
    with torch.inference_mode():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["features"], {"images": x.numpy()})
    assert got.shape == (3, 2048)  # the batch axis is dynamic (exported with batch 1)
    np.testing.assert_allclose(got, expected, atol=1e-4)
