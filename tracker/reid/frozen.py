"""Training above the frozen lower blocks of a MobileNetV2 trunk on their outputs, computed once and cached
(the CPU recipe).

On 2 CPU cores full fine-tuning of MGN-MobileNetV2 runs at about 12 crops/s (18 minutes an epoch); with
blocks 0 to ``frozen_blocks - 1`` frozen (ImageNet weights, BN statistics fixed) their output is the same
every epoch, so it is computed once per image and kept: the image and its mirror image in float16, for
the whole trunk (``frozen_blocks`` 14) (N, 2, 96, H/16, W/16), about 0.6 GB for Market-1501's 12,936
training crops at 256x128. Training then runs only the trunk's remaining blocks, the three branches and
the heads (:meth:`tracker.reid.mobilenet.MGNMobileNetV2.heads`).

Augmentation stays what the paper and its successors use, moved to where the data is:

* horizontal flip: exact, the cached output of the mirrored image is taken with probability ``flip_p``;
* random erasing (Zhong et al. 2020) on the cached map: the rectangle (2-40 % of the area, aspect
  0.3-3.3, probability ``erase_p``) is filled with the frozen blocks' output for a flat ImageNet-mean-
  colour image, which is what they see inside an image-level erased rectangle (away from its border).

The cache file is named by a hash of the image files (names and sizes), the frozen blocks and their
weights, the input size and the interpolation, so a second run on the same data reuses it and anything
else rebuilds it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from tracker.fsutil import atomic_path
from tracker.reid.data import ImageRecord, read_images
from tracker.reid.mgn import PIXEL_MEAN, MGNOutput
from tracker.reid.mobilenet import SPLIT, MGNMobileNetV2
from tracker.reid.preprocess import crops_to_batch
from tracker.reid.recipe import TrainOptions, erase_masks, make_sampler, validation_scores

log = logging.getLogger(__name__)

CHUNK = 64  # images per trunk forward when building the cache


def cache_key(
    model: MGNMobileNetV2, records: Sequence[ImageRecord], height: int, width: int, blocks: int = SPLIT
) -> str:
    """Hex digest naming a cache: image names and sizes, the frozen blocks' weights, input size,
    interpolation (the whole trunk's caches keep the names they had before ``blocks`` existed)."""
    what = f"mgn-mobilenetv2-trunk/1 {height}x{width} bicubic" + (
        f" blocks {blocks}" if blocks != SPLIT else ""
    )
    digest = hashlib.sha256(what.encode())
    for r in records:
        digest.update(f"{Path(r.path).name}:{os.path.getsize(r.path)}\n".encode())
    for key, value in model.trunk[:blocks].state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def trunk_outputs(
    model: MGNMobileNetV2,
    crops: Sequence[np.ndarray],
    height: int,
    width: int,
    device: torch.device | str = "cpu",
    blocks: int = SPLIT,
) -> torch.Tensor:
    """uint8 BGR crops -> (N, 2, C, h, w) float16 outputs of ``features[:blocks]`` for each image and its
    mirror image (eval mode); for the whole trunk (N, 2, 96, height/16, width/16)."""
    x = crops_to_batch(crops, height, width, device)
    model.trunk.eval()
    with torch.inference_mode():
        both = model.trunk_features(torch.cat([x, x.flip(3)]), blocks)
    return torch.stack([both[: len(x)], both[len(x) :]], dim=1).to("cpu", torch.float16)


def build_cache(
    model: MGNMobileNetV2,
    records: Sequence[ImageRecord],
    height: int,
    width: int,
    folder: Path,
    device: torch.device | str = "cpu",
    progress: bool = True,
    blocks: int = SPLIT,
) -> torch.Tensor:
    """The (N, 2, C, h, w) float16 outputs of ``features[:blocks]`` for ``records`` (see
    :func:`trunk_outputs`), read from ``folder`` when a cache for exactly these inputs is there, else
    computed and written atomically."""
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"trunk-{cache_key(model, records, height, width, blocks)}.npy"
    if path.is_file():
        log.info("trunk outputs from %s", path)
        return torch.from_numpy(np.load(path))
    log.info(
        "computing the outputs of the frozen blocks 0-%d for %d images and their mirror images once (%s)",
        blocks - 1,
        len(records),
        path,
    )
    out = None
    bar = tqdm(total=len(records), desc="trunk cache", unit="img", disable=not progress)
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        crops = read_images([r.path for r in chunk], threads=2)
        feats = trunk_outputs(model, crops, height, width, device, blocks)
        if out is None:
            out = np.empty((len(records), *feats.shape[1:]), np.float16)
        out[start : start + len(chunk)] = feats.numpy()
        bar.update(len(chunk))
    bar.close()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, out)
    return torch.from_numpy(out)


def erase_fill(
    model: MGNMobileNetV2, height: int, width: int, device: torch.device | str = "cpu", blocks: int = SPLIT
) -> torch.Tensor:
    """(C,) output of ``features[:blocks]`` at the centre of a flat ImageNet-mean-colour image: the value
    random erasing puts into the cached maps."""
    flat = torch.tensor(PIXEL_MEAN, device=device).view(1, 3, 1, 1).expand(1, 3, height, width)
    model.trunk.eval()
    with torch.inference_mode():
        out = model.trunk_features(flat.contiguous(), blocks)
    return out[0, :, out.shape[2] // 2, out.shape[3] // 2].float().cpu()


class CachedTrunkBatches:
    """Training batches of augmented cached trunk outputs and validation on cached outputs, for
    :func:`tracker.reid.train.train` (the same interface as :class:`tracker.reid.train.ImageBatches`)."""

    def __init__(
        self,
        model: MGNMobileNetV2,
        records: Sequence[ImageRecord],
        labels: Sequence[int],
        val_records: Sequence[ImageRecord],
        opts: TrainOptions,
        device: torch.device,
    ) -> None:
        self.opts, self.device, self.val_records = opts, device, list(val_records)
        folder = Path(opts.cache) if opts.cache else Path(opts.out) / "cache"
        # One cache for every split of the same images: in path order, indexed per split.
        every = sorted([*records, *val_records], key=lambda r: str(r.path))
        row = {str(r.path): i for i, r in enumerate(every)}
        self.blocks = opts.frozen_blocks
        cache = build_cache(model, every, opts.height, opts.width, folder, device, opts.progress, self.blocks)
        self.train_feats = cache[torch.as_tensor([row[str(r.path)] for r in records])]
        self.val_feats = cache[torch.as_tensor([row[str(r.path)] for r in val_records], dtype=torch.long)]
        self.labels = torch.as_tensor(labels)
        self.fill = erase_fill(model, opts.height, opts.width, device, self.blocks).to(device)
        self.sampler = make_sampler(labels, opts)

    def __len__(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(N, C, h, w) float32 augmented cached outputs and their (N,) labels."""
        self.sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(self.opts.seed * 1000003 + epoch)
        for batch in self.sampler:
            idx = torch.as_tensor(batch)
            mirrored = (torch.rand(len(idx), generator=generator) < self.opts.flip_p).long()
            x = self.train_feats[idx, mirrored].to(self.device, torch.float32)
            mask = erase_masks(len(idx), x.shape[2], x.shape[3], self.opts.erase_p, generator, self.device)
            x = torch.where(mask[:, None], self.fill[None, :, None, None], x)
            yield x.contiguous(memory_format=torch.channels_last), self.labels[idx].to(self.device)

    def forward(self, model: MGNMobileNetV2, x: torch.Tensor) -> MGNOutput:
        return model.heads(x, self.blocks)

    def validate(self, model: MGNMobileNetV2) -> dict[str, float]:
        """Validation Rank-1 / mAP from the held-out identities' cached outputs (eval mode; with the
        mirror images when the model uses test-time flipping): embedding their images, up to the cache's
        float16 rounding."""
        feats = []
        with torch.inference_mode():
            for start in range(0, len(self.val_feats), 256):
                chunk = self.val_feats[start : start + 256].to(self.device, torch.float32)
                feats.append(model.embed_trunk(chunk[:, 0], chunk[:, 1], self.blocks).cpu().numpy())
        return validation_scores(np.concatenate(feats), self.val_records)
