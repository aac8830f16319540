"""Person detection: ultralytics YOLO, offline OpenCV detectors when no YOLO weights can be had, or MOT files.

All detectors share one interface (:class:`Detector`): ``detect(frames) -> list[Detections]`` for a batch of
frames, ``info() -> dict`` saying what was actually used (for run.json), and ``batch_group``, which states
what the detector needs of the scheduler: detectors with the same non-None ``batch_group`` hold no per-camera
state, so frames of several cameras may go to one of them in one call (YOLO and HOG); ``None`` means one
instance per camera (the motion detector's background model, a camera's own detection file).
:func:`build_detector` makes one for a camera.

* ``yolo``   ultralytics YOLO (``.pt``, ONNX, OpenVINO / TensorRT export folders), person class only, batched.
* ``motion`` background subtraction (MOG2 with shadow removal) for static cameras.
* ``hog``    OpenCV's built-in HOG + linear SVM pedestrian detector.
* ``auto``   YOLO when its weights are on disk or downloadable, else ``motion`` with one warning line.
* a MOTChallenge detection file per camera (``detect.detections``) replaces the detector.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from tracker import env
from tracker.config import DETECTORS, DetectConfig, ModelsConfig, MotionConfig
from tracker.errors import InputError
from tracker.geometry import nms
from tracker.mot import read_mot
from tracker.types import Detections, Frame

if TYPE_CHECKING:
    from tracker.video import FrameSource

log = logging.getLogger(__name__)


class Detector(Protocol):
    """Finds people in frames. ``detect(frames)``: one :class:`Detections` per frame, in order.
    ``batch_group``: see the module docstring. ``info()``: what was used, for run.json."""

    name: str
    batch_group: Hashable | None

    def detect(self, frames: Sequence[Frame]) -> list[Detections]: ...

    def info(self) -> dict: ...


def resolve_detector(
    cfg: DetectConfig, models: ModelsConfig = ModelsConfig()
) -> tuple[DetectConfig, str | None]:
    """Decide what ``auto`` means here, once: ``yolo`` (with the weights' path) or ``motion``.

    Returns the config with a concrete ``detector`` and ``device`` (``cpu`` for the OpenCV detectors; for YOLO
    also the ``weights`` path), and the reason for falling back to ``motion`` (None when there was no
    fallback); logs one warning line on a fallback. ``yolo`` gets its weights resolved (downloaded into the
    model cache if need be, unless ``models.offline``).
    """
    if cfg.detector not in ("auto", "yolo"):
        return dataclasses.replace(cfg, device="cpu"), None
    weights, why = resolve_yolo_weights(cfg.weights, models)
    if weights is not None:
        try:
            device = env.resolve_device(cfg.device)
        except ValueError as exc:
            raise InputError(f"detect.device: {exc}") from None
        return dataclasses.replace(cfg, detector="yolo", weights=str(weights), device=device), None
    if cfg.detector == "yolo":
        raise InputError(f"{cfg.weights}: YOLO weights unavailable ({why})")
    _warn_once(
        f"YOLO unavailable ({why}); using the offline 'motion' detector. "
        f"Get YOLO by running once with network access or pass --detector-weights PATH."
    )
    return dataclasses.replace(cfg, detector="motion", device="cpu"), why


def build_detector(
    cfg: DetectConfig,
    models: ModelsConfig = ModelsConfig(),
    source: FrameSource | None = None,
    detections: str | Path | None = None,
) -> Detector:
    """The detector for one camera: its MOT ``detections`` file when given, else what ``cfg.detector`` names
    (``auto`` is resolved first). ``source`` is the camera's frames: the motion detector seeds its background
    model with the median of ``cfg.motion.background_frames`` frames spread over it, so that people present
    from the first frame are found."""
    if detections is not None:
        return FileDetector(detections)
    cfg, fallback = resolve_detector(cfg, models) if cfg.detector == "auto" else (cfg, None)
    if cfg.detector == "yolo":
        return YoloDetector(cfg, models)
    if cfg.detector == "motion":
        count = cfg.motion.background_frames
        samples = source.sample_images(count) if source is not None and count else []
        return MotionDetector(cfg.motion, samples, fallback_reason=fallback)
    if cfg.detector == "hog":
        return HogDetector(cfg)
    raise InputError(f"detect.detector: {cfg.detector!r} is not one of {', '.join(DETECTORS)}")


@functools.cache
def _warn_once(message: str) -> None:
    log.warning(message)


# ------------------------------------------------------------------------------------ detection files


def read_mot_detections(path: str | Path) -> dict[int, Detections]:
    """A MOTChallenge detection file (``frame,id,x,y,w,h,conf,...``) as per-frame Detections.

    Scores above 1 (some public detectors give raw scores) are kept; the tracker's thresholds apply to them as
    given, so choose thresholds to match the detector. A file that is not one raises InputError.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: detection file not found")
    rows = read_mot(p, 7)
    out: dict[int, Detections] = {}
    if not len(rows):
        return out
    frames = rows[:, 0].astype(np.int64)
    order = np.argsort(frames, kind="stable")
    rows, frames = rows[order], frames[order]
    starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]])
    for s, e in zip(starts, np.r_[starts[1:], len(rows)]):
        out[int(frames[s])] = Detections.from_xywh(rows[s:e, 2:6], rows[s:e, 6])
    return out


class FileDetector:
    """A camera's MOT detection file as a detector: the boxes of each frame number, read once."""

    name = "file"
    batch_group = None

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.by_frame = read_mot_detections(self.path)

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self.by_frame.get(f.index, Detections.empty()) for f in frames]

    def info(self) -> dict:
        return {"detector": "file", "detections": str(self.path)}


# --------------------------------------------------------------------------------------------- YOLO


def _prepare_ultralytics(models: ModelsConfig) -> None:
    """Keep ultralytics offline-safe: no pip installs, no telemetry, settings in our own model cache.

    Must run before the first ``import ultralytics`` (it reads these variables at import).
    """
    cache = env.cache_dir(models.cache_dir)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache / "ultralytics"))
    os.environ["YOLO_AUTOINSTALL"] = "False"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    if models.offline:
        os.environ["YOLO_OFFLINE"] = "1"
    from ultralytics.utils import SETTINGS

    wanted = {"sync": False, "weights_dir": str(cache / "weights")}
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)


def resolve_yolo_weights(
    weights: str, models: ModelsConfig, download: bool = True
) -> tuple[Path | None, str]:
    """Find YOLO weights on disk (as given, then in the model cache) or download official ones there.

    ``weights`` may be a file ultralytics loads (``.pt``, ``.onnx``, ``.engine``, ...) or an export folder
    (OpenVINO, TensorRT). Returns ``(path, "")`` or ``(None, reason)``. Never hangs offline: the download is
    skipped at once when ``models.offline`` (or not ``download``), and a failed name lookup fails at once.
    """
    given = Path(weights).expanduser()
    if given.exists():
        return given, ""
    cached = env.cache_dir(models.cache_dir) / "weights" / given.name
    if cached.exists():
        return cached, ""
    if given.parent != Path("."):
        return None, f"{given} not found"
    if not download or models.offline:
        return None, f"{given.name} is not in {cached.parent} and downloads are off (offline)"
    _prepare_ultralytics(models)
    try:
        from ultralytics.utils.downloads import attempt_download_asset

        path = Path(attempt_download_asset(str(cached)))
    except Exception as exc:  # ultralytics raises ConnectionError and others when the host is unreachable
        return None, f"download of {given.name} failed: {type(exc).__name__}"
    return (path, "") if path.is_file() else (None, f"download of {given.name} failed")


@functools.lru_cache(maxsize=4)
def _load_yolo(path: str, models: ModelsConfig):
    _prepare_ultralytics(models)
    from ultralytics import YOLO

    try:
        model = YOLO(path, task="detect")
    except Exception as exc:
        raise InputError(f"{path}: not a loadable YOLO model ({type(exc).__name__}: {exc})") from None
    return model


class YoloDetector:
    """ultralytics YOLO restricted to the COCO ``person`` class, batched over frames (of any cameras)."""

    name = "yolo"

    def __init__(self, cfg: DetectConfig, models: ModelsConfig = ModelsConfig()):
        self.cfg = cfg
        self.weights = Path(cfg.weights)
        self.device = env.resolve_device(cfg.device)
        self.model = _load_yolo(str(self.weights), models)
        names = getattr(self.model, "names", {}) or {}
        ids = [k for k, v in names.items() if v == "person"]
        self.person = ids[0] if ids else 0
        self.batch_group = ("yolo", str(self.weights), self.device, cfg.imgsz, cfg.conf, cfg.iou, cfg.half)

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        if not len(frames):
            return []
        results = self.model.predict(
            [f.image for f in frames],
            imgsz=self.cfg.imgsz,
            conf=self.cfg.conf,
            iou=self.cfg.iou,
            classes=[self.person],
            device=self.device,
            half=self.cfg.half and self.device != "cpu",
            verbose=False,
            batch=self.cfg.batch,
        )
        return [Detections(r.boxes.xyxy.cpu().numpy(), r.boxes.conf.cpu().numpy()) for r in results]

    def info(self) -> dict:
        return {
            "detector": "yolo",
            "weights": str(self.weights),
            "device": self.device,
            "imgsz": self.cfg.imgsz,
        }


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
    batch_group = None

    def __init__(
        self, cfg: MotionConfig, background: Sequence[np.ndarray] = (), fallback_reason: str | None = None
    ):
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

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self._one(f.image) for f in frames]

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

    def _people_in_blob(
        self, fg: np.ndarray, x: int, y: int, bw: int, bh: int
    ) -> list[tuple[int, int, int, int]]:
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
    batch_group = ("hog",)

    def __init__(self, cfg: DetectConfig, upscale: float = 2.0):
        self.cfg = cfg
        self.upscale = upscale
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        out = []
        for image in (f.image for f in frames):
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
