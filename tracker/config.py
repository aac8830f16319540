"""Typed configuration: one frozen dataclass per stage, read from YAML at the edge. A leaf module.

A YAML file (``configs/*.yaml``) has one section per stage. Every key is optional (defaults are the dataclass
defaults); an unknown key, a wrong type or a value out of range is an :class:`~tracker.errors.InputError`
naming the file and the key. Every section checks its own values in ``__post_init__`` (one style:
``section.key: must be ..., got ...``), so a config that exists is valid, however it was made (file,
command-line override, a library call). Command-line flags are overrides of this config (:func:`override`),
the one route by which settings reach the stages. The pipeline *resolves* a config once (``auto`` detector,
embedder and devices made concrete, see :func:`tracker.pipeline.resolve_config`); workers, the stage cache key
and run.json all use the resolved config.

This module imports nothing from the stages; the stages import their section from here.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from tracker.env import valid_device
from tracker.errors import InputError
from tracker.fsutil import check_name

DETECTORS = ("auto", "yolo", "motion", "hog")
EMBEDDERS = ("auto", "mgn", "histogram", "onnx", "openvino", "none")
VARIANTS = ("fastreid", "fastreid-v1", "paper")  # MGN layouts (see tracker.reid.mgn)
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
INTERPOLATIONS = ("bicubic", "bilinear")
EXECUTORS = ("local", "ray")
APPEARANCE_MODES = ("adaptive", "scaled")
REENTRY_MODES = ("auto", "person", "visit")
FASTREID_MGN_URL = "https://github.com/JDAI-CV/fast-reid/releases/download/v0.1.1/market_mgn_R50-ibn.pth"


class _Checked:
    """Range checks for a section's ``__post_init__``; errors read ``<SECTION>.<key>: must be ..., got
    ...``."""

    SECTION: ClassVar[str] = ""

    def _fail(self, name: str, want: str) -> None:
        raise InputError(f"{self.SECTION}.{name}: must be {want}, got {getattr(self, name)!r}")

    def _number(
        self,
        name: str,
        lo: float | None = None,
        hi: float | None = None,
        *,
        lo_open: bool = False,
        hi_open: bool = False,
        inf_ok: bool = False,
    ) -> None:
        """``getattr(self, name)`` is a number (not NaN, finite unless ``inf_ok``) in the given range."""
        v = getattr(self, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            self._fail(name, "a number")
        if math.isinf(v) and not inf_ok:
            self._fail(name, "a finite number")
        low = lo is not None and (v <= lo if lo_open else v < lo)
        high = hi is not None and (v >= hi if hi_open else v > hi)
        if low or high:
            left = "" if lo is None else f"{'>' if lo_open else '>='} {lo}"
            right = "" if hi is None else f"{'<' if hi_open else '<='} {hi}"
            self._fail(name, " and ".join(x for x in (left, right) if x))

    def _bool(self, name: str) -> None:
        if not isinstance(getattr(self, name), bool):
            self._fail(name, "true or false")

    def _choice(self, name: str, options: tuple[str, ...]) -> None:
        if getattr(self, name) not in options:
            self._fail(name, "one of " + ", ".join(options))

    def _device(self, name: str) -> None:
        if not valid_device(str(getattr(self, name))):
            self._fail(name, "auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class VideoConfig(_Checked):
    """How frames are read: every ``stride``-th frame; per-camera ``names`` and ``offsets`` (seconds on the
    common clock), one per input when given (default: file stems, 0).

    ``strict``: a camera that gives fewer frames than it announces (a truncated video, undecodable frames) is
    an error instead of a warning (``--strict``).
    """

    SECTION: ClassVar[str] = "video"
    stride: int = 1
    offsets: tuple[float, ...] = ()
    names: tuple[str, ...] = ()
    strict: bool = False

    def __post_init__(self) -> None:
        self._number("stride", 1)
        if not isinstance(self.strict, bool):
            self._fail("strict", "true or false")
        if not all(math.isfinite(v) and abs(v) < 1e9 for v in self.offsets):
            self._fail("offsets", "finite seconds (below 1e9 in size)")
        for name in self.names:
            check_name(name, "video.names")
        if len(set(self.names)) != len(self.names):
            self._fail("names", "distinct")


@dataclass(frozen=True)
class MotionConfig(_Checked):
    """Background-subtraction detector for static cameras (OpenCV MOG2)."""

    SECTION: ClassVar[str] = "detect.motion"
    scale: float = (
        1.0  # background subtraction runs on frames resized by this factor (0.5: ~2x faster, less exact)
    )
    max_pixels: int = 1280 * 720  # ... and on at most this many pixels (a 4K camera runs at 1280x720)
    history: int = 300
    var_threshold: float = 40.0
    warmup_frames: int = 30
    background_frames: int = 25  # frames spread over the video whose median seeds the background model
    min_area: float = 0.0006  # fraction of the frame area
    min_height: float = 0.06  # fraction of the frame height
    min_person_fraction: float = 0.5  # boxes shorter than this times a person's learned height there go
    aspect_min: float = 1.0  # height / width
    aspect_max: float = 5.0
    open_kernel: int = 3  # pixels at 360 rows (scaled with the working height), as close_kernel
    close_kernel: int = 9
    still_threshold: float = 30.0  # colour difference from the slow background that keeps people foreground
    reference_seconds: float = 10.0  # time constant of the slow background's update
    lost_seconds: float = 1.5  # a vanished person's box is still searched against the slow background

    def __post_init__(self) -> None:
        self._number("scale", 0, 1, lo_open=True)
        self._number("max_pixels", 4096)
        self._number("still_threshold", 0, 255, lo_open=True)
        self._number("reference_seconds", 0, lo_open=True)
        self._number("lost_seconds", 0)
        self._number("history", 1)
        self._number("var_threshold", 0, lo_open=True)
        for name in ("warmup_frames", "background_frames"):
            self._number(name, 0)
        for name in ("min_area", "min_height"):
            self._number(name, 0, 1, hi_open=True)
        self._number("min_person_fraction", 0, 1)
        self._number("aspect_min", 0, lo_open=True)
        self._number("aspect_max", self.aspect_min)
        for name in ("open_kernel", "close_kernel"):
            self._number(name, 1, 99)


@dataclass(frozen=True)
class DetectConfig(_Checked):
    """Person detection: ``detector`` is ``auto``, ``yolo``, ``motion`` or ``hog``; ``detections`` are MOT
    detection files, one per camera, that replace the detector (the MOTChallenge public-detection
    protocol)."""

    SECTION: ClassVar[str] = "detect"
    detector: str = "auto"
    weights: str = "yolov8n.pt"
    imgsz: int = 640
    conf: float = 0.1  # YOLO keeps boxes from this score: the tracker's second stage matches the low ones
    iou: float = 0.6
    batch: int = 8
    device: str = "auto"
    half: bool = True
    detections: tuple[str, ...] = ()
    motion: MotionConfig = field(default_factory=MotionConfig)

    def __post_init__(self) -> None:
        self._choice("detector", DETECTORS)
        if not self.weights:
            self._fail("weights", "a file or model name")
        self._number("imgsz", 32, 8192)
        self._number("conf", 0, 1)
        self._number("iou", 0, 1, lo_open=True)
        self._number("batch", 1, 4096)
        self._device("device")


@dataclass(frozen=True)
class TrackConfig(_Checked):
    """Per-camera tracker (Kalman + Hungarian, two-stage as ByteTrack)."""

    SECTION: ClassVar[str] = "track"
    # auto: the three thresholds below are quantiles of the run's scores when the detector's scores leave
    # [0, 1], and tracks start from the score at which detections are tracked tracked_rate_new of the time
    # (never below high_thresh; new_track_thresh until 400 detections are seen); fixed: as set
    thresholds: str = "auto"
    tracked_rate_new: float = 0.7
    high_thresh: float = 0.5  # detections at or above this match first (and may start tracks)
    low_thresh: float = 0.1  # detections below this are dropped
    new_track_thresh: float = 0.6  # unmatched detections at or above this start tracks
    match_iou: float = 0.2  # minimum IoU for the first (high-score) association
    low_match_iou: float = 0.7  # minimum IoU for the second (low-score) association at 30 fps (scaled by fps)
    min_hits: int = 3  # a track is reported once it has this many matched detections
    max_age: float = 2.5  # seconds without a match before a track dies
    min_length: int = 5  # tracks shorter than this (in frames) are dropped at the end
    interpolate: bool = True  # fill gaps of up to max_age linearly in the finished tracklets
    # weight of the appearance cost in frame-to-frame matching (0: boxes only), and what it compares:
    # histogram (the offline colour/texture descriptor of every detection, cheap enough for every frame)
    # or reid (the run's embedder on every detection: costly for a CNN on a CPU). Never with reid: none.
    appearance_weight: float = 0.3
    appearance: str = "histogram"
    max_crops: int = 8
    min_crop_height: int = 24

    def __post_init__(self) -> None:
        self._choice("thresholds", ("auto", "fixed"))
        self._choice("appearance", ("histogram", "reid"))
        self._number("tracked_rate_new", 0, 1)
        for name in ("high_thresh", "low_thresh", "new_track_thresh"):
            self._number(name)  # detector scores need not be in [0, 1] (raw public detections)
        self._number("high_thresh", self.low_thresh)
        for name in ("match_iou", "low_match_iou", "appearance_weight"):
            self._number(name, 0, 1)
        self._number("min_hits", 1)
        self._number("max_age", 0, lo_open=True)
        self._number("min_length", 1)
        self._number("max_crops", 0)
        self._number("min_crop_height", 1)


@dataclass(frozen=True)
class ReidConfig(_Checked):
    """Appearance embedder of person crops (``embedder``: auto, mgn, histogram, onnx, openvino or none).

    ``embedder``: ``auto`` (configured checkpoint, else the MGN-MobileNetV2 made by ``reid-train`` in the
    model cache, else fast-reid's public Market-1501 MGN from the model cache / its download, else the
    offline ``histogram`` descriptor with a warning), ``mgn`` (fail when no checkpoint can be had),
    ``histogram`` (offline colour/texture descriptor), ``onnx`` / ``openvino`` (the re-identification
    network in ``weights``, an ``.onnx`` file or an OpenVINO ``.xml``, see :mod:`tracker.reid.runtime`),
    ``none`` (no appearance).

    ``variant`` is the MGN layout used when a network is built from scratch (``reid-train``): ``fastreid``
    (fast-reid's R50-ibn MGN), ``fastreid-v1`` (the same in current fast-reid's parameter names) or
    ``paper`` (MGN as published). A checkpoint's own layout is recognised from its contents.
    ``url`` / ``sha256``: where ``auto`` downloads the checkpoint from, and the expected start of its
    sha256 (None: only the size is checked). ``flip``: test-time horizontal-flip averaging (None: the
    checkpoint's habit: on for ``paper``, off for fast-reid). ``threads``: CPU threads (0: every core
    this process may use, unless ``OMP_NUM_THREADS`` is set). ``interpolation``: ``bicubic`` (what the
    public models were trained with) or ``bilinear``.
    """

    SECTION: ClassVar[str] = "reid"
    embedder: str = "auto"
    weights: str | None = None
    variant: str = "fastreid"
    download: bool = True
    height: int = 384
    width: int = 128
    batch_size: int = 64
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (fp16 on CUDA, fp32 on CPU) | fp32 | fp16 | bf16
    compile: bool = False
    url: str = FASTREID_MGN_URL
    sha256: str | None = None
    flip: bool | None = None
    threads: int = 0
    channels_last: bool = True
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        self._choice("embedder", EMBEDDERS)
        self._choice("variant", VARIANTS)
        self._number("height", 48, 4096)
        self._number("width", 16, 4096)
        self._number("batch_size", 1, 65536)
        self._device("device")
        self._choice("precision", PRECISIONS)
        self._number("threads", 0, 1024)
        self._choice("interpolation", INTERPOLATIONS)


@dataclass(frozen=True)
class CameraLink(_Checked):
    """Topology between two cameras: whether their views overlap and the plausible transit time.

    Once any link is configured, camera pairs without a link are taken as not connected: their views do not
    overlap (seeing one person in both at once is impossible) and a direct transit between them costs the full
    ``transit_weight``.
    """

    SECTION: ClassVar[str] = "associate.links"
    a: str
    b: str
    overlap: bool = False
    min_transit: float = 0.0  # seconds
    max_transit: float = 60.0  # seconds

    def __post_init__(self) -> None:
        if self.a == self.b:
            raise InputError(f"associate.links: a link joins two different cameras, got '{self.a}' twice")
        self._number("min_transit", 0)
        self._number("max_transit", inf_ok=True)
        if self.max_transit < self.min_transit:
            raise InputError(
                f"associate.links ({self.a}, {self.b}): need min_transit <= max_transit, got "
                f"{self.min_transit} and {self.max_transit}"
            )


@dataclass(frozen=True)
class AssociateConfig(_Checked):
    """Constrained clustering of tracklets into global identities.

    Distances are on the scale of the appearance term, the cosine distance ``1 - cos`` of two tracklet
    embeddings (0 identical, 1 unrelated); the other terms are added to it (see ``tracker.association``), and
    two groups of tracklets are joined while their average-linkage distance is below ``threshold``.
    ``enabled``: false gives every tracklet its own identity. ``calibration``: a scene.json or a calibration
    file with per-camera ground-plane homographies (a scene.json's ``overlaps`` say which views overlap).
    """

    SECTION: ClassVar[str] = "associate"
    enabled: bool = True
    threshold: float = 0.6  # merge while the linkage distance is below this (learned on the sample scene)
    knn: int = 30  # appearance neighbours per tracklet in the sparse similarity graph
    max_gap: float = 120.0  # seconds: tracklets further apart in time get no edge (.inf: no limit)
    time_weight: float = 0.1  # added for a wait of max_gap (beyond a link's max_transit), in proportion
    transit_weight: float = 0.2  # quicker than the links' fastest route allows; full between unlinked cameras
    world_weight: float = 0.3  # ground term: -world_weight (same spot) .. +world_weight (world_gate apart)
    world_gate: float = 2.0  # metres: seen at the same time farther apart than this is a cannot-link
    max_speed: float = 2.0  # m/s: leaving one spot and appearing at another faster than this is penalised
    speed_weight: float = 0.3  # reached at twice max_speed
    sync_tolerance: float = 0.5  # seconds two non-overlapping cameras may both see one person (clock error)
    break_gap: float = 2.0  # seconds: a track starting this soon after another ended may continue it
    break_radius: float = 2.0  # box heights between the predicted and the actual position of a continuation
    continuity_weight: float = 0.2  # same-camera continuation: -continuity_weight .. +continuity_weight
    # scaled: cosine distance / appearance_scale; adaptive: evidence (log odds) from the run's own
    # appearance statistics (experimental: safer on look-alikes, but it under-uses strong embeddings)
    appearance: str = "scaled"
    evidence_full: float = 3.0  # adaptive: evidence (log10 odds) that alone makes a distance 0
    position_evidence: float = 2.0  # adaptive: evidence of two views agreeing on where someone stands
    continuity_evidence: float = 2.5  # adaptive: evidence of a track resuming where it was heading
    learn_network: bool = True  # learn which views overlap (their mapping) and how people move between them
    network_passes: int = 3  # associate -> learn the movements -> associate again, at most this many passes
    network_window: float = (
        60.0  # seconds: successions (one sighting after another) the movements are learned on
    )
    transit_evidence_max: float = 2.0  # adaptive: most evidence a typical transit time can give
    overlap_gate: float = 1.0  # box heights: seen at once in a learned overlap farther apart: a cannot-link
    cooccurrence_penalty: float = 0.3  # seen at once by two views the network found no overlap for
    appearance_scale: float | None = (
        None  # scaled: cosine distance counted as 1; None: median of cannot-links
    )
    missing_appearance: float = 0.7  # appearance term assumed when a tracklet has no embedding
    # a return into one camera on appearance alone (no continuation) costs up to reentry_weight, in proportion
    # to its false-match rate (the share of pairs proven different that look at least as alike) up to
    # reentry_rate: a weak descriptor cannot rejoin look-alikes, a strong one rejoins as before
    reentry_weight: float = 0.6
    reentry_rate: float = 0.05
    # ... unless another view kept them in sight: a tracklet of an overlapping view seen at the same place as
    # both and present from before the first ended until after the second began (then appearance decides)
    bridge_returns: bool = True
    # a person who leaves a view and comes back into it: person (one identity, appearance decides under the
    # rule above), visit (a new identity at each entry into a view, as MOTChallenge ground truth counts them;
    # only a continuation within break_gap joins two tracks of one camera), auto (visit for a run of one
    # camera, whose output is a MOT sequence; person for several)
    reentry: str = "auto"
    # appearance also joins what lies spread_k spreads (median - 5th percentile of the distances of pairs
    # proven different) below that median, however far in absolute terms: an embedder whose different people
    # are all about equally far apart (a strong one) is used fully; a weak one's wide spread leaves it unchanged
    spread_k: float = 2.0
    spread_rate: float = 0.002  # ... for pairs that look more alike than all but this share of those pairs
    # scaled: how strong this run's appearance is, measured on the run (the median, over tracklets, of how
    # far below the proven-different distances the nearest plausible other-camera tracklet lies, in spreads:
    # about 1 when that nearest one is only the tail of the different people, 2-3 when it is mostly the same
    # person). A strong run's appearance term is discounted so that the typical nearest candidate lies at
    # threshold / strong_margin, by at most strong_factor (fully from strength 2, none at 1); None: none
    strong_factor: float | None = 0.8
    strong_margin: float = 1.4
    search_dim: int = 512  # beyond exact_search_max: search in a PCA projection of this size, then re-rank
    exact_search_max: int = 500_000_000  # query x window pairs searched exactly in the full dimension
    calibration: str | None = None
    links: tuple[CameraLink, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("threshold", "world_gate", "break_radius", "max_speed", "evidence_full", "overlap_gate"):
            self._number(name, 0, lo_open=True)
        self._number("max_gap", 0, lo_open=True, inf_ok=True)
        for name in (
            "time_weight",
            "transit_weight",
            "world_weight",
            "speed_weight",
            "sync_tolerance",
            "break_gap",
            "continuity_weight",
            "missing_appearance",
            "reentry_weight",
            "spread_k",
        ):
            self._number(name, 0)
        self._number("reentry_rate", 0, 1, lo_open=True)
        self._number("spread_rate", 0, 1)
        self._choice("appearance", APPEARANCE_MODES)
        self._choice("reentry", REENTRY_MODES)
        if self.appearance_scale is not None:
            self._number("appearance_scale", 0, lo_open=True)
        if self.strong_factor is not None:
            self._number("strong_factor", 0, 1, lo_open=True)
        self._number("strong_margin", 0, lo_open=True)
        for name in ("knn", "search_dim", "exact_search_max", "network_passes"):
            self._number(name, 1)
        self._number("network_window", 0, lo_open=True)
        self._number("transit_evidence_max", 0)


@dataclass(frozen=True)
class OutputConfig(_Checked):
    """What a run writes besides the results store and its exports.

    ``discard_edits``: a run into a directory that holds corrections (merges, splits, labels, review
    answers) normally keeps them and re-applies them to the new results; true drops them (the old edit log is
    saved as ``discarded-edits.json``).
    """

    SECTION: ClassVar[str] = "output"
    annotated_video: bool = True
    discard_edits: bool = False

    def __post_init__(self) -> None:
        for name in ("annotated_video", "discard_edits"):
            self._bool(name)


@dataclass(frozen=True)
class ExecConfig(_Checked):
    """How the camera stage runs.

    ``executor``: ``local`` or ``ray``. ``workers``: parallel worker processes / Ray CPUs when Ray starts
    locally (0: ``min(work units, CPU cores)``). ``ray_address``: a running Ray cluster (None: start Ray
    here). ``chunk_seconds``: cut videos longer than about 1.5 times this into time chunks processed in
    parallel and stitched (0: whole videos). ``chunk_overlap``: seconds of lead-in each chunk shares with the
    previous one. ``batch_cameras``: pieces one worker reads round-robin with shared detector and embedder
    batches (set it to the number of cameras that share a GPU). ``gpus_per_task``: Ray ``num_gpus`` of a task
    (0: the cluster's GPUs spread over the tasks, at most 1 each). ``force``: recompute cameras found in the
    cache.
    """

    SECTION: ClassVar[str] = "execution"
    executor: str = "local"
    workers: int = 0
    ray_address: str | None = None
    chunk_seconds: float = 0.0
    chunk_overlap: float = 2.0
    batch_cameras: int = 1
    gpus_per_task: float = 0.0
    force: bool = False

    def __post_init__(self) -> None:
        self._choice("executor", EXECUTORS)
        self._number("workers", 0, 4096)
        self._number("chunk_seconds", 0)
        self._number("chunk_overlap", 0)
        if self.chunk_seconds:
            self._number("chunk_overlap", 0, self.chunk_seconds, lo_open=True, hi_open=True)
        self._number("batch_cameras", 1, 4096)
        self._number("gpus_per_task", 0, 1)


@dataclass(frozen=True)
class ModelsConfig(_Checked):
    """Where model files come from: ``offline`` never uses the network (no downloads; ultralytics is told so
    too); ``cache_dir`` is the model cache (None: ``$MULTICAM_TRACKER_HOME``, else
    ``~/.cache/multicam-tracker``)."""

    SECTION: ClassVar[str] = "models"
    offline: bool = False
    cache_dir: str | None = None


@dataclass(frozen=True)
class PipelineConfig:
    video: VideoConfig = field(default_factory=VideoConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    reid: ReidConfig = field(default_factory=ReidConfig)
    associate: AssociateConfig = field(default_factory=AssociateConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    execution: ExecConfig = field(default_factory=ExecConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)


def from_dict(cls: type, data: Mapping[str, Any] | None, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, recursively; unknown keys, wrong types and values out of range
    raise InputError prefixed with ``where`` (a file name, or a description of where the values came from)."""
    try:
        return _build(cls, data, "")
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _build(cls: type, data: Mapping[str, Any] | None, path: str) -> Any:
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise InputError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise InputError(
                f"{path or 'config'}: unknown key '{key}' (known keys: {', '.join(sorted(names))})"
            )
    return cls(**{k: _coerce(v, hints[k], f"{path}.{k}" if path else str(k)) for k, v in data.items()})


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
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
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise InputError(f"{p}: not valid YAML{line}") from None
    return from_dict(PipelineConfig, data, str(p))


def override(cfg: Any, **changes: Any) -> Any:
    """Return ``cfg`` with dotted-path fields replaced, skipping ``None`` values (unset CLI flags). The
    changed sections check themselves again (InputError when a value is out of range).

    ``override(cfg, **{"detect.detector": "motion"})``
    """
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in changes.items():
        if value is None:
            continue
        head, _, rest = dotted.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, inner in nested.items():  # a section's changes are applied together: checks see them all
        direct[head] = override(direct.get(head, getattr(cfg, head)), **inner)
    return dataclasses.replace(cfg, **direct) if direct else cfg


def to_dict(cfg: Any) -> dict:
    """Plain-data form of a config, for run.json."""
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    """The config as YAML, each section headed by the first line of its dataclass docstring.

    ``configs/default.yaml`` is ``dump_yaml(PipelineConfig())``; ``track-cameras --print-config`` prints
    the effective config of a command line.
    """
    lines = [
        "# multicam-tracker configuration. Every key is optional; unknown keys are errors.",
        "# Generated by `track-cameras --print-config`; command-line flags override these values.",
    ]
    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        lines.append("")
        lines.extend(
            f"# {line}"
            for line in textwrap.wrap(
                _first_sentence(type(section).__doc__ or ""), 106, break_on_hyphens=False
            )
        )
        body = yaml.safe_dump({f.name: _plain(section)}, sort_keys=False, default_flow_style=False)
        lines.extend(body.rstrip().splitlines())
    return "\n".join(lines) + "\n"


def _first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    head, dot, _ = paragraph.partition(". ")
    return head + "." if dot else paragraph


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value
