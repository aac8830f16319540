import json

import numpy as np
import pytest
import torch

from tests.reid.conftest import SMALL_H, SMALL_W
from tracker.errors import InputError
from tracker.reid.checkpoint import load_model, load_state, read_checkpoint, save_model
from tracker.reid.mgn import MGN


def _listing(eval_data, name):
    path = eval_data.parent / "mgn" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return json.loads(path.read_text())


def _state_from_listing(listing, fill=0.0):
    """A state dict with exactly the listing's entries and shapes (counters int64, the rest float)."""
    return {
        k: torch.zeros(shape, dtype=torch.int64)
        if k.endswith("num_batches_tracked")
        else torch.full(shape, fill)
        for k, shape in listing.items()
    }


def test_fastreid_v02_listing_loads_strictly(eval_data, tmp_path):
    """market_mgn_R50-ibn.pth: {"model": state} with IBN-a, GeM, bnneck heads, 751 ids."""
    state = _state_from_listing(_listing(eval_data, "fastreid_mgn_r50ibn_keys.json"), 0.5)
    state["pixel_mean"] = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    state["pixel_std"] = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    torch.save({"model": state, "iteration": 12345}, tmp_path / "market_mgn_R50-ibn.pth")
    model, meta = load_model(tmp_path / "market_mgn_R50-ibn.pth")
    assert meta["layout"] == "fastreid" and meta["num_classes"] == 751 and not meta["test_flip"]
    assert model.b1[1][0].conv2.stride == (1, 1)  # stride-1 global branch
    assert model.b33_head.bnneck.weight.eq(0.5).all()
    assert set(model.state_dict()) == set(state)


def test_fastreid_v1_listing_loads_strictly(eval_data, tmp_path):
    state = _state_from_listing(_listing(eval_data, "fastreid_mgn_r50ibn_keys_v1code.json"))
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "v1.pth")
    model, meta = load_model(tmp_path / "v1.pth")
    assert meta["layout"] == "fastreid-v1" and meta["num_classes"] == 751
    assert model.pixel_mean.device.type == "cpu" and not model.pixel_mean.is_meta
    assert set(model.state_dict()) == set(state)


def test_seathiefwang_listing_loads_strictly(eval_data, tmp_path):
    state = _state_from_listing(_listing(eval_data, "seathiefwang_mgn_keys.json"))
    torch.save(state, tmp_path / "model_best.pt")
    model, meta = load_model(tmp_path / "model_best.pt")
    assert meta["layout"] == "paper" and meta["global_cls_dim"] == 256 and meta["test_flip"]
    assert model.p1[1][0].conv2.stride == (2, 2)  # the paper's downsampled global branch
    assert set(model.state_dict()) == set(state)


def test_mismatched_checkpoint_is_one_line_input_error():
    with torch.device("meta"):
        model = MGN("fastreid-v1", 10)
        state = {k: torch.zeros(v.shape) for k, v in model.state_dict().items()}
        del state["b1_head.pool_layer.p"], state["b2_head.pool_layer.p"]
        state["b3_head.bottleneck.0.weight"] = torch.zeros(256, 1024, 1, 1)
        state["b9_head.weight"] = torch.zeros(3)
    with pytest.raises(InputError) as err:
        load_state(model, state, "bad.pth")
    message = str(err.value)
    assert "\n" not in message and message.startswith("bad.pth: does not fit MGN layout 'fastreid-v1': ")
    assert "2 missing (b1_head.pool_layer.p, b2_head.pool_layer.p)" in message
    assert "1 unexpected (b9_head.weight)" in message
    assert "1 mis-shaped (b3_head.bottleneck.0.weight [256, 1024, 1, 1] vs [256, 2048, 1, 1])" in message


def test_unreadable_files_are_input_errors(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="not a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "junk.pth")
    with pytest.raises(InputError, match="not found"):
        read_checkpoint(tmp_path / "missing.pth")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(InputError, match="not an MGN checkpoint"):
        load_model(tmp_path / "other.pth")


def test_round_trip_in_project_format(tmp_path, small_checkpoint):
    model, meta = load_model(small_checkpoint)
    assert meta["height"] == SMALL_H and meta["width"] == SMALL_W and meta["num_classes"] == 4
    out = save_model(tmp_path / "again.safetensors", model, height=SMALL_H, width=SMALL_W)
    again, meta2 = load_model(out)
    assert meta2["layout"] == "paper" and meta2["global_cls_dim"] == 2048
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.rand(2, 3, SMALL_H, SMALL_W) * 255
    with torch.inference_mode():
        np.testing.assert_allclose(model(x).numpy(), again(x).numpy(), atol=1e-6)
