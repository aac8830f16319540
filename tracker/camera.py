"""The camera stage: one camera (or one time chunk of it) -> tracklets with crops and appearance features.

A :class:`Piece` is a unit of camera-stage work: a camera's frames (``FrameSource``, windowed to a time chunk)
and its detection file if it has one. :func:`process_pieces` runs one or more pieces in this process, reading
them round-robin: every round takes up to ``max(1, detect.batch // pieces)`` frames of each piece, sends
frames of pieces whose detectors share a ``batch_group`` to one detector call (several cameras on one GPU at
full batches), updates each piece's tracker, and at the end embeds the crops of all pieces' tracklets in
batches of ``reid.batch_size``. :func:`assemble` turns a camera's piece results into its
:class:`CameraResult`: chunks stitched (:mod:`tracker.chunking`), each tracklet's embedding the
quality-weighted mean of its crops' features.

The scheduler (:mod:`tracker.executor`) decides which pieces run together and where; it knows nothing of what
happens inside them.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tracker.chunking import WHOLE, Chunk, ChunkTracks, stitch
from tracker.config import PipelineConfig, ReidConfig
from tracker.detect import Detector, build_detector
from tracker.errors import InputError
from tracker.geometry import crop_box
from tracker.reid import Embedder, build_embedder, tracklet_embedding
from tracker.reid.histogram import HistogramEmbedder
from tracker.track import CameraTracker, max_misses
from tracker.types import CameraInfo, Detections, Frame, Tracklet
from tracker.video import FrameSource

READ_THREADS = 8  # decoder threads of a worker reading several pieces


@dataclass
class CameraResult:
    """One camera's stage result: what it is, its tracklets (embeddings set), the detector used, timings."""

    info: CameraInfo
    tracklets: list[Tracklet]
    detector: dict
    timings: dict[str, float] = field(default_factory=dict)
    cached: bool = False  # taken from the run's stage cache (tracker.cache) instead of computed


@dataclass
class Piece:
    """One piece of camera-stage work: camera ``camera`` (its index in the run), frames of ``chunk``.

    ``source`` is the camera's ``FrameSource`` windowed to the chunk; ``detections`` its MOT detection file
    (replacing the detector) or None.
    """

    camera: int
    source: FrameSource
    chunk: Chunk
    detections: str | None = None


@dataclass
class PieceResult:
    """What processing a piece gives: tracklets with crop features, and how it went.

    ``frames_owned``: frames of the chunk's own range processed (the camera's ``frames_processed`` is their
    sum); ``pid`` / ``peak_rss_mb``: set by the executor (the worker process and its peak resident memory).
    """

    camera: int
    tracks: ChunkTracks
    detector: dict
    timings: dict[str, float]
    frames_owned: int
    pid: int = 0
    peak_rss_mb: float = 0.0


@dataclass
class _State:
    """A piece being tracked: its frame stream, detector, tracker and tallies."""

    piece: Piece
    frames: Iterator[Frame]
    detector: Detector
    tracker: CameraTracker
    timings: dict[str, float] = field(
        default_factory=lambda: {"decode": 0.0, "detect": 0.0, "track": 0.0, "embed": 0.0}
    )
    batch: list[Frame] = field(default_factory=list)  # this round's frames
    dets: list[Detections] = field(default_factory=list)  # this round's detections, one per frame
    frames_owned: int = 0
    done: bool = False


def process_pieces(
    pieces: Sequence[Piece],
    cfg: PipelineConfig,
    embedder: Embedder | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> list[PieceResult]:
    """Detect, track and embed ``pieces`` in this process, reading them round-robin (one piece: in order).

    ``cfg`` is a resolved config (no ``auto`` detector). With ``track.appearance_weight > 0`` and an
    ``embedder`` each round's detection crops are embedded in one batch for the trackers, by the histogram
    descriptor or by ``embedder`` (``track.appearance``). ``on_frames(n)`` is called after each round
    with the number of frames read. Returns one result per piece, in order.
    """
    states = []
    for p in pieces:
        src = p.source
        det = build_detector(cfg.detect, cfg.models, src, p.detections)
        tracker = CameraTracker(cfg.track, src.info.fps / src.stride, src.camera)
        states.append(_State(p, iter(src), det, tracker))
    appearance = _tracking_appearance(cfg, embedder)
    per_round = max(1, cfg.detect.batch // max(1, len(states)))
    reader = ThreadPoolExecutor(min(len(states), READ_THREADS)) if len(states) > 1 else None
    try:
        while active := [s for s in states if not s.done]:
            _read_round(active, per_round, reader)
            read = sum(len(s.batch) for s in active)
            _detect_round(active)
            _track_round(active, appearance)
            if on_frames is not None:
                on_frames(read)
    finally:
        if reader is not None:
            reader.shutdown()
    results = []
    for s in states:
        t = time.perf_counter()
        tracklets = s.tracker.finish()
        s.timings["track"] += time.perf_counter() - t
        results.append(
            PieceResult(
                s.piece.camera,
                ChunkTracks(s.piece.chunk, tracklets),
                s.detector.info(),
                s.timings,
                s.frames_owned,
            )
        )
    if embedder is not None:
        _embed_crops(results, embedder, cfg.reid.batch_size)
    return results


def _tracking_appearance(cfg: PipelineConfig, embedder: Embedder | None) -> Embedder | None:
    """What the trackers compare detections with (``track.appearance``): the offline histogram or the run's
    embedder; None when ``track.appearance_weight`` is 0 or the run has no appearance (``reid: none``)."""
    if cfg.track.appearance_weight <= 0 or embedder is None:
        return None
    return HistogramEmbedder() if cfg.track.appearance == "histogram" else embedder


def process_unit(pieces: Sequence[Piece], cfg: PipelineConfig, with_embedder: bool) -> list[PieceResult]:
    """:func:`process_pieces` with this process's embedder for ``cfg.reid`` (built once per process): what a
    worker process or Ray task runs."""
    return process_pieces(pieces, cfg, _process_embedder(cfg.reid, cfg.models) if with_embedder else None)


@functools.lru_cache(maxsize=2)
def _process_embedder(reid: ReidConfig, models) -> Embedder | None:
    return build_embedder(reid, models)


def _take(state: _State, count: int) -> None:
    t = time.perf_counter()
    state.batch = list(itertools.islice(state.frames, count))
    state.done = len(state.batch) < count
    state.frames_owned += sum(f.index >= state.piece.chunk.own_start for f in state.batch)
    state.timings["decode"] += time.perf_counter() - t


def _read_round(states: list[_State], count: int, reader: ThreadPoolExecutor | None) -> None:
    """Read the next ``count`` frames of every piece (in threads: OpenCV decodes without holding the GIL)."""
    if reader is None:
        for s in states:
            _take(s, count)
    else:
        list(reader.map(lambda s: _take(s, count), states))


def _detect_round(states: list[_State]) -> None:
    """Set ``state.dets`` for each frame of the round: one detector call per batch group (or per piece for a
    detector with per-camera state)."""
    groups: dict[object, list[_State]] = {}
    for s in states:
        key = ("piece", id(s)) if s.detector.batch_group is None else s.detector.batch_group
        groups.setdefault(key, []).append(s)
    for members in groups.values():
        frames = [f for s in members for f in s.batch]
        if not frames:
            for s in members:
                s.dets = []
            continue
        t = time.perf_counter()
        dets = members[0].detector.detect(frames)
        share = (time.perf_counter() - t) / len(frames)
        start = 0
        for s in members:
            s.dets = dets[start : start + len(s.batch)]
            start += len(s.batch)
            s.timings["detect"] += share * len(s.batch)


def _track_round(states: list[_State], embedder: Embedder | None) -> None:
    """Update every piece's tracker with the round's detections (and crop features: one batch for all)."""
    feats: list[list[np.ndarray | None]] = [[None] * len(s.batch) for s in states]
    if embedder is not None:
        t = time.perf_counter()
        crops, where = [], []
        for i, s in enumerate(states):
            for j, (f, d) in enumerate(zip(s.batch, s.dets)):
                if f.image is not None and len(d):
                    crops.extend(crop_box(f.image, b) for b in d.xyxy)
                    where.append((i, j, len(d)))
        out = embedder.embed(crops) if crops else None
        start = 0
        for i, j, n in where:
            feats[i][j] = out[start : start + n]
            start += n
        spent = time.perf_counter() - t
        for s in states:
            s.timings["embed"] += spent / len(states)
    for s, fs in zip(states, feats):
        t = time.perf_counter()
        for f, d, x in zip(s.batch, s.dets, fs):
            s.tracker.update(f.index, f.time, d, f.image, x)
        s.timings["track"] += time.perf_counter() - t
        s.batch, s.dets = [], []


def _embed_crops(results: list[PieceResult], embedder: Embedder, batch: int) -> None:
    """Set ``tracks.features`` of every result: its tracklets' crops embedded in batches across pieces."""
    images = [c.image for r in results for t in r.tracks.tracklets for c in t.crops]
    t0 = time.perf_counter()
    feats = [embedder.embed(images[k : k + batch]) for k in range(0, len(images), max(1, batch))]
    per_crop = (time.perf_counter() - t0) / max(1, len(images))
    flat = np.concatenate(feats) if feats else None
    start = 0
    for r in results:
        per: list[np.ndarray | None] = []
        for t in r.tracks.tracklets:
            per.append(flat[start : start + len(t.crops)] if t.crops else None)
            start += len(t.crops)
        r.tracks.features = per
        r.timings["embed"] += per_crop * sum(len(t.crops) for t in r.tracks.tracklets)


def assemble(source: FrameSource, parts: Sequence[PieceResult], cfg: PipelineConfig) -> CameraResult:
    """A camera's result from its pieces' results (one per chunk, any order): chunks stitched, tracklet
    embeddings set, frames and timings summed. InputError when no frame of the camera could be decoded."""
    parts = sorted(parts, key=lambda p: p.tracks.chunk.start)
    fps = source.info.fps / source.stride
    tc = cfg.track
    tracks = stitch(
        [p.tracks for p in parts],
        tc.max_crops,
        tc.min_length,
        max_misses(tc, fps),
        source.stride,
        tc.interpolate,
    )
    for t, feats in zip(tracks.tracklets, tracks.features):
        if feats is not None and len(feats):
            t.embedding = tracklet_embedding(feats, np.array([c.quality for c in t.crops]))
    frames = sum(p.frames_owned for p in parts)
    if frames == 0:
        raise InputError(f"{source.info.source}: no frames could be decoded")
    timings: dict[str, float] = {}
    for p in parts:
        for k, v in p.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    info = dataclasses.replace(source.info, frames_processed=frames)
    return CameraResult(info, tracks.tracklets, parts[0].detector, timings)


def process_camera(
    source: FrameSource, cfg: PipelineConfig, detections: str | None = None, embedder: Embedder | None = None
) -> CameraResult:
    """One whole camera through the camera stage in this process (no cache, no chunks, no scheduler).

    ``cfg`` is a resolved config (:func:`tracker.pipeline.resolve_config`); ``detections``: the camera's MOT
    detection file, replacing the detector."""
    return assemble(source, process_pieces([Piece(0, source, WHOLE, detections)], cfg, embedder), cfg)
