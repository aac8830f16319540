"""Person detection: ultralytics YOLO, or offline OpenCV detectors when no YOLO weights can be had.

All detectors share one interface: ``detect(images) -> list[Detections]`` for a batch of BGR frames, and
``info() -> dict`` saying what was actually used (for run.json). ``build_detector(cfg, source)`` makes
one per camera: the motion detector keeps a per-camera background model; YOLO models are loaded once and
shared between cameras.

* ``yolo``   ultralytics YOLO, person class only, batched.
* ``motion`` background subtraction (MOG2 with shadow removal) for static cameras.
* ``hog``    OpenCV's built-in HOG + linear SVM pedestrian detector.
* ``auto``   YOLO when its weights are on disk or downloadable, else ``motion`` with one warning line.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Protocol, Sequence

import cv2
import numpy as np

from tracker import env
from tracker.config import DetectConfig, MotionConfig
from tracker.errors import InputError
from tracker.types import Detections

log = logging.getLogger(__name__)

DETECTORS = ("auto", "yolo", "motion", "hog")


class Detector(Protocol):
    name: str

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]: ...

    def info(self) -> dict: ...


def resolve_detector(cfg: DetectConfig) -> tuple[DetectConfig, str | None]:
    """Decide what ``auto`` means here, once: ``yolo`` (with the weights' path) or ``motion``.

    Returns the config with a concrete ``detector`` (and ``weights``) and the reason for falling back to
    ``motion`` (None when there was no fallback); logs one warning line on a fallback. Other values are
    checked and returned as they are, ``yolo`` with its weights resolved (downloaded if need be).
    """
    import dataclasses

    if cfg.detector not in DETECTORS:
        raise InputError(f"detector '{cfg.detector}' is unknown (choose from {', '.join(DETECTORS)})")
    if cfg.detector not in ("auto", "yolo"):
        return cfg, None
    weights, why = resolve_yolo_weights(cfg.weights, download=True)
    if weights is not None:
        return dataclasses.replace(cfg, detector="yolo", weights=str(weights)), None
    if cfg.detector == "yolo":
        raise InputError(f"{cfg.weights}: YOLO weights unavailable ({why})")
    _warn_once(f"YOLO unavailable ({why}); using the offline 'motion' detector. "
               f"Get YOLO by running once with network access or pass --detector-weights PATH.")
    return dataclasses.replace(cfg, detector="motion"), why


def build_detector(cfg: DetectConfig, background: Sequence[np.ndarray] = ()) -> Detector:
    """Make the detector ``cfg.detector`` names for one camera (``auto`` is resolved first).

    ``background`` is a few frames spread over the camera's video; the motion detector builds its
    initial background model from their median so that people present from the first frame are found.
    """
    cfg, fallback = resolve_detector(cfg)
    if cfg.detector == "yolo":
        return YoloDetector(cfg, Path(cfg.weights))
    if cfg.detector == "motion":
        return MotionDetector(cfg.motion, background, fallback_reason=fallback)
    return HogDetector(cfg)


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    log.warning(message)


# --------------------------------------------------------------------------------------------- YOLO


def _prepare_ultralytics() -> None:
    """Keep ultralytics offline-safe: no pip installs, no telemetry, settings in our own cache folder.

    Must run before the first ``import ultralytics`` (it reads these variables at import).
    """
    os.environ.setdefault("YOLO_CONFIG_DIR", str(env.cache_dir() / "ultralytics"))
    os.environ["YOLO_AUTOINSTALL"] = "False"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    if env.offline():
        os.environ["YOLO_OFFLINE"] = "1"
    from ultralytics.utils import SETTINGS

    wanted = {"sync": False, "weights_dir": str(env.cache_dir() / "weights")}
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)


def resolve_yolo_weights(weights: str, download: bool) -> tuple[Path | None, str]:
    """Find YOLO weights on disk (as given, then in the model cache) or download official ones there.

    Returns ``(path, "")`` or ``(None, reason)``. Never hangs offline: the download is skipped at once
    when offline, and a failed name lookup fails at once.
    """
    given = Path(weights).expanduser()
    if given.is_file():
        return given, ""
    cached = env.cache_dir() / "weights" / given.name
    if cached.is_file():
        return cached, ""
    if given.parent != Path("."):
        return None, f"{given} not found"
    if not download or env.offline():
        return None, f"{given.name} is not in {cached.parent} and downloads are off (offline)"
    _prepare_ultralytics()
    try:
        from ultralytics.utils.downloads import attempt_download_asset

        path = Path(attempt_download_asset(str(cached)))
    except Exception as exc:  # ultralytics raises ConnectionError and others when the host is unreachable
        return None, f"download of {given.name} failed: {type(exc).__name__}"
    return (path, "") if path.is_file() else (None, f"download of {given.name} failed")


@functools.lru_cache(maxsize=4)
def _load_yolo(path: str, device: str):
    _prepare_ultralytics()
    from ultralytics import YOLO

    try:
        model = YOLO(path, task="detect")
    except Exception as exc:
        raise InputError(f"{path}: not a loadable YOLO checkpoint ({type(exc).__name__}: {exc})") from None
    return model


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda:0`` when a CUDA GPU is present, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


class YoloDetector:
    """ultralytics YOLO restricted to the COCO ``person`` class (id 0), batched over frames."""

    name = "yolo"

    def __init__(self, cfg: DetectConfig, weights: Path):
        self.cfg = cfg
        self.weights = Path(weights)
        self.device = resolve_device(cfg.device)
        self.model = _load_yolo(str(self.weights), self.device)
        names = getattr(self.model, "names", {}) or {}
        ids = [k for k, v in names.items() if v == "person"]
        self.person = ids[0] if ids else 0

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        if not len(images):
            return []
        results = self.model.predict(
            list(images), imgsz=self.cfg.imgsz, conf=min(self.cfg.conf, 0.1), iou=self.cfg.iou,
            classes=[self.person], device=self.device, half=self.cfg.half and self.device != "cpu",
            verbose=False, batch=self.cfg.batch,
        )
        out = []
        for r in results:
            boxes = r.boxes
            out.append(Detections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy()))
        return out

    def info(self) -> dict:
        return {"detector": "yolo", "weights": str(self.weights), "device": self.device, "imgsz": self.cfg.imgsz}


# ------------------------------------------------------------------------------------------- motion


class PerspectiveModel:
    """Standing-person height in pixels as a linear function of the foot row, learned online.

    In a static camera looking at a ground plane, a person's image height grows linearly with the image
    row of their feet. Isolated, upright blobs (clean samples) fit ``height = slope * foot_y + intercept``
    by least squares with outliers (beyond 2.5 median absolute deviations) dropped; the fit then tells how
    tall one person at a given foot row is, which lets merged blobs be split.
    """

    def __init__(self, min_samples: int = 40, max_samples: int = 600):
        from collections import deque

        self.samples: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self.min_samples = min_samples
        self.coef: tuple[float, float] | None = None
        self._since_fit = 0

    def add(self, foot_y: float, height: float) -> None:
        self.samples.append((foot_y, height))
        self._since_fit += 1
        if len(self.samples) >= self.min_samples and (self.coef is None or self._since_fit >= 25):
            self._fit()

    def _fit(self) -> None:
        self._since_fit = 0
        data = np.asarray(self.samples, np.float64)
        keep = np.ones(len(data), bool)
        for _ in range(2):
            slope, icpt = np.polyfit(data[keep, 0], data[keep, 1], 1)
            resid = np.abs(data[:, 1] - (slope * data[:, 0] + icpt))
            mad = np.median(resid[keep]) + 1e-6
            keep = resid <= 2.5 * 1.4826 * mad
        # A usable model: heights that grow downwards, but never as fast as the rows themselves.
        self.coef = (float(slope), float(icpt)) if 0.0 <= slope < 0.9 else None

    def height_at(self, foot_y: float) -> float | None:
        if self.coef is None:
            return None
        h = self.coef[0] * foot_y + self.coef[1]
        return h if h > 4 else None

    def foot_of_top(self, top_y: float) -> float | None:
        """The foot row of a person whose head is at ``top_y`` (solves ``foot - height(foot) = top``)."""
        if self.coef is None:
            return None
        slope, icpt = self.coef
        return (top_y + icpt) / (1.0 - slope)


class MotionDetector:
    """Moving-person boxes from background subtraction, for static cameras with no detector weights.

    MOG2 with shadow detection (shadow pixels, value 127, are dropped), an opening to remove noise and a
    closing to join body parts, then connected blobs. A :class:`PerspectiveModel` learned from isolated
    upright blobs says how tall one person is at each image row: blobs much taller than that (one person
    behind another) are cut into a near person at the bottom and a far one above, and blobs as wide as
    several people are split at their emptiest columns. Boxes are filtered by size and aspect ratio; scores
    grow with how solidly the box is filled.
    """

    name = "motion"

    def __init__(self, cfg: MotionConfig, background: Sequence[np.ndarray] = (), fallback_reason: str | None = None):
        self.cfg = cfg
        self.fallback_reason = fallback_reason
        self.subtractor = cv2.createBackgroundSubtractorMOG2(
            history=cfg.history, varThreshold=cfg.var_threshold, detectShadows=True
        )
        ok, ck = max(1, round(cfg.open_kernel * cfg.scale)), max(1, round(cfg.close_kernel * cfg.scale))
        self.open_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (ok, ok))
        self.close_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (ck, ck * 2 + 1))
        self.perspective = PerspectiveModel()
        self.frames_seen = 0
        if len(background):
            median = self._resize(np.median(np.stack(background), axis=0).astype(np.uint8))
            for _ in range(cfg.warmup_frames):
                self.subtractor.apply(median, learningRate=-1)
            self.frames_seen = cfg.warmup_frames

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [self._one(im) for im in images]

    def _resize(self, image: np.ndarray) -> np.ndarray:
        if self.cfg.scale == 1.0:
            return image
        return cv2.resize(image, None, fx=self.cfg.scale, fy=self.cfg.scale, interpolation=cv2.INTER_AREA)

    def foreground(self, image: np.ndarray) -> np.ndarray:
        """The cleaned foreground mask (uint8 0/255) of the next frame, at ``cfg.scale``."""
        mask = self.subtractor.apply(self._resize(image))
        fg = np.where(mask > 200, 255, 0).astype(np.uint8)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self.open_k)
        return cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self.close_k)

    def _one(self, image: np.ndarray) -> Detections:
        cfg = self.cfg
        fg = self.foreground(image)
        self.frames_seen += 1
        if self.frames_seen <= cfg.warmup_frames // 2:
            return Detections.empty()
        h, w = fg.shape
        _, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        boxes, scores = [], []
        for x, y, bw, bh, area in stats[1:]:
            if bh < cfg.min_height * h or area < cfg.min_area * h * w:
                continue
            inside = x > 1 and y > 1 and x + bw < w - 1 and y + bh < h - 1
            if inside and 2.3 <= bh / bw <= 4.0 and area > 0.35 * bw * bh:
                self.perspective.add(y + bh, bh)
            for x1, y1, x2, y2 in self._people_in_blob(fg, x, y, bw, bh):
                if not cfg.aspect_min * 0.6 <= (y2 - y1) / max(x2 - x1, 1) <= cfg.aspect_max:
                    continue
                fill = float(fg[y1:y2, x1:x2].mean() / 255.0)
                boxes.append([x1, y1, x2, y2])
                scores.append(np.clip(0.35 + fill, 0.0, 0.99))
        if not boxes:
            return Detections.empty()
        return Detections(np.asarray(boxes, np.float32) / cfg.scale, np.asarray(scores, np.float32))

    def _people_in_blob(self, fg: np.ndarray, x: int, y: int, bw: int, bh: int) -> list[tuple[int, int, int, int]]:
        """Boxes ``(x1, y1, x2, y2)`` of the people in one blob (stacked and side-by-side splits)."""
        bottom = y + bh
        one = self.perspective.height_at(bottom)
        bands = [(y, bottom)]
        if one is not None and bh > 1.45 * one:
            far_foot = self.perspective.foot_of_top(y)
            near_top = int(round(bottom - one))
            far_bottom = int(round(min(far_foot, near_top + 0.5 * one))) if far_foot else near_top
            bands = [(y, max(far_bottom, y + 2)), (near_top, bottom)]
        out = []
        for top, bot in bands:
            cols = np.flatnonzero(fg[top:bot, x : x + bw].any(axis=0))
            if not len(cols):
                continue
            bx1, bx2 = x + int(cols[0]), x + int(cols[-1]) + 1
            band_h = self.perspective.height_at(bot) or (bot - top)
            for ox, width in _split_wide(fg[top:bot, bx1:bx2], band_h):
                out.append((bx1 + ox, top, bx1 + ox + width, bot))
        return out

    def info(self) -> dict:
        out = {"detector": "motion"}
        if self.fallback_reason:
            out["fallback_reason"] = self.fallback_reason
        if self.perspective.coef is not None:
            out["perspective"] = [round(v, 4) for v in self.perspective.coef]
        return out


def _split_wide(blob: np.ndarray, height: float) -> list[tuple[int, int]]:
    """Split a blob as wide as several people at its emptiest columns; returns ``(x_offset, width)`` parts.

    A standing person is about 2.6 times taller than wide; a blob of ``k`` such widths is cut ``k - 1`` times.
    """
    width = blob.shape[1]
    person_w = height / 2.6
    parts = int(round(width / person_w))
    if parts < 2:
        return [(0, width)]
    cols = blob.mean(axis=0)
    cuts = [0]
    for k in range(1, parts):
        centre = int(k * width / parts)
        lo, hi = max(centre - int(person_w / 3), 1), min(centre + int(person_w / 3), width - 1)
        cuts.append(lo + int(np.argmin(cols[lo:hi])) if hi > lo else centre)
    cuts.append(width)
    return [(a, b - a) for a, b in zip(cuts[:-1], cuts[1:]) if b - a > 2]


# ---------------------------------------------------------------------------------------------- HOG


class HogDetector:
    """OpenCV's default people detector (HOG + linear SVM, 64x128 window), upscaled for small people."""

    name = "hog"

    def __init__(self, cfg: DetectConfig, upscale: float = 2.0):
        self.cfg = cfg
        self.upscale = upscale
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for image in images:
            big = cv2.resize(image, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
            rects, weights = self.hog.detectMultiScale(big, winStride=(8, 8), padding=(8, 8), scale=1.05)
            if len(rects) == 0:
                out.append(Detections.empty())
                continue
            rects = np.asarray(rects, np.float32) / self.upscale
            score = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))
            dets = Detections.from_xywh(rects, score)
            out.append(dets[nms(dets.xyxy, dets.confidence, 0.4)])
        return out

    def info(self) -> dict:
        return {"detector": "hog"}


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thresh: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first."""
    from tracker.track import iou_matrix

    order = np.argsort(-scores)
    iou = iou_matrix(boxes, boxes)
    keep: list[int] = []
    suppressed = np.zeros(len(boxes), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= iou[i] > iou_thresh
    return np.asarray(keep, np.int64)
