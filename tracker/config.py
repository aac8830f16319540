"""Typed configuration: frozen dataclasses per stage, read from YAML at the edge.

A YAML file (``configs/*.yaml``) has one section per stage. Every key is optional (defaults are the
dataclass defaults); an unknown key is an :class:`~tracker.errors.InputError` naming the file and key.
CLI flags override the file through :func:`override`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from tracker.associate_config import AssociateConfig
from tracker.errors import InputError
from tracker.executor import ExecConfig
from tracker.reid.config import ReidConfig


@dataclass(frozen=True)
class VideoConfig:
    """How frames are read: every ``stride``-th frame, shifted by per-camera ``offsets`` (seconds)."""

    stride: int = 1
    offsets: tuple[float, ...] = ()
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class MotionConfig:
    """Background-subtraction detector for static cameras (OpenCV MOG2)."""

    scale: float = 1.0  # background subtraction runs on frames resized by this factor (0.5: ~2x faster, less exact)
    history: int = 300
    var_threshold: float = 40.0
    warmup_frames: int = 30
    min_area: float = 0.0006  # fraction of the frame area
    min_height: float = 0.06  # fraction of the frame height
    aspect_min: float = 1.0  # height / width
    aspect_max: float = 5.0
    open_kernel: int = 3
    close_kernel: int = 9


@dataclass(frozen=True)
class DetectConfig:
    """Person detection. ``detector`` is ``auto``, ``yolo``, ``motion`` or ``hog``."""

    detector: str = "auto"
    weights: str = "yolov8n.pt"
    imgsz: int = 640
    conf: float = 0.25
    iou: float = 0.6
    batch: int = 8
    device: str = "auto"
    half: bool = True
    motion: MotionConfig = field(default_factory=MotionConfig)


@dataclass(frozen=True)
class TrackConfig:
    """Per-camera tracker (Kalman + Hungarian, two-stage as ByteTrack)."""

    high_thresh: float = 0.5  # detections at or above this start tracks and match first
    low_thresh: float = 0.1  # detections below this are dropped
    new_track_thresh: float = 0.6
    match_iou: float = 0.2  # minimum IoU for the first (high-score) association
    low_match_iou: float = 0.5  # minimum IoU for the second (low-score) association
    min_hits: int = 3  # a track is reported once it has this many matched detections
    max_age: float = 1.5  # seconds without a match before a track dies
    min_length: int = 5  # tracks shorter than this (in frames) are dropped at the end
    interpolate: bool = True  # fill gaps of up to max_age linearly in the finished tracklets
    appearance_weight: float = 0.0  # weight of the appearance cost when embeddings are available
    max_crops: int = 8
    min_crop_height: int = 24


@dataclass(frozen=True)
class OutputConfig:
    annotated_video: bool = True
    video_codec: str = "h264"


@dataclass(frozen=True)
class PipelineConfig:
    video: VideoConfig = field(default_factory=VideoConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    reid: ReidConfig = field(default_factory=ReidConfig)
    associate: AssociateConfig = field(default_factory=AssociateConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    execution: ExecConfig = field(default_factory=ExecConfig)


def from_dict(cls: type, data: Mapping[str, Any] | None, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, recursively; unknown keys and wrong types raise InputError."""
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise InputError(f"{where}: unknown key '{key}' (known keys: {', '.join(sorted(names))})")
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()})


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise InputError(f"{where}: expected true or false, got {value!r}")
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    raise InputError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def load_config(path: str | Path | None) -> PipelineConfig:
    """Read a YAML config (or the defaults when ``path`` is None)."""
    if path is None:
        return PipelineConfig()
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise InputError(f"{p}: not valid YAML{line}") from None
    return from_dict(PipelineConfig, data, str(p))


def override(cfg: Any, **changes: Any) -> Any:
    """Return ``cfg`` with dotted-path fields replaced, skipping ``None`` values (unset CLI flags).

    ``override(cfg, **{"detect.detector": "motion"})``
    """
    for dotted, value in changes.items():
        if value is None:
            continue
        head, _, rest = dotted.partition(".")
        if rest:
            cfg = dataclasses.replace(cfg, **{head: override(getattr(cfg, head), **{rest: value})})
        else:
            cfg = dataclasses.replace(cfg, **{head: value})
    return cfg


def to_dict(cfg: Any) -> dict:
    """Plain-data form of a config, for run.json."""
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    """The config as YAML, each section headed by the first line of its dataclass docstring.

    ``configs/default.yaml`` is ``dump_yaml(PipelineConfig())``; ``track-cameras --print-config`` prints
    the effective config of a command line.
    """
    lines = ["# multicam-tracker configuration. Every key is optional; unknown keys are errors.",
             "# Generated by `track-cameras --print-config`; command-line flags override these values."]
    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        doc = (type(section).__doc__ or "").strip().splitlines()
        lines.append("")
        if doc:
            lines.append(f"# {doc[0]}")
        body = yaml.safe_dump({f.name: _plain(section)}, sort_keys=False, default_flow_style=False)
        lines.extend(body.rstrip().splitlines())
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value
