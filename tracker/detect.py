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
import importlib.util
import logging
import math
import os
import re
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from tracker import env
from tracker.config import DETECTORS, DetectConfig, ModelsConfig, MotionConfig
from tracker.errors import InputError
from tracker.geometry import iou_matrix, nms
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
        count, m = cfg.motion.background_frames, cfg.motion
        samples = []
        if source is not None and count:
            work = min(m.max_pixels, m.scale**2 * source.info.width * source.info.height)
            samples = source.sample_images(count, max_pixels=max(1, int(work)))
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
    threads = os.environ.get("OMP_NUM_THREADS")
    from ultralytics.utils import SETTINGS

    if threads is None:  # ultralytics sets OMP_NUM_THREADS=1 at import, for the ReID runtimes and workers too
        os.environ.pop("OMP_NUM_THREADS", None)
    wanted = {"sync": False, "weights_dir": str(cache / "weights")}
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)


YOLO_RUNTIMES = {
    "onnx": ("onnxruntime", "pip install onnxruntime, or onnxruntime-gpu, or the project's 'onnx' extra"),
    "openvino": ("openvino", "pip install openvino"),
    "engine": ("tensorrt", "pip install tensorrt, on a machine with an NVIDIA GPU"),
}
"""Export format -> (the Python package that runs it, how to install it). ``.pt`` needs only torch."""
_EXPORT_NAME = re.compile(r"^(?P<stem>.+?)(?:[_-](?:int8|fp16|half))?(?:_openvino_model|\.onnx|\.engine)$")


def yolo_format(path: Path) -> str | None:
    """The ultralytics format of a weights path: ``pt``, ``onnx``, ``openvino`` (an ``*_openvino_model``
    export folder), ``engine`` (TensorRT), another ultralytics export name (``torchscript``, ``ncnn``, ...),
    or None when it is none of them."""
    name = path.name.lower()
    if name.endswith(".pt"):
        return "pt"
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith("_openvino_model"):
        return "openvino"
    if name.endswith(".engine"):
        return "engine"
    for suffix, fmt in (
        ("_ncnn_model", "ncnn"),
        (".torchscript", "torchscript"),
        ("_saved_model", "saved_model"),
    ):
        if name.endswith(suffix):
            return fmt
    return None


def yolo_model_path(path: Path) -> Path:
    """The path ultralytics should load for ``path``: an OpenVINO ``.xml`` (or ``.bin``) inside an
    ``*_openvino_model`` folder is the folder, and a folder that holds exactly one ``.pt`` / ``.onnx`` /
    ``.engine`` file is that file; anything else is returned as it is."""
    if path.is_file() and path.suffix.lower() in (".xml", ".bin") and yolo_format(path.parent) == "openvino":
        return path.parent
    if path.is_dir() and yolo_format(path) is None:
        inside = [
            p for p in sorted(path.iterdir()) if p.is_file() and yolo_format(p) in ("pt", "onnx", "engine")
        ]
        if len(inside) == 1:
            return inside[0]
    return path


def yolo_runtime_missing(fmt: str | None) -> str | None:
    """Why weights of format ``fmt`` cannot run here (its runtime package is not installed), or None."""
    if fmt not in YOLO_RUNTIMES:
        return None
    package, how = YOLO_RUNTIMES[fmt]
    if importlib.util.find_spec(package) is None:
        return f"a {fmt} model needs the {package!r} package ({how})"
    return None


def cached_export(cache: Path, stem: str) -> Path | None:
    """An export of model ``stem`` (``yolov8n`` for ``yolov8n.pt``) in the weights folder ``cache`` whose
    runtime is installed: ``<stem>[_int8|_fp16]_openvino_model/``, ``<stem>[...].onnx`` or
    ``<stem>[...].engine`` (only with a CUDA GPU), the fastest runtime for this machine first (TensorRT,
    then OpenVINO, then ONNX Runtime); None when there is none."""
    if not cache.is_dir():
        return None
    order = ("engine", "openvino", "onnx")
    found = []
    for p in cache.iterdir():
        m = _EXPORT_NAME.match(p.name)
        fmt = yolo_format(p)
        if not m or m["stem"] != stem or fmt not in order or yolo_runtime_missing(fmt):
            continue
        if fmt == "engine" and env.resolve_device("auto") == "cpu":
            continue
        found.append((order.index(fmt), p.name, p))
    return min(found)[2] if found else None


def resolve_yolo_weights(
    weights: str, models: ModelsConfig, download: bool = True
) -> tuple[Path | None, str]:
    """Find YOLO weights on disk or download official ones into the model cache.

    ``weights`` may be anything ultralytics loads: a ``.pt``, ``.onnx`` or ``.engine`` file, an OpenVINO
    export folder (``*_openvino_model``, or its ``.xml``), or a folder holding one such file. Looked up as
    given, then by name in the model cache (``<cache>/weights``), then as an export of the same model there
    (``yolov8n_int8_openvino_model/`` for ``yolov8n.pt``, see :func:`cached_export`), else downloaded there.
    Returns ``(path, "")`` or ``(None, reason)``. Never hangs offline: the download is skipped at once when
    ``models.offline`` (or not ``download``), and a failed name lookup fails at once.
    """
    given = Path(weights).expanduser()
    if given.exists():
        return yolo_model_path(given), ""
    folder = env.cache_dir(models.cache_dir) / "weights"
    cached = folder / given.name
    if cached.exists():
        return yolo_model_path(cached), ""
    if given.parent != Path("."):
        return None, f"{given} not found"
    export = cached_export(folder, given.name[: -len(given.suffix)] if given.suffix else given.name)
    if export is not None:
        return export, ""
    if not download or models.offline:
        return None, f"{given.name} is not in {folder} and downloads are off (offline)"
    _prepare_ultralytics(models)
    try:
        from ultralytics.utils.downloads import attempt_download_asset

        path = Path(attempt_download_asset(str(cached)))
    except Exception as exc:  # ultralytics raises ConnectionError and others when the host is unreachable
        return None, f"download of {given.name} failed: {type(exc).__name__}"
    return (path, "") if path.is_file() else (None, f"download of {given.name} failed")


@functools.lru_cache(maxsize=4)
def _load_yolo(path: str, models: ModelsConfig):
    """The ultralytics model at ``path`` and its class names ``{index: name}``, or one line of InputError."""
    fmt = yolo_format(Path(path))
    if fmt is None and Path(path).exists():
        raise InputError(
            f"{path}: not YOLO weights (expected a .pt, .onnx or .engine file or an *_openvino_model folder)"
        )
    if fmt == "openvino" and not any(Path(path).glob("*.xml")):
        raise InputError(f"{path}: an OpenVINO export folder without its .xml model")
    missing = yolo_runtime_missing(fmt)
    if missing:
        raise InputError(f"{path}: {missing}")
    _prepare_ultralytics(models)
    from ultralytics import YOLO

    try:
        model = YOLO(path, task="detect")
        names = dict(getattr(model, "names", {}) or {})  # exports load here: a broken file fails in one line
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise InputError(f"{path}: not a loadable YOLO model ({type(exc).__name__}: {first})") from None
    return model, names


def _export_imgsz(path: Path) -> int | None:
    """The input size a fixed-shape OpenVINO export was made for (its ``metadata.yaml``: ``imgsz`` when
    ``dynamic`` is false), or None (dynamic, square sizes unknown, or not such an export)."""
    meta = path / "metadata.yaml" if path.is_dir() else None
    if meta is None or not meta.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(meta.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    size = data.get("imgsz")
    if data.get("dynamic") or not isinstance(size, list) or len(set(size)) != 1:
        return None
    return int(size[0])


class YoloDetector:
    """ultralytics YOLO restricted to the COCO ``person`` class, batched over frames (of any cameras).

    Weights in any format ultralytics loads (:func:`yolo_format`); a fixed-shape OpenVINO export runs at the
    input size it was exported for, whatever ``imgsz`` says.
    """

    name = "yolo"

    def __init__(self, cfg: DetectConfig, models: ModelsConfig = ModelsConfig()):
        self.weights = yolo_model_path(Path(cfg.weights))
        self.format = yolo_format(self.weights)
        self.device = env.resolve_device(cfg.device)
        if self.format == "engine" and self.device == "cpu":
            raise InputError(f"{self.weights}: a TensorRT engine needs a CUDA GPU (detect.device is cpu)")
        if self.format == "openvino":
            self.device = "cpu"  # ultralytics runs OpenVINO on the CPU for every torch device
        fixed = _export_imgsz(self.weights)
        if fixed is not None and fixed != cfg.imgsz:
            _warn_once(f"{self.weights}: a fixed-shape export for imgsz {fixed}; running at {fixed}")
            cfg = dataclasses.replace(cfg, imgsz=fixed)
        self.cfg = cfg
        self.model, names = _load_yolo(str(self.weights), models)
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
            "format": self.format,
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
    closing to join body parts, then connected blobs, on frames resized to at most ``cfg.max_pixels``
    (kernel sizes are given for frames 360 rows high and scale with the working height; the background
    sample is read at that size too: a 4K camera's detector holds about 220 MB at its peak).

    MOG2 learns anyone who stands still into its background within seconds; so a second, slow *reference*
    background (seeded with the median of frames sampled over the video, updated only where MOG2 sees
    background and no person was found in the previous frame) keeps pixels near the previous frame's people,
    and near people no box has continued for up to ``cfg.lost_seconds``, foreground while they differ from it
    by more than ``cfg.still_threshold`` (and are not a shadow: darker with the same chromaticity).

    A :class:`PerspectiveModel` learned from isolated upright blobs says how tall one person is at each
    image row: blobs much taller than that (one person behind another) are cut into a near person at the
    bottom and a far one above, blobs as wide as several people are split at their emptiest columns, a blob
    that holds more of the previous frame's people than that found is split among them, and boxes much
    shorter than a person standing there (``cfg.min_person_fraction``) are dropped. Boxes are filtered by
    size and aspect ratio; scores grow with how solidly the box is filled.
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
        self.perspective = PerspectiveModel()
        self.frames_seen = 0
        # The median of the sampled frames, at whatever size they were sampled; resized to the working size
        # on the first frame, when that size is known.
        self._median = np.median(np.stack(background), axis=0).astype(np.uint8) if len(background) else None
        self.scale: float | None = None  # working size / frame size, set on the first frame
        self._reference: np.ndarray | None = None  # (h, w, 3) float32 slow background
        self._previous: np.ndarray = np.zeros((0, 4), np.int32)  # last frame's boxes, working pixels
        self._lost: list[tuple[list[int], float]] = []  # (box, time last seen) of people no box continues
        self._clock = 0.0
        self._last_time: float | None = None

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self._one(f.image, f.time) for f in frames]

    def _setup(self, image: np.ndarray) -> None:
        """Fix the working size from the first frame; seed both background models with the median."""
        cfg = self.cfg
        h, w = image.shape[:2]
        self.scale = min(cfg.scale, math.sqrt(cfg.max_pixels / float(h * w)))
        self.size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        unit = self.size[1] / 360.0
        ok, ck = max(1, round(cfg.open_kernel * unit)), max(1, round(cfg.close_kernel * unit))
        self.open_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (ok, ok))
        self.close_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (ck, ck * 2 + 1))
        if self._median is not None:
            median = cv2.resize(self._median, self.size, interpolation=cv2.INTER_AREA)
            for _ in range(cfg.warmup_frames):
                self.subtractor.apply(median, learningRate=-1)
            self.frames_seen = cfg.warmup_frames
            self._reference = median.astype(np.float32)
            self._median = None

    def _resize(self, image: np.ndarray) -> np.ndarray:
        if (image.shape[1], image.shape[0]) == self.size:
            return image
        return cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)

    def foreground(self, image: np.ndarray, time: float | None = None) -> np.ndarray:
        """The cleaned foreground mask (uint8 0/255) of the next frame, at the working size; updates both
        background models."""
        if self.scale is None:
            self._setup(image)
        small = self._resize(image)
        mask = self.subtractor.apply(small)
        fg = np.where(mask > 200, 255, 0).astype(np.uint8)
        if self._reference is None:
            self._reference = small.astype(np.float32)
        else:
            near = self._near_people(fg.shape)
            quiet = np.where(mask == 0, 255, 0).astype(np.uint8)
            if near:
                self._still(small, near, fg)
                for x1, y1, x2, y2 in near:
                    quiet[y1:y2, x1:x2] = 0
            dt = 0.1 if time is None or self._last_time is None else max(time - self._last_time, 1e-3)
            cv2.accumulateWeighted(small, self._reference, min(1.0, dt / self.cfg.reference_seconds), quiet)
        self._last_time = time
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self.open_k)
        return cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self.close_k)

    def _remember_lost(self, now: np.ndarray, time: float | None) -> None:
        """Keep the previous frame's boxes that no box of this frame continues (IoU < 0.3) for
        ``cfg.lost_seconds``: a person who stops and whose blob breaks up for a frame (an occluder in front,
        MOG2 learning them) is still looked for against the reference background where they were."""
        if self.cfg.lost_seconds <= 0:
            return
        clock = self._clock = (self._clock + 0.1) if time is None else float(time)
        kept = [(box, t) for box, t in self._lost if clock - t <= self.cfg.lost_seconds]
        kept += [(box, clock) for box in self._previous.tolist()]
        if len(now) and kept:
            overlap = iou_matrix(np.asarray([box for box, _ in kept], np.float32), now.astype(np.float32))
            kept = [item for item, o in zip(kept, overlap.max(axis=1)) if o < 0.3]
        self._lost = kept

    def _near_people(self, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
        """The previous frame's boxes and the recently lost ones (:meth:`_remember_lost`) grown by a tenth of
        their size and clipped to the frame (working pixels ``x1, y1, x2, y2``)."""
        h, w = shape
        out = []
        for x1, y1, x2, y2 in self._previous.tolist() + [box for box, _ in self._lost]:
            mx, my = (x2 - x1) // 10 + 1, (y2 - y1) // 10 + 1
            out.append((max(x1 - mx, 0), max(y1 - my, 0), min(x2 + mx, w), min(y2 + my, h)))
        return out

    def _still(self, small: np.ndarray, near: list[tuple[int, int, int, int]], fg: np.ndarray) -> np.ndarray:
        """``fg`` (modified) with the pixels inside the ``near`` boxes that differ from the reference
        background by more than ``cfg.still_threshold`` (largest channel difference) and are not a shadow of
        it (a shadow is 40-90 % as bright with the same chromaticity) set to 255."""
        for x1, y1, x2, y2 in near:
            img = small[y1:y2, x1:x2].astype(np.float32)
            ref = self._reference[y1:y2, x1:x2]
            differs = np.abs(img - ref).max(axis=2) > self.cfg.still_threshold
            bright_i, bright_r = img.sum(axis=2) + 1.0, ref.sum(axis=2) + 1.0
            ratio = bright_i / bright_r
            chroma = np.abs(img / bright_i[..., None] - ref / bright_r[..., None]).max(axis=2)
            keep = differs & ~((ratio > 0.4) & (ratio < 0.9) & (chroma < 0.04))
            fg[y1:y2, x1:x2][keep] = 255
        return fg

    def _one(self, image: np.ndarray, time: float | None = None) -> Detections:
        cfg = self.cfg
        fg = self.foreground(image, time)
        self.frames_seen += 1
        if self.frames_seen <= cfg.warmup_frames // 2:
            return Detections.empty()
        h, w = fg.shape
        _, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        boxes, scores = [], []
        for k, (x, y, bw, bh, area) in enumerate(stats[1:], start=1):
            if bh < cfg.min_height * h or area < cfg.min_area * h * w:
                continue
            inside = x > 1 and y > 1 and x + bw < w - 1 and y + bh < h - 1
            if inside and 2.3 <= bh / bw <= 4.0 and area > 0.35 * bw * bh:
                self.perspective.add(y + bh, bh)
            people = self._people_in_blob(fg, x, y, bw, bh)
            people = self._split_by_previous(labels[y : y + bh, x : x + bw] == k, x, y, people)
            for x1, y1, x2, y2 in people:
                if not cfg.aspect_min * 0.6 <= (y2 - y1) / max(x2 - x1, 1) <= cfg.aspect_max:
                    continue
                one = self.perspective.height_at(y2)
                if one is not None and y2 - y1 < cfg.min_person_fraction * one and y1 > 1 and y2 < h - 1:
                    continue  # much shorter than a person standing there: a part, noise or a shadow
                fill = float(fg[y1:y2, x1:x2].mean() / 255.0)
                boxes.append([x1, y1, x2, y2])
                scores.append(np.clip(0.35 + fill, 0.0, 0.99))
        now = np.asarray(boxes, np.int32).reshape(-1, 4)
        self._remember_lost(now, time)
        self._previous = now
        if not boxes:
            return Detections.empty()
        return Detections(np.asarray(boxes, np.float32) / self.scale, np.asarray(scores, np.float32))

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

    def _split_by_previous(
        self, blob: np.ndarray, x: int, y: int, people: list[tuple[int, int, int, int]]
    ) -> list[tuple[int, int, int, int]]:
        """People who were apart in the previous frame and merge into one blob now (walking together,
        crossing): when the blob holds more previous boxes (most of each box inside the blob's box) than the
        size-based split found, and is too big for one person, each blob pixel goes to the nearest previous
        box (distances in box widths and heights) and each group's bounding box is a person.

        ``blob`` (bh, bw) bool is the blob's own pixels, at ``x, y``; returns ``people`` unchanged otherwise.
        """
        prev = self._previous
        if len(prev) < 2:
            return people
        bh, bw = blob.shape
        ix1, iy1 = np.maximum(prev[:, 0], x), np.maximum(prev[:, 1], y)
        ix2, iy2 = np.minimum(prev[:, 2], x + bw), np.minimum(prev[:, 3], y + bh)
        area = np.maximum((prev[:, 2] - prev[:, 0]) * (prev[:, 3] - prev[:, 1]), 1)
        inner = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None) / area
        seeds = prev[inner >= 0.6].astype(np.float32)
        if len(seeds) <= len(people):
            return people
        one = self.perspective.height_at(y + bh)
        width = one / 2.6 if one is not None else float(np.median(seeds[:, 2] - seeds[:, 0]))
        height = one if one is not None else float(np.median(seeds[:, 3] - seeds[:, 1]))
        if bw < 1.3 * width and bh < 1.25 * height:
            return people  # fits one person: the previous frame's boxes were a false split
        ys, xs = np.nonzero(blob)
        cx, cy = (seeds[:, 0] + seeds[:, 2]) / 2, (seeds[:, 1] + seeds[:, 3]) / 2
        sw, sh = seeds[:, 2] - seeds[:, 0] + 1, seeds[:, 3] - seeds[:, 1] + 1
        d = ((xs[:, None] + x - cx) / sw) ** 2 + ((ys[:, None] + y - cy) / sh) ** 2
        nearest = d.argmin(axis=1)
        out = []
        for j in range(len(seeds)):
            mine = nearest == j
            if mine.sum() < 0.15 * sw[j] * sh[j]:
                continue
            px, py = xs[mine] + x, ys[mine] + y
            out.append((int(px.min()), int(py.min()), int(px.max()) + 1, int(py.max()) + 1))
        return out if len(out) > len(people) else people

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
