"""ONNX Runtime and OpenVINO embedders (tracker.reid.runtime): a test-made ONNX model, and the real
re-identification networks in ../shared/models when present."""

import json
import logging

import numpy as np
import pytest
import torch

from tests.conftest import SHARED
from tests.reid.conftest import person_crop
from tracker.config import ReidConfig
from tracker.errors import InputError
from tracker.reid import Embedder, build_embedder
from tracker.reid.evaluation import evaluate_folder
from tracker.reid.runtime import InputSpec, prepare

MODELS = SHARED / "models"
OSNET = MODELS / "osnet_x0_25_msmt17.onnx"
OMZ = {
    name: MODELS
    / "omz"
    / f"person-reidentification-retail-{name}"
    / "FP32"
    / f"person-reidentification-retail-{name}.xml"
    for name in ("0288", "0287")
}
# Measured on reid-mini-market1501 (30 queries): OSNet x0.25 MSMT17 70.0 % Rank-1 (trained on another
# dataset), OMZ 0288 93.3 %, OMZ 0287 93.3 %; the floors leave a margin of a few queries.
OSNET_FLOOR, OMZ_FLOOR = 0.6, 0.85


class _Tiny(torch.nn.Module):
    """(N, 3, 16, 8) -> (N, 4): per-channel mean, then a fixed linear map; easy to compute by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, -1, 0.5]]))
            self.fc.bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


def _export(path, dynamic: bool, preprocess: dict | None = None):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Tiny().eval(),
            (torch.zeros(1, 3, 16, 8),),
            str(path),
            dynamo=False,
            input_names=["images"],
            output_names=["features"],
            opset_version=17,
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}} if dynamic else None,
        )
    if preprocess is not None:
        model = onnx.load(str(path))
        entry = model.metadata_props.add()
        entry.key, entry.value = "reid_preprocess", json.dumps(preprocess)
        onnx.save(model, str(path))
    return path


def _expected(crops, spec):
    with torch.inference_mode():
        y = _Tiny()(torch.from_numpy(prepare(crops, spec))).numpy()
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def _crops():
    return [person_crop(i % 4, 40 + 9 * i, 20 + 3 * i, seed=i) for i in range(5)]


def test_prepare_follows_the_spec():
    crop = np.zeros((32, 16, 3), np.uint8)
    crop[..., 0], crop[..., 1], crop[..., 2] = 10, 20, 30  # B, G, R
    rgb = prepare([crop], InputSpec(16, 8))
    np.testing.assert_allclose(
        rgb[0, :, 0, 0],
        (np.array([30, 20, 10]) - np.array([123.675, 116.28, 103.53])) / np.array([58.395, 57.12, 57.375]),
        rtol=1e-5,
    )
    bgr = prepare([crop], InputSpec(16, 8, colour="BGR", mean=(0, 0, 0), std=(1, 1, 1)))
    assert bgr.shape == (1, 3, 16, 8) and bgr.dtype == np.float32
    np.testing.assert_array_equal(bgr[0, :, 3, 2], [10, 20, 30])
    with pytest.raises(ValueError, match="colour"):
        InputSpec(16, 8, colour="YUV")


def test_tiny_onnx_model_default_preprocessing_batched(tmp_path):
    path = _export(tmp_path / "tiny.onnx", dynamic=True)
    e = build_embedder(ReidConfig(embedder="onnx", weights=str(path), batch_size=2, threads=1))
    assert isinstance(e, Embedder) and e.name == "onnx" and e.dim == 4
    info = e.info()
    assert info["input"] == [16, 8] and info["colour"] == "RGB" and info["preprocess_from"] == "default"
    assert info["batch_size"] == 2 and info["fallback"] is None
    crops = _crops()
    f = e.embed(crops)
    np.testing.assert_allclose(f, _expected(crops, InputSpec(16, 8)), atol=1e-5)
    np.testing.assert_allclose(f[::-1], e.embed(crops[::-1]), atol=1e-6)
    assert e.embed([]).shape == (0, 4)


def test_tiny_onnx_model_metadata_and_fixed_batch(tmp_path):
    spec = {"colour": "BGR", "mean": [1.0, 2.0, 3.0], "std": [2.0, 2.0, 2.0], "interpolation": "bicubic"}
    path = _export(tmp_path / "tiny1.onnx", dynamic=False, preprocess=spec)
    e = build_embedder(ReidConfig(weights=str(path), batch_size=8, threads=1))  # auto: by the suffix
    assert e.name == "onnx" and e.info()["batch_size"] == 1 and e.info()["preprocess_from"] == "model"
    crops = _crops()
    expected = _expected(crops, InputSpec(16, 8, "BGR", (1.0, 2.0, 3.0), (2.0, 2.0, 2.0), "bicubic"))
    np.testing.assert_allclose(e.embed(crops), expected, atol=1e-5)


def test_runtime_errors_are_input_errors(tmp_path):
    pytest.importorskip("onnxruntime")
    with pytest.raises(InputError, match="set reid.weights"):
        build_embedder(ReidConfig(embedder="onnx"))
    with pytest.raises(InputError, match="file not found"):
        build_embedder(ReidConfig(embedder="onnx", weights=str(tmp_path / "missing.onnx")))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a loadable ONNX model"):
        build_embedder(ReidConfig(weights=str(tmp_path / "junk.onnx")))
    (tmp_path / "clip.mp4").write_bytes(b"not a model")
    with pytest.raises(InputError, match="clip.mp4: not an OpenVINO IR"):
        build_embedder(ReidConfig(embedder="openvino", weights=str(tmp_path / "clip.mp4")))


def test_fallback_warning_recommends_the_open_model(caplog, monkeypatch):
    monkeypatch.setenv("MULTICAM_TRACKER_OFFLINE", "1")
    with caplog.at_level(logging.WARNING):
        assert build_embedder(ReidConfig()).name == "histogram"
    message = caplog.records[-1].getMessage()
    assert "person-reidentification-retail-0287" in message and "Apache-2.0" in message


def _shared(path):
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared/models is not part of the repo)")
    return path


def test_osnet_onnx_on_mini_market(eval_data):
    e = build_embedder(ReidConfig(weights=str(_shared(OSNET)), threads=1))
    assert e.name == "onnx" and e.dim == 512 and e.info()["input"] == [256, 128]
    f = e.embed(_crops())
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)
    result = evaluate_folder(eval_data / "reid-mini-market1501", e)
    assert result["rank1"] >= OSNET_FLOOR


@pytest.mark.parametrize("name", ["0288", "0287"])
def test_omz_openvino_on_mini_market(eval_data, name):
    pytest.importorskip("openvino")
    e = build_embedder(ReidConfig(embedder="openvino", weights=str(_shared(OMZ[name])), threads=1))
    info = e.info()
    assert e.dim == 256 and info["colour"] == "BGR" and info["mean"] == [0.0, 0.0, 0.0]
    assert info["preprocess_from"] == "model" and info["input"] == [256, 128]
    crops = _crops()
    f = e.embed(crops)
    np.testing.assert_allclose(f[2:3], e.embed(crops[2:3]), atol=1e-5)  # batched = one at a time
    result = evaluate_folder(eval_data / "reid-mini-market1501", e)
    assert result["rank1"] >= OMZ_FLOOR
