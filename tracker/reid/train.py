"""Training MGN on a Market-1501-layout (or MARS-layout) folder.

As in the paper: P identities x K images per batch, horizontal flips, softmax (cross-entropy) on every
classifier plus batch-hard triplet loss on the three reduced global features, SGD (or Adam) with a
step-decayed learning rate; plus a linear warm-up and random erasing. Augmentation and resizing run on
the training device, batch-wise (the same resizing as extraction, :mod:`tracker.reid.preprocess`).

Every epoch writes ``OUT/last.pt`` (model, optimiser, scaler, epoch, metadata; loadable with
``weights_only=True``, usable as ``--weights`` too); the end writes ``OUT/model.safetensors``; every step
appends a row to ``OUT/log.csv``. ``resume=True`` continues from ``OUT/last.pt``.
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
from tracker.reid.extract import PRECISIONS, resolve_device, resolve_precision
from tracker.reid.mgn import MGN, PIXEL_MEAN, MGNOutput, load_imagenet_resnet50
from tracker.reid.preprocess import crops_to_batch
from tracker.reid.weights import RESNET50_FILE, resolve_resnet50

log = logging.getLogger(__name__)

LOG_FIELDS = ("epoch", "step", "lr", "loss", "ce", "triplet", "accuracy", "images_per_s")


@dataclass(frozen=True)
class TrainOptions:
    """``reid-train`` settings. ``lr`` None: 0.01 for SGD, 2e-4 for Adam. ``pretrained``: ``auto``
    (torchvision's ImageNet ResNet-50 if on disk or downloadable, else random with a warning), ``none``,
    or a path to a torchvision ResNet-50 state dict. ``max_steps``: stop each epoch after this many
    batches (quick trials)."""

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
    milestones: tuple[int, ...] = (40, 60)
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


def augment(x: torch.Tensor, flip_p: float, erase_p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random horizontal flips and random erasing (Zhong et al. 2020) of a (N, 3, H, W) batch, per sample.

    Erasing: with probability ``erase_p`` a rectangle of 2-40 % of the image area and aspect ratio
    0.3-3.3 is filled with the ImageNet mean colour (what the model sees as zero after normalisation).
    """
    n, _, h, w = x.shape
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device="cpu").to(dev)

    flip = rand(n) < flip_p
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    erase = rand(n) < erase_p
    area = h * w * (0.02 + 0.38 * rand(n))
    ratio = torch.exp(math.log(0.3) + (math.log(1 / 0.3) - math.log(0.3)) * rand(n))
    eh = torch.sqrt(area * ratio).round().clamp(1, h)
    ew = torch.sqrt(area / ratio).round().clamp(1, w)
    top = (rand(n) * (h - eh + 1)).floor()
    left = (rand(n) * (w - ew + 1)).floor()
    rows = torch.arange(h, device=dev)[None, :]
    cols = torch.arange(w, device=dev)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :] & erase[:, None, None]
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


def mgn_loss(out: MGNOutput, labels: torch.Tensor, margin: float, label_smoothing: float = 0.0
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean cross-entropy over the 8 classifiers + mean batch-hard triplet loss over the 3 global features.

    Returns (loss, {"loss", "ce", "triplet", "accuracy"} as floats); accuracy is the classifiers' mean top-1.
    """
    ce = torch.stack([F.cross_entropy(z.float(), labels, label_smoothing=label_smoothing) for z in out.logits]).mean()
    tri = torch.stack([batch_hard_triplet(f, labels, margin) for f in out.triplet]).mean()
    with torch.no_grad():
        acc = torch.stack([(z.argmax(1) == labels).float().mean() for z in out.logits]).mean()
    loss = ce + tri
    return loss, {"loss": float(loss.detach()), "ce": float(ce.detach()), "triplet": float(tri.detach()),
                  "accuracy": float(acc)}


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
        return torch.optim.SGD(params, lr=learning_rate(opts, 0), momentum=opts.momentum,
                               weight_decay=opts.weight_decay, nesterov=True)
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
                "or pass --pretrained FILE", why, RESNET50_FILE,
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


def _save_last(path: Path, model: MGN, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               epoch: int, meta: dict) -> None:
    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": epoch,
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train(opts: TrainOptions) -> Path:
    """Train MGN as ``opts`` says; returns the path of the final ``model.safetensors``."""
    if opts.height < 48 or opts.width < 16:
        raise InputError(f"input size {opts.height}x{opts.width} is too small for MGN (at least 48x16)")
    records = find_train_records(opts.data)
    pids = sorted({r.pid for r in records})
    label_of = {pid: i for i, pid in enumerate(pids)}
    labels = [label_of[r.pid] for r in records]
    device = resolve_device(opts.device)
    precision = resolve_precision(opts.precision, device)
    torch.manual_seed(opts.seed)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    saved = None
    if opts.resume and last.is_file():
        saved = torch.load(last, map_location="cpu", weights_only=True)
        if saved["meta"].get("identities") != pids or saved["meta"].get("layout") != opts.variant:
            raise InputError(f"{last}: was trained on other identities or another MGN layout; cannot resume")
        with torch.device("meta"):
            model = MGN(opts.variant, num_classes=len(pids))
        load_state(model, saved["model"], str(last), assign=True)
        init = saved["meta"].get("init")
        log.info("resuming from %s after epoch %d", last, saved["epoch"])
    else:
        if opts.resume:
            log.warning("reid-train: --resume given but %s does not exist; starting afresh", last)
        model = MGN(opts.variant, num_classes=len(pids))
        init = init_backbone(model, opts.pretrained, opts.offline)
    meta = {
        "layout": model.layout, "num_classes": model.num_classes, "global_cls_dim": model.global_cls_dim,
        "height": opts.height, "width": opts.width, "identities": pids, "data": str(opts.data), "init": init,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(opts).items()},
    }
    model.to(device).train()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    optimizer = make_optimizer(model, opts)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    start_epoch = 0
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        start_epoch = int(saved["epoch"])

    sampler = PKSampler(labels, opts.p, opts.k, opts.seed)
    loader = torch.utils.data.DataLoader(
        CropDataset(records, labels), batch_sampler=sampler, collate_fn=collate, num_workers=opts.workers,
        pin_memory=device.type == "cuda",
    )
    steps = len(sampler) if opts.max_steps is None else min(len(sampler), opts.max_steps)
    dtype = PRECISIONS[precision]
    log_path = out / "log.csv"
    new_log = not (opts.resume and log_path.is_file())
    from tqdm import tqdm

    with open(log_path, "w" if new_log else "a", newline="") as log_file:
        writer = csv.writer(log_file)
        if new_log:
            writer.writerow(LOG_FIELDS)
        for epoch in range(start_epoch, opts.epochs):
            sampler.set_epoch(epoch)
            generator = torch.Generator().manual_seed(opts.seed * 1000003 + epoch)
            bar = tqdm(loader, total=steps, desc=f"epoch {epoch + 1}/{opts.epochs}", disable=not opts.progress)
            for step, (crops, target) in enumerate(bar):
                if step >= steps:
                    break
                t0 = time.perf_counter()
                lr = learning_rate(opts, epoch + step / steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x = augment(crops_to_batch(crops, opts.height, opts.width, device), opts.flip_p, opts.erase_p,
                            generator)
                target = target.to(device)
                with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                    loss, parts = mgn_loss(model(x), target, opts.margin, opts.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                rate = len(crops) / (time.perf_counter() - t0)
                writer.writerow([epoch + 1, step + 1, f"{lr:.6g}", f"{parts['loss']:.5f}", f"{parts['ce']:.5f}",
                                 f"{parts['triplet']:.5f}", f"{parts['accuracy']:.4f}", f"{rate:.1f}"])
                bar.set_postfix(loss=f"{parts['loss']:.3f}", acc=f"{parts['accuracy']:.2f}", lr=f"{lr:.2g}")
            log_file.flush()
            _save_last(last, model, optimizer, scaler, epoch + 1, meta)
    final = out / "model.safetensors"
    save_model(final, model.to("cpu", memory_format=torch.contiguous_format),
               **{k: v for k, v in meta.items() if k not in ("layout", "num_classes", "global_cls_dim")})
    return final
