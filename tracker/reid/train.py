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
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from tracker.errors import InputError
from tracker.fsutil import atomic_path
from tracker.reid.checkpoint import load_state, read_checkpoint, save_model
from tracker.reid.data import ImageRecord, find_train_records, read_images
from tracker.reid.extract import PRECISIONS, resolve_device, resolve_precision, set_cpu_threads
from tracker.reid.mgn import MGN, MGNOutput
from tracker.reid.mobilenet import SPLIT
from tracker.reid.preprocess import crops_to_batch
from tracker.reid.recipe import (
    BACKBONES,
    EPOCH_FIELDS,
    LICENCE_NOTE,
    LOG_FIELDS,
    CropDataset,
    TrainOptions,
    augment,
    collate,
    init_backbone,
    learning_rate,
    make_optimizer,
    make_sampler,
    mgn_loss,
    split_validation,
    validation_scores,
)

log = logging.getLogger(__name__)


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
    model.load_imagenet(load_imagenet_features(read_checkpoint(path)[0], str(path)))
    return str(path)


def check_options(opts: TrainOptions) -> None:
    """InputError for settings that cannot work together."""
    if opts.backbone not in BACKBONES:
        raise InputError(f"--backbone: {opts.backbone!r} is not one of {', '.join(BACKBONES)}")
    if opts.freeze not in ("none", "trunk"):
        raise InputError(f"--freeze: {opts.freeze!r} is not trunk or none")
    if opts.freeze == "trunk" and opts.backbone != "mobilenetv2":
        raise InputError("--freeze trunk: only the mobilenetv2 backbone trains above a frozen, cached trunk")
    if not 1 <= opts.frozen_blocks <= SPLIT:
        raise InputError(
            f"--frozen-blocks: {opts.frozen_blocks} is not between 1 and {SPLIT} (the trunk's blocks)"
        )
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
        was = saved["meta"].get("options", {})
        for key in ("freeze", "frozen_blocks"):  # absent from older runs: they had TrainOptions' defaults
            before = was.get(key, getattr(TrainOptions, key))
            if before != getattr(opts, key):
                raise InputError(
                    f"{last}: was trained with {key} {before}, not {getattr(opts, key)}; "
                    "cannot resume (the optimiser holds other parameters)"
                )
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
        model.trunk[: opts.frozen_blocks].requires_grad_(False)
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
                model.trunk[: opts.frozen_blocks].eval()  # frozen BN statistics too
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
        "frozen": f"blocks 0-{opts.frozen_blocks - 1}, outputs cached"
        if opts.freeze == "trunk"
        else "nothing",
        "data": f"{data.name}: {images} training images of {len(meta['identities'])} identities"
        + (f" ({len(val)} more identities held out for validation)" if val else ""),
        "input": [opts.height, opts.width],
        "epochs": len(history),
        "sampling": f"{opts.sampling}, P={opts.p} x K={opts.k}",
        "optimizer": f"{opts.optimizer}, lr {learning_rate(opts, opts.warmup_epochs)}, warm-up "
        f"{opts.warmup_epochs} epochs, x{opts.gamma} at {list(opts.milestones)}",
        "loss": f"softmax on 8 classifiers + batch-hard triplet (margin {opts.margin}) on 3 global features",
        "augmentation": f"flip p={opts.flip_p}, random erasing p={opts.erase_p}"
        + (" (on the cached maps)" if opts.freeze == "trunk" else ""),
        "validation": [{k: row[k] for k in ("epoch", "val_rank1", "val_mAP") if k in row} for row in history],
        "training_seconds": round(seconds),
        "threads": threads,
        "licence": LICENCE_NOTE,
    }
