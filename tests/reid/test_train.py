import csv
import logging
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.reid.conftest import SMALL_H, SMALL_W, person_crop
from tracker.reid.checkpoint import load_model
from tracker.reid.cli import reid_train
from tracker.reid.mgn import MGN, PIXEL_MEAN
from tracker.reid.preprocess import crops_to_batch
from tracker.reid.recipe import (
    IdentitySampler,
    PKSampler,
    TrainOptions,
    augment,
    batch_hard_triplet,
    init_backbone,
    learning_rate,
    mgn_loss,
    split_validation,
    validation_queries,
    validation_scores,
)


def test_pk_sampler():
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]  # id 3 has a single image: sampled with replacement
    sampler = PKSampler(labels, p=2, k=3, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2
    seen = set()
    for batch in batches:
        ids = [labels[i] for i in batch]
        assert len(batch) == 6 and len(set(ids)) == 2 and all(ids.count(x) == 3 for x in set(ids))
        seen |= set(ids)
    assert seen == {0, 1, 2, 3}
    sampler.set_epoch(1)
    assert list(sampler) != batches  # a new order each epoch, reproducible from the seed
    with pytest.raises(Exception, match="P >= 2 and K >= 2"):
        PKSampler(labels, p=2, k=1)


def test_batch_hard_triplet_hand_case():
    feats = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # Anchor 0: hardest positive 1.0, nearest negative 2.0 -> relu(1 - 2 + 1.5) = 0.5
    # Anchor 1: positive 1.0, negatives sqrt(10), sqrt(5) -> relu(1 - 2.236 + 1.5) = 0.264
    # Anchor 2: positive 1.0, negatives 3.0, sqrt(10) -> relu(1 - 3 + 1.5) = 0
    # Anchor 3: positive 1.0, negatives 2.0, sqrt(5) -> 0.5
    expected = (0.5 + (2.5 - math.sqrt(5)) + 0.0 + 0.5) / 4
    assert float(batch_hard_triplet(feats, labels, margin=1.5)) == pytest.approx(expected, rel=1e-5)


def test_learning_rate_schedule():
    opts = TrainOptions(data=".", out=".", lr=0.01, warmup_epochs=5, warmup_factor=0.1, milestones=(40, 60))
    assert learning_rate(opts, 0) == pytest.approx(0.001)
    assert learning_rate(opts, 2.5) == pytest.approx(0.0055)
    assert learning_rate(opts, 5) == learning_rate(opts, 39.9) == pytest.approx(0.01)
    assert learning_rate(opts, 40) == pytest.approx(0.001) and learning_rate(opts, 70) == pytest.approx(1e-4)


def test_augment_flips_and_erases_with_the_mean_colour():
    x = torch.arange(2 * 3 * 8 * 4, dtype=torch.float32).view(2, 3, 8, 4)
    g = torch.Generator().manual_seed(0)
    flipped = augment(x, flip_p=1.0, erase_p=0.0, generator=g)
    torch.testing.assert_close(flipped, x.flip(3))
    erased = augment(x, flip_p=0.0, erase_p=1.0, generator=g)
    changed = (erased != x).any(dim=1)  # (N, H, W): erased pixels
    assert changed.any(dim=(1, 2)).all()
    mean = torch.tensor(PIXEL_MEAN)
    assert torch.allclose(erased.permute(0, 2, 3, 1)[changed], mean.expand(int(changed.sum()), 3))
    assert changed.float().mean() <= 0.41


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(0)
    model = MGN("paper", num_classes=2).train()
    crops = [person_crop(p, seed=s) for p in (0, 1) for s in (0, 1)]
    x = crops_to_batch(crops, SMALL_H, SMALL_W)
    labels = torch.tensor([0, 0, 1, 1])
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    losses = []
    for _ in range(4):
        loss, parts = mgn_loss(model(x), labels, margin=1.2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(parts["loss"])
        assert set(parts) == {"loss", "ce", "triplet", "accuracy"}
    assert losses[-1] < losses[0]


def test_no_imagenet_weights_offline_warns_and_starts_random(caplog, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with torch.device("meta"):
        model = MGN("paper", 2)
    with caplog.at_level(logging.WARNING):
        assert init_backbone(model, "auto", offline=True) == "random"
    assert "random initialisation" in caplog.text and "offline" in caplog.text


def _tiny_market(root):
    """4 identities x 3 crops in Market-1501 naming, 2 cameras."""
    train = root / "bounding_box_train"
    train.mkdir(parents=True)
    for person in range(4):
        for shot in range(3):
            name = f"{person + 1:04d}_c{shot % 2 + 1}s1_{shot:06d}_00.jpg"
            cv2.imwrite(str(train / name), person_crop(person, 96, 40, seed=shot))
    return root


def test_reid_train_cli_checkpoints_resumes_and_logs(tmp_path):
    data = _tiny_market(tmp_path / "data")
    out = tmp_path / "run"
    common = [
        "--data",
        str(data),
        "--out",
        str(out),
        "-P",
        "2",
        "-K",
        "2",
        "--height",
        str(SMALL_H),
        "--width",
        str(SMALL_W),
        "--workers",
        "0",
        "--pretrained",
        "none",
        "--no-progress",
        "--optimizer",
        "sgd",
        "--lr",
        "0.001",
        "--warmup-epochs",
        "0",
    ]
    with pytest.raises(SystemExit) as done:
        reid_train([*common, "--epochs", "1", "--max-steps", "1"])
    assert done.value.code == 0
    assert (out / "last.pt").is_file() and (out / "model.safetensors").is_file()
    saved = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert saved["epoch"] == 1 and saved["meta"]["identities"] == [1, 2, 3, 4]
    with pytest.raises(SystemExit) as done:
        reid_train([*common, "--epochs", "2", "--max-steps", "1", "--resume"])
    assert done.value.code == 0
    assert torch.load(out / "last.pt", map_location="cpu", weights_only=True)["epoch"] == 2
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(np.isfinite(float(r["loss"])) for r in rows)
    _, meta = load_model(out / "model.safetensors")
    assert meta["num_classes"] == 4 and (meta["height"], meta["width"]) == (SMALL_H, SMALL_W)
    with pytest.raises(SystemExit) as done:
        reid_train(["--data", str(tmp_path / "nowhere"), "--out", str(out)])
    assert done.value.code == 2


def test_identity_sampler_visits_every_image_about_once():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(12), rng.integers(2, 15, 12))  # 2-14 images per identity
    sampler = IdentitySampler(labels, p=4, k=4, seed=3)
    batches = list(sampler)
    assert 0 < len(batches) <= len(sampler)
    for batch in batches:
        ids = labels[batch]
        assert len(batch) == 16 and len(set(ids)) == 4 and all((ids == x).sum() == 4 for x in set(ids))
    seen = np.unique(np.concatenate(batches))
    assert len(seen) >= 0.8 * len(labels)  # most images: the identities run out of groups together
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_validation_split_holds_out_whole_identities():
    from tracker.reid.data import ImageRecord

    records = [
        ImageRecord(Path(f"{pid}_{cam}_{i}.jpg"), pid, cam)
        for pid in range(1, 11)
        for cam in (1, 2)
        for i in range(3)
    ]
    records += [ImageRecord(Path(f"11_1_{i}.jpg"), 11, 1) for i in range(3)]  # one camera: never held out
    train_set, val = split_validation(records, 3, seed=0)
    held = {r.pid for r in val}
    assert len(held) == 3 and 11 not in held and not held & {r.pid for r in train_set}
    assert len(train_set) + len(val) == len(records)
    assert split_validation(records, 3, seed=0) == (train_set, val)
    is_query = validation_queries(val)
    assert is_query.sum() == 6  # one query per identity and camera
    with pytest.raises(Exception, match="val-ids"):
        split_validation(records, 11)
    feats = np.eye(len(val), dtype=np.float32)[:, :]
    for i, r in enumerate(val):  # every image of an identity gets the same feature: perfect ranking
        feats[i] = np.eye(len(val))[sorted(held).index(r.pid)]
    assert validation_scores(feats, val) == {"rank1": 1.0, "mAP": 1.0}
