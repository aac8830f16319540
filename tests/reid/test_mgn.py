import pytest
import torch

from tests.reid.conftest import SMALL_H, SMALL_W
from tracker.reid.mgn import EMBED_DIM, MGN, MGNOutput, load_imagenet_resnet50


@pytest.fixture(scope="module", params=["fastreid", "fastreid-v1", "paper"])
def model(request):
    torch.manual_seed(0)
    return MGN(request.param, num_classes=5)


def _input(n=2):
    return torch.rand(n, 3, SMALL_H, SMALL_W, generator=torch.Generator().manual_seed(1)) * 255


def test_branch_structure(model):
    """Shared trunk to res_conv4_1, three branches; the paper's global branch is downsampled once more."""
    x = _input()
    trunk = getattr(model, model._trunk_name)
    with torch.inference_mode():
        maps = model.eval()._maps(x)
        shared = trunk((x - model.pixel_mean) / model.pixel_std)
    assert shared.shape == (2, 1024, SMALL_H // 16, SMALL_W // 16)
    g1, g2, g3, p21, p22, p31, p32, p33 = maps
    global_size = (
        (SMALL_H // 32, SMALL_W // 32) if model.layout == "paper" else (SMALL_H // 16, SMALL_W // 16)
    )
    assert g1.shape == (2, 2048, *global_size)
    assert g2.shape == g3.shape == (2, 2048, SMALL_H // 16, SMALL_W // 16)
    assert [m.shape[2] for m in (p21, p22)] == [SMALL_H // 32] * 2
    assert [m.shape[2] for m in (p31, p32, p33)] == [SMALL_H // 48] * 3
    assert torch.equal(torch.cat([p31, p32, p33], dim=2), g3)
    # Three branches: each owns its copy of layer3[1:] and a layer4-like stage.
    b1, b2, b3 = (getattr(model, n) for n in model._branch_names)
    assert len(b1[0]) == 5 and len(b1[1]) == 3
    assert (
        b1[0][0].conv1.weight.data_ptr()
        != b2[0][0].conv1.weight.data_ptr()
        != b3[0][0].conv1.weight.data_ptr()
    )


def test_eval_and_train_outputs(model):
    x = _input()
    model.eval()
    with torch.inference_mode():
        f = model(x)
    assert f.shape == (2, EMBED_DIM) and f.dtype == torch.float32
    torch.testing.assert_close(f.norm(dim=1), torch.ones(2))
    model.train()
    out = model(x)
    model.eval()
    assert isinstance(out, MGNOutput)
    assert len(out.logits) == 8 and all(z.shape == (2, 5) for z in out.logits)
    assert len(out.triplet) == 3 and all(t.shape == (2, 256) for t in out.triplet)


def test_test_flip_averages_mirror_images(model):
    x = _input()
    model.eval()
    with torch.inference_mode():
        raw = model.features(x) + model.features(x.flip(3))
        model.test_flip = True
        try:
            flipped = model(x)
        finally:
            model.test_flip = False
    torch.testing.assert_close(flipped, torch.nn.functional.normalize(raw, dim=1), rtol=1e-4, atol=1e-5)


def test_inference_only_model_cannot_train():
    with torch.device("meta"):
        m = MGN("fastreid-v1", num_classes=0)
    assert not any("weight" == k.split(".")[-1] and k.endswith("_head.weight") for k in m.state_dict())
    with pytest.raises(ValueError):
        MGN("resnet")


def test_imagenet_initialisation_maps_every_backbone_weight():
    from torchvision.models import resnet50

    with torch.device("meta"):
        shapes = resnet50().state_dict()
    state = {
        k: torch.randn(v.shape) if v.is_floating_point() else torch.zeros((), dtype=v.dtype)
        for k, v in shapes.items()
    }
    model = MGN("fastreid", num_classes=3)
    load_imagenet_resnet50(model, state)
    torch.testing.assert_close(model.backbone[0].weight, state["conv1.weight"])
    torch.testing.assert_close(model.b3[0][4].conv2.weight, state["layer3.5.conv2.weight"])
    torch.testing.assert_close(model.b1[1][0].downsample[0].weight, state["layer4.0.downsample.0.weight"])
    # IBN-a: InstanceNorm gets the first half of bn1's affine parameters, BatchNorm the rest.
    bn1 = state["layer1.0.bn1.weight"]
    torch.testing.assert_close(model.backbone[4][0].bn1.IN.weight, bn1[:32])
    torch.testing.assert_close(model.backbone[4][0].bn1.BN.weight, bn1[32:])
    torch.testing.assert_close(
        model.backbone[4][0].bn1.BN.running_var, state["layer1.0.bn1.running_var"][32:]
    )
