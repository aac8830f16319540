"""The data types passed between stages.

Conventions used everywhere in the package:

* Boxes are ``xyxy`` in pixels of the camera's own frame: ``x1, y1, x2, y2`` float32, ``x2 > x1``.
* Images and crops are ``uint8`` arrays of shape ``(H, W, 3)`` in OpenCV's BGR order.
* Frame numbers are 1-based, as in MOTChallenge files; times are seconds on the common clock
  (a camera's frame time plus its ``--offsets`` value).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from tracker.geometry import xywh_to_xyxy, xyxy_to_xywh


def _as(a, dtype, shape_tail: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=dtype)
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        want = "(N" + "".join(f", {s}" for s in shape_tail) + ")"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    return arr


@dataclass
class Detections:
    """Person detections in one frame (or a track's boxes), as parallel arrays.

    Attributes
    ----------
    xyxy : (N, 4) float32
        Boxes ``x1, y1, x2, y2`` in pixels.
    confidence : (N,) float32
        Detector score in [0, 1].
    tracker_id : (N,) int64
        Per-camera track id, ``-1`` for detections not (yet) assigned to a track.
    data : dict[str, ndarray]
        Extra per-detection columns (first axis N), e.g. ``"visibility"`` from ground truth.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    tracker_id: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = _as(self.xyxy, np.float32, (4,), "xyxy")
        n = len(self.xyxy)
        self.confidence = _as(self.confidence, np.float32, (), "confidence")
        if self.tracker_id is None:
            self.tracker_id = np.full(n, -1, dtype=np.int64)
        self.tracker_id = _as(self.tracker_id, np.int64, (), "tracker_id")
        for name, arr in [("confidence", self.confidence), ("tracker_id", self.tracker_id)]:
            if len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} rows, xyxy has {n}")
        for key, val in self.data.items():
            if len(val) != n:
                raise ValueError(f"data[{key!r}] has {len(val)} rows, xyxy has {n}")

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    @classmethod
    def from_xywh(cls, xywh: np.ndarray, confidence: np.ndarray, **kw) -> Detections:
        """Build from MOTChallenge-style ``x, y, w, h`` boxes (top-left corner, width, height)."""
        return cls(xywh_to_xyxy(np.asarray(xywh, np.float32)), confidence, **kw)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> Detections:
        """Select rows by int, slice, index array or boolean mask."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.tracker_id[index],
            {k: v[index] for k, v in self.data.items()},
        )

    @property
    def xywh(self) -> np.ndarray:
        """(N, 4) float32 boxes as ``x, y, w, h`` (MOTChallenge convention)."""
        return xyxy_to_xywh(self.xyxy)


@dataclass
class Frame:
    """One decoded frame of one camera.

    ``index`` is the 1-based frame number in the camera's own video (counting every decoded frame,
    also those skipped by ``--frame-stride``); ``time`` is seconds on the common clock.
    ``image`` is ``None`` when the source has detections but no pixels (a MOT sequence without img1/).
    """

    camera: str
    index: int
    time: float
    image: np.ndarray | None


@dataclass
class Crop:
    """A person image cut from a frame, kept for re-identification and for the review UI.

    ``quality`` in [0, 1] weighs the crop in the tracklet embedding: larger, more confident and less
    occluded crops weigh more.
    """

    frame: int
    box: np.ndarray  # (4,) float32 xyxy
    score: float
    quality: float
    image: np.ndarray  # (h, w, 3) uint8 BGR


@dataclass
class Tracklet:
    """One person's continuous track in one camera, the unit that re-identification and association see.

    Attributes
    ----------
    camera : str
        Camera name.
    track_id : int
        Per-camera track id (1-based), unique within the camera for this run.
    frames : (T,) int64
        1-based frame numbers, strictly increasing.
    times : (T,) float64
        Seconds on the common clock for each frame.
    boxes : (T, 4) float32
        ``xyxy`` boxes: the Kalman-filtered box after each matched detection (interpolated across gaps).
    scores : (T,) float32
        Detection confidence of each box; 0 on frames filled by interpolation.
    crops : list[Crop]
        At most ``track.max_crops`` crops sampled over the track (empty when there are no pixels).
    embedding : (D,) float32 or None
        L2-normalised appearance vector of the whole tracklet, set by the re-identification stage.
    global_id : int
        Cross-camera identity (1-based), ``-1`` until association runs.
    """

    camera: str
    track_id: int
    frames: np.ndarray
    times: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    crops: list[Crop] = field(default_factory=list)
    embedding: np.ndarray | None = None
    global_id: int = -1

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, np.int64)
        self.times = np.asarray(self.times, np.float64)
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float32)
        if not (len(self.frames) == len(self.times) == len(self.boxes) == len(self.scores)):
            raise ValueError("frames, times, boxes and scores must have the same length")

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def start_time(self) -> float:
        return float(self.times[0])

    @property
    def end_time(self) -> float:
        return float(self.times[-1])

    @property
    def key(self) -> tuple[str, int]:
        return (self.camera, self.track_id)

    def iter_rows(self) -> Iterator[tuple[int, np.ndarray, float]]:
        for f, b, s in zip(self.frames, self.boxes, self.scores):
            yield int(f), b, float(s)


@dataclass
class CameraInfo:
    """What we know about one camera's input; recorded in run.json and the results store."""

    name: str
    source: str
    width: int
    height: int
    fps: float
    offset: float = 0.0
    frames_total: int | None = None  # as reported by the container; None when unknown
    frames_processed: int = 0
    homography: np.ndarray | None = None  # (3, 3) ground plane (metres) -> image pixels, when calibrated
