"""Re-identification datasets on disk: Market-1501 image folders and MARS tracklet folders.

* Market-1501 layout: ``bounding_box_train/``, ``query/``, ``bounding_box_test/`` (gallery) with files
  ``PPPP_cCsS_FFFFFF_NN.jpg`` (person id, camera, sequence, frame, box); id ``-1`` marks junk boxes and
  ``0000`` distractors. DukeMTMC-reID names (``PPPP_cC_fFFFFFFF.jpg``) parse the same way.
* MARS layout: ``bbox_train/`` and ``bbox_test/``, each ``PPPP/PPPPCcTttttFfff.jpg`` (person id, camera,
  tracklet, frame); one tracklet is the frames sharing ``PPPPCcTtttt``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.errors import InputError
from tracker.video import IMAGE_SUFFIXES

MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")
MARS_NAME = re.compile(r"^(-?\d{4})C(\d)T(\d{4})F(\d+)")


@dataclass(frozen=True)
class ImageRecord:
    """One crop on disk: its person id, 1-based camera and (MARS only, else -1) tracklet number."""

    path: Path
    pid: int
    cam: int
    tracklet: int = -1


def parse_market_name(name: str) -> tuple[int, int] | None:
    """``0002_c1s1_000451_03.jpg`` -> (2, 1); ``-1_c3s1_...`` -> (-1, 3); None when it does not match."""
    m = MARKET_NAME.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_mars_name(name: str) -> tuple[int, int, int, int] | None:
    """``0004C1T0002F017.jpg`` -> (pid 4, camera 1, tracklet 2, frame 17); None when it does not match."""
    m = MARS_NAME.match(name)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4))) if m else None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_folder(folder: str | Path) -> list[ImageRecord]:
    """All crops under ``folder`` (recursively) named either way (MARS names are tried first)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found")
    records = []
    for path in _images(folder):
        mars = parse_mars_name(path.name)
        if mars is not None:
            records.append(ImageRecord(path, mars[0], mars[1], mars[2]))
            continue
        market = parse_market_name(path.name)
        if market is not None:
            records.append(ImageRecord(path, market[0], market[1]))
    if not records:
        raise InputError(
            f"{folder}: no crops named like Market-1501 (PPPP_cC...jpg) or MARS (PPPPCcTttttFfff.jpg)"
        )
    return records


@dataclass(frozen=True)
class EvalSplit:
    """What ``reid-eval`` evaluates: Market-style query/gallery images, or MARS-style tracklets."""

    kind: str  # "images" or "tracklets"
    query: list[ImageRecord]
    gallery: list[ImageRecord]  # for "tracklets": empty (all tracklets are queries and gallery)


def find_eval_split(data: str | Path) -> EvalSplit:
    """Locate the evaluation part of a dataset folder.

    ``DIR/query`` + ``DIR/bounding_box_test`` -> image-level Market-1501 protocol; ``DIR/bbox_test`` or a
    folder of MARS-named crops -> tracklet-level (every tracklet a query against all others).
    """
    data = Path(data)
    if not data.is_dir():
        raise InputError(f"{data}: dataset folder not found")
    if (data / "query").is_dir() and (data / "bounding_box_test").is_dir():
        return EvalSplit("images", read_folder(data / "query"), read_folder(data / "bounding_box_test"))
    folder = data / "bbox_test" if (data / "bbox_test").is_dir() else data
    records = read_folder(folder)
    if any(r.tracklet < 0 for r in records):
        raise InputError(
            f"{data}: expected query/ + bounding_box_test/ (Market-1501) or bbox_test/ with MARS-named tracklets"
        )
    return EvalSplit("tracklets", records, [])


def find_train_records(data: str | Path) -> list[ImageRecord]:
    """Training crops of ``DIR/bounding_box_train`` (Market), ``DIR/bbox_train`` (MARS) or DIR itself.

    Junk (-1) and distractor (0) ids are dropped.
    """
    data = Path(data)
    for sub in ("bounding_box_train", "bbox_train"):
        if (data / sub).is_dir():
            data = data / sub
            break
    records = [r for r in read_folder(data) if r.pid > 0]
    if len({r.pid for r in records}) < 2:
        raise InputError(f"{data}: training needs at least 2 identities")
    return records


def group_tracklets(records: Sequence[ImageRecord]) -> dict[tuple[int, int, int], list[int]]:
    """Indices of ``records`` per tracklet key ``(pid, cam, tracklet)``, in file order."""
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault((r.pid, r.cam, r.tracklet), []).append(i)
    return groups


def read_images(paths: Sequence[Path], threads: int = 4) -> list[np.ndarray]:
    """Decode image files into uint8 (H, W, 3) BGR arrays (OpenCV), a few threads at a time."""
    import cv2

    def read(path: Path) -> np.ndarray:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"{path}: not a readable image")
        return img

    if threads <= 1 or len(paths) < 16:
        return [read(p) for p in paths]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(read, paths))
