"""Executors for the camera stage: detection, tracking and crop embedding of every camera, in parallel.

:func:`execute` is what the pipeline calls: it returns one ``CameraResult`` per camera (tracklets with their
embeddings set), taking finished cameras from the run's stage cache (:mod:`tracker.cache`) and computing the
rest with the executor ``execution.executor`` names:

* ``local`` (default): worker processes on this machine (``execution.workers``, default
  ``min(work units, CPU cores)``; one worker runs in the calling process, with no pool);
* ``ray``: Ray tasks on a cluster (``execution.ray_address``) or on a Ray started locally, each with a
  ``num_gpus`` fraction when the cluster has GPUs. Ray is an optional extra (``pip install
  multicam-tracker[ray]``).

Work is cut into *pieces* (a camera, or one time chunk of it: :mod:`tracker.chunking`), and pieces into
*units* of ``execution.batch_cameras`` pieces, one unit a task. A worker reads the pieces of its unit
round-robin and sends each round's frames of every piece to the detector as one batch when the detector has no
per-camera state (YOLO, HOG), and each round's crops as one embedding batch: several cameras share one GPU at
full batches. The motion detector keeps a background model per camera, so it runs per piece even then.

Crops are embedded inside the task (``reid`` embedder, per crop); a camera's chunks are stitched on the driver
and each tracklet's embedding is the quality-weighted mean of its crops' features, so association alone runs
on the driver. Every finished camera (and every finished chunk of a chunked camera) is written to the cache at
once, so a killed run loses only the work in flight. Worker processes of the local executor die with the
driver (Linux ``PR_SET_PDEATHSIG``); each reports its peak RSS, summed into ``peak_rss_total_mb``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tracker.errors import InputError

if TYPE_CHECKING:
    from tracker.chunking import Chunk, ChunkTracks
    from tracker.config import PipelineConfig
    from tracker.pipeline import CameraResult
    from tracker.video import FrameSource

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
STATELESS_DETECTORS = ("yolo", "hog")  # one instance can serve every camera, so one batch can mix cameras
BACKGROUND_SAMPLES = 25  # frames whose median seeds the motion detector (as the pipeline always did)
READ_THREADS = 8  # decoder threads of a worker reading several pieces
# Environment variables a worker needs from the driver (model cache, offline mode, ultralytics settings).
ENV_PREFIXES = ("MULTICAM_TRACKER_", "YOLO_")
RAY_HINT = "install it with `pip install multicam-tracker[ray]` (or `pip install 'ray[default]'`)"


@dataclass(frozen=True)
class ExecConfig:
    """How the camera stage runs (the ``execution:`` section of a config file).

    ``executor``: ``local`` or ``ray``. ``workers``: parallel worker processes / Ray CPUs when Ray starts
    locally (0: ``min(work units, CPU cores)``). ``ray_address``: a running Ray cluster (None: start Ray
    here). ``chunk_seconds``: cut videos longer than about 1.5 times this into time chunks processed in
    parallel and stitched (0: whole videos). ``chunk_overlap``: seconds of lead-in each chunk shares with the
    previous one. ``batch_cameras``: pieces one worker reads round-robin with shared detector and embedder
    batches (set it to the number of cameras that share a GPU). ``gpus_per_task``: Ray ``num_gpus`` of a task
    (0: the cluster's GPUs spread over the tasks, at most 1 each). ``force``: recompute cameras found in the
    cache.
    """

    executor: str = "local"
    workers: int = 0
    ray_address: str | None = None
    chunk_seconds: float = 0.0
    chunk_overlap: float = 2.0
    batch_cameras: int = 1
    gpus_per_task: float = 0.0
    force: bool = False


def validate(ex: ExecConfig) -> None:
    """InputError for values of the ``execution:`` section that cannot work."""
    if ex.executor not in EXECUTORS:
        raise InputError(f"execution.executor: {ex.executor!r} is not one of {', '.join(EXECUTORS)}")
    if ex.workers < 0:
        raise InputError(f"--workers: must be 0 (automatic) or more, got {ex.workers}")
    if ex.chunk_seconds < 0:
        raise InputError(f"--chunk-seconds: must be 0 (no chunks) or more, got {ex.chunk_seconds}")
    if ex.chunk_seconds and not 0 < ex.chunk_overlap < ex.chunk_seconds:
        raise InputError(f"execution.chunk_overlap: must be above 0 and below --chunk-seconds "
                         f"({ex.chunk_seconds}), got {ex.chunk_overlap}")
    if ex.batch_cameras < 1:
        raise InputError(f"--batch-cameras: must be at least 1, got {ex.batch_cameras}")
    if not 0 <= ex.gpus_per_task <= 1:
        raise InputError(f"execution.gpus_per_task: must be in [0, 1], got {ex.gpus_per_task}")


# ------------------------------------------------------------------------------------------ work pieces


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
    """What a worker returns for a piece: tracklets with crop features, and how it went.

    ``frames_owned``: frames of the chunk's own range processed (the camera's ``frames_processed`` is their
    sum); ``pid`` / ``peak_rss_mb``: the worker process and its peak resident memory so far.
    """

    camera: int
    tracks: ChunkTracks
    detector: dict
    timings: dict[str, float]
    frames_owned: int
    pid: int = 0
    peak_rss_mb: float = 0.0


_BACKGROUNDS: dict[tuple[str, int | None], list[np.ndarray]] = {}


def _background(source: FrameSource) -> list[np.ndarray]:
    """The median of frames sampled over the whole video, computed once per process and camera (the chunks of
    a camera share it). Given to the motion detector as its single background frame, whose median it is, so
    the detector starts exactly as it would from the samples themselves."""
    key = (source.info.source, source.info.frames_total)
    if key not in _BACKGROUNDS:
        if len(_BACKGROUNDS) >= 8:
            _BACKGROUNDS.pop(next(iter(_BACKGROUNDS)))
        samples = source.sample_images(BACKGROUND_SAMPLES)
        _BACKGROUNDS[key] = [np.median(np.stack(samples), axis=0).astype(np.uint8)] if samples else []
    return _BACKGROUNDS[key]


@dataclass
class _State:
    """A piece being tracked: its frame stream, detector (None: from the detection file), tracker, tallies."""

    piece: Piece
    frames: Iterator
    detector: Any
    by_frame: dict | None
    tracker: Any
    detector_info: dict
    timings: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "detect": 0.0, "track": 0.0,
                                                               "embed": 0.0})
    batch: list = field(default_factory=list)  # this round's frames
    dets: list = field(default_factory=list)  # this round's detections, one per frame
    frames_owned: int = 0
    done: bool = False


def track_pieces(pieces: Sequence[Piece], cfg: PipelineConfig, embedder=None,
                 on_frames: Callable[[int], None] | None = None) -> list[PieceResult]:
    """Detect, track and embed ``pieces`` in this process, reading them round-robin (one piece: in order).

    Each round takes up to ``max(1, detect.batch // len(pieces))`` frames of every unfinished piece, runs one
    detector call per detector instance (one for all pieces when the detector is stateless), updates each
    piece's tracker, and (with ``track.appearance_weight > 0``) embeds the round's detection crops in one
    batch. At the end the crops of all pieces' tracklets are embedded in batches of ``reid.batch_size``.
    ``on_frames(n)`` is called after each round with the frames read. Returns one result per piece, in order.
    """
    from tracker.chunking import ChunkTracks
    from tracker.detect import build_detector
    from tracker.reid import crop_quality
    from tracker.track import CameraTracker
    from tracker.video import read_mot_detections

    shared = None
    states: list[_State] = []
    for p in pieces:
        src = p.source
        tracker = CameraTracker(cfg.track, src.info.fps / src.stride, src.camera, quality=crop_quality)
        if p.detections is not None:
            states.append(_State(p, iter(src), None, read_mot_detections(p.detections), tracker,
                                 {"detector": "file", "detections": str(p.detections)}))
            continue
        det = shared
        if det is None:
            det = build_detector(cfg.detect, [] if cfg.detect.detector == "yolo" else _background(src))
            if det.name in STATELESS_DETECTORS:
                shared = det
        states.append(_State(p, iter(src), det, None, tracker, det.info()))

    appearance = embedder is not None and cfg.track.appearance_weight > 0
    per_round = max(1, cfg.detect.batch // max(1, len(states)))
    reader = ThreadPoolExecutor(min(len(states), READ_THREADS)) if len(states) > 1 else None
    try:
        while True:
            active = [s for s in states if not s.done]
            if not active:
                break
            _read_round(active, per_round, reader)
            read = sum(len(s.batch) for s in active)
            _detect_round(active)
            _track_round(active, embedder if appearance else None)
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
        results.append(PieceResult(s.piece.camera, ChunkTracks(s.piece.chunk, tracklets), s.detector_info,
                                   s.timings, s.frames_owned))
    if embedder is not None:
        _embed_crops(results, embedder, cfg.reid.batch_size)
    return results


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
    """Set ``state.dets`` for each frame of the round: one detector call per detector instance."""
    from tracker.types import Detections

    groups: dict[int, list[_State]] = {}
    for s in states:
        if s.detector is None:
            s.dets = [s.by_frame.get(f.index, Detections.empty()) for f in s.batch]
        else:
            groups.setdefault(id(s.detector), []).append(s)
    for members in groups.values():
        images = [f.image for s in members for f in s.batch]
        if not images:
            for s in members:
                s.dets = []
            continue
        t = time.perf_counter()
        dets = members[0].detector.detect(images)
        share = (time.perf_counter() - t) / len(images)
        start = 0
        for s in members:
            s.dets = dets[start : start + len(s.batch)]
            start += len(s.batch)
            s.timings["detect"] += share * len(s.batch)


def _track_round(states: list[_State], embedder) -> None:
    """Update every piece's tracker with the round's detections (and crop features: one batch for all)."""
    from tracker.track import crop_box

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


def _embed_crops(results: list[PieceResult], embedder, batch: int) -> None:
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


# ---------------------------------------------------------------------------------------------- workers


@functools.lru_cache(maxsize=2)
def _worker_embedder(reid_cfg):
    from tracker.reid import build_embedder

    return build_embedder(reid_cfg)


def run_unit(pieces: list[Piece], cfg: PipelineConfig, use_embedder: bool, env: dict[str, str]
             ) -> list[PieceResult]:
    """A worker's task (a process-pool job or a Ray task): :func:`track_pieces` with this process's embedder,
    stamped with the process id and its peak RSS."""
    from tracker.pipeline import peak_rss_mb

    os.environ.update(env)
    embedder = _worker_embedder(cfg.reid) if use_embedder else None
    results = track_pieces(pieces, cfg, embedder)
    pid, rss = os.getpid(), peak_rss_mb()
    for r in results:
        r.pid, r.peak_rss_mb = pid, rss
    return results


def _init_worker(parent: int, threads: int, log_level: int) -> None:
    """Pool-worker start: die with the driver, use a fair share of the cores, log like the driver."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: a SIGKILLed driver leaves no orphans working on
        if os.getppid() != parent:
            os._exit(1)
    import cv2

    cv2.setNumThreads(threads)
    logging.basicConfig(level=log_level, format="%(levelname)s: %(message)s")


def _worker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _run_here(units, cfg, embedder, bar) -> Iterator[tuple[int, list[PieceResult]]]:
    for i, unit in enumerate(units):
        yield i, track_pieces(unit, cfg, embedder, bar.update)


def _run_pool(units, cfg, use_embedder: bool, workers: int) -> Iterator[tuple[int, list[PieceResult]]]:
    """Units on ``workers`` spawned processes, yielded as they finish. A worker that dies (killed, out of
    memory) fails the run at once instead of hanging it; leaving early terminates the workers."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")
    before = {p.pid for p in multiprocessing.active_children()}
    init = (os.getpid(), max(1, cpu_count() // workers), logging.getLogger().getEffectiveLevel())
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=init)
    try:
        env = _worker_env()
        futures = {pool.submit(run_unit, unit, cfg, use_embedder, env): i for i, unit in enumerate(units)}
        for fut in as_completed(futures):
            try:
                yield futures[fut], fut.result()
            except BrokenProcessPool:
                raise RuntimeError(
                    "a worker process died (killed, out of memory, or started from a script without "
                    "`if __name__ == '__main__':`, which spawned workers import again); finished cameras are "
                    "cached, run again to resume") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for p in multiprocessing.active_children():
            if p.pid not in before:
                p.terminate()
                p.join()


def import_ray():
    """``import ray`` with usage stats off, or an InputError saying how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise InputError(f"--executor ray: Ray is not installed; {RAY_HINT}") from None
    return ray


def _uses_gpu(cfg: PipelineConfig) -> bool:
    return cfg.detect.device != "cpu" or cfg.reid.device != "cpu"


def _run_ray(units, cfg, use_embedder: bool, ex: ExecConfig, workers: int) -> Iterator[tuple[int, list]]:
    ray = import_ray()
    started = False
    pending: list = []
    if not ray.is_initialized():
        level = max(logging.INFO, logging.getLogger().getEffectiveLevel())
        quiet = {"log_to_driver": False, "logging_level": level}
        if ex.ray_address:
            ray.init(address=ex.ray_address, **quiet)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, **quiet)
        started = True
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        options: dict[str, Any] = {"num_cpus": 1}
        if gpus > 0 and _uses_gpu(cfg):
            share = ex.gpus_per_task or min(1.0, gpus / len(units))
            options["num_gpus"] = max(0.01, round(share, 2))
        task = ray.remote(run_unit).options(**options)
        env = _worker_env()
        refs = {task.remote(unit, cfg, use_embedder, env): i for i, unit in enumerate(units)}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    yield refs[ref], ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, InputError):
                        raise cause from None
                    raise
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


# ------------------------------------------------------------------------------------------- the driver


@dataclass
class _Camera:
    """Driver-side bookkeeping of one camera still to compute."""

    index: int
    source: FrameSource
    plan: list
    key: str
    path: Path
    parts: dict[int, PieceResult] = field(default_factory=dict)


@dataclass
class Execution:
    """:func:`execute`'s answer: one result per camera (input order) and what went into run.json."""

    results: list[CameraResult]
    meta: dict


def execute(sources: Sequence[FrameSource], detections: Sequence[str | None], cfg: PipelineConfig,
            run_dir: str | Path, embedder=None, progress: bool = True) -> Execution:
    """Produce every camera's ``CameraResult`` (tracklets with embeddings), from the cache or by computing it.

    ``sources`` / ``detections``: the opened cameras and their MOT detection files (None: run the detector);
    ``embedder``: the driver's embedder, used when the work runs in this process (None: no appearance
    embedding anywhere). Results computed here are cached in ``RUN_DIR/cache`` as each camera completes.
    ``Execution.meta`` (for run.json): executor, workers, units, chunks per camera, which cameras came from
    the cache, and peak RSS of the driver, of each worker process and their sum.
    """
    from tqdm import tqdm

    from tracker.cache import StageCache, camera_key
    from tracker.chunking import plan_chunks
    from tracker.pipeline import CameraResult, peak_rss_mb

    ex = cfg.execution
    validate(ex)
    started = time.perf_counter()
    cache = StageCache(run_dir)
    results: list[CameraResult | None] = [None] * len(sources)
    todo: dict[int, _Camera] = {}
    pieces: list[Piece] = []
    resumed: dict[str, int] = {}  # camera -> chunks taken from the cache
    for i, (src, det) in enumerate(zip(sources, detections)):
        plan = plan_chunks(src.info.frames_total, src.info.fps, ex.chunk_seconds, ex.chunk_overlap)
        key = camera_key(src, det, cfg, plan)
        path = cache.camera_path(src.camera, key)
        hit = None if ex.force else cache.load(path)
        if isinstance(hit, CameraResult):
            info = dataclasses.replace(hit.info, source=src.info.source)
            results[i] = dataclasses.replace(hit, cached=True, info=info)
            continue
        cam = todo[i] = _Camera(i, src, plan, key, path)
        for chunk in plan:
            part = None
            if not ex.force and len(plan) > 1:
                part = cache.load(cache.chunk_path(src.camera, key, chunk.start))
            if part is not None:
                cam.parts[chunk.start] = part
                resumed[src.camera] = resumed.get(src.camera, 0) + 1
            else:
                pieces.append(Piece(i, src if chunk.whole else src.window(chunk.start, chunk.stop), chunk, det))
    for cam in todo.values():  # every chunk was cached but the camera was not yet assembled
        if len(cam.parts) == len(cam.plan):
            results[cam.index] = _assemble(cam, cfg, cache)

    units = [pieces[k : k + ex.batch_cameras] for k in range(0, len(pieces), ex.batch_cameras)]
    workers = ex.workers or min(max(1, len(units)), cpu_count())
    workers = min(workers, max(1, len(units))) if ex.executor == "local" else workers
    use_embedder = embedder is not None
    rss: dict[int, float] = {}
    total = sum(len(p.source) for p in pieces)
    with tqdm(total=total or None, desc="cameras", unit="frame", disable=not progress or not pieces,
              dynamic_ncols=True) as bar:
        if not units:
            stream: Iterator = iter(())
        elif ex.executor == "ray":
            stream = _run_ray(units, cfg, use_embedder, ex, workers)
        elif workers == 1:
            stream = _run_here(units, cfg, embedder, bar)
        else:
            stream = _run_pool(units, cfg, use_embedder, workers)
        for done, unit_results in stream:
            for r in unit_results:
                if r.pid:
                    rss[r.pid] = max(rss.get(r.pid, 0.0), r.peak_rss_mb)
                cam = todo[r.camera]
                cam.parts[r.tracks.chunk.start] = r
                if len(cam.plan) > 1 and len(cam.parts) < len(cam.plan):
                    cache.save(cache.chunk_path(cam.source.camera, cam.key, r.tracks.chunk.start), r)
                elif len(cam.parts) == len(cam.plan):
                    results[cam.index] = _assemble(cam, cfg, cache)
            if ex.executor == "ray" or workers > 1:
                bar.update(sum(len(p.source) for p in units[done]))

    driver = peak_rss_mb()
    own = os.getpid()
    workers_rss = {str(pid): round(v, 1) for pid, v in sorted(rss.items()) if pid != own}
    meta = {
        "executor": ex.executor,
        "workers": workers if pieces else 0,
        "units": len(units),
        "batch_cameras": ex.batch_cameras,
        "chunks": {src.camera: len(todo[i].plan) if i in todo else 1 for i, src in enumerate(sources)},
        "cached": [src.camera for i, src in enumerate(sources) if i not in todo],
        "chunks_cached": resumed,
        "wall_s": round(time.perf_counter() - started, 3),
        "peak_rss_driver_mb": round(driver, 1),
        "peak_rss_workers_mb": workers_rss,
        "peak_rss_total_mb": round(driver + sum(rss[p] for p in rss if p != own), 1),
    }
    missing = [src.camera for src, r in zip(sources, results) if r is None]
    if missing:
        raise RuntimeError(f"the executor returned no result for {', '.join(missing)}")
    return Execution(results, meta)


def _assemble(cam: _Camera, cfg: PipelineConfig, cache) -> CameraResult:
    """Stitch a camera's chunk results, set tracklet embeddings, cache the camera, drop its chunk entries."""
    from tracker.chunking import stitch
    from tracker.pipeline import CameraResult
    from tracker.reid import tracklet_embedding

    parts = [cam.parts[c.start] for c in cam.plan]
    src = cam.source
    fps = src.info.fps / src.stride
    max_gap = max(1, round(cfg.track.max_age * fps))  # as the tracker's max_misses
    tracks = stitch([p.tracks for p in parts], cfg.track.max_crops, cfg.track.min_length, max_gap, src.stride,
                    cfg.track.interpolate)
    for t, feats in zip(tracks.tracklets, tracks.features):
        if feats is not None and len(feats):
            t.embedding = tracklet_embedding(feats, np.array([c.quality for c in t.crops]))
    frames = sum(p.frames_owned for p in parts)
    if frames == 0:
        raise InputError(f"{src.info.source}: no frames could be decoded")
    timings: dict[str, float] = {}
    for p in parts:
        for k, v in p.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    info = dataclasses.replace(src.info, frames_processed=frames)
    result = CameraResult(info, tracks.tracklets, parts[0].detector, timings)
    cache.save(cam.path, result)
    cache.prune(src.camera, keep=cam.path)
    return result
