"""Executors for the camera stage: every camera's pieces of work scheduled in parallel, with a resumable
cache.

:func:`execute` is what the pipeline calls: it returns one :class:`~tracker.camera.CameraResult` per camera,
taking finished cameras from the run's stage cache (:mod:`tracker.cache`) and computing the rest with the
executor ``execution.executor`` names:

* ``local`` (default): worker processes on this machine (``execution.workers``, default
  ``min(work units, CPU cores)``; one worker runs in the calling process, with no pool);
* ``ray``: Ray tasks on a cluster (``execution.ray_address``) or on a Ray started locally, each with a
  ``num_gpus`` fraction when the cluster has GPUs. Ray is an optional extra (``pip install
  multicam-tracker[ray]``).

Work is cut into *pieces* (a camera, or one time chunk of it: :mod:`tracker.chunking`), and pieces into
*units* of ``execution.batch_cameras`` pieces, one unit a task; what a unit does is the camera stage's
business (:func:`tracker.camera.process_unit`). Every finished camera (and every finished chunk of a chunked
camera) is written to the cache at once, so a killed run loses only the work in flight. Worker processes of
the local executor die with the driver (Linux ``PR_SET_PDEATHSIG``); each reports its peak RSS, summed into
``peak_rss_total_mb``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker import env
from tracker.cache import StageCache, camera_key
from tracker.camera import CameraResult, Piece, PieceResult, assemble, process_pieces, process_unit
from tracker.chunking import Chunk, plan_chunks
from tracker.config import ExecConfig, PipelineConfig
from tracker.errors import InputError
from tracker.video import FrameSource

log = logging.getLogger(__name__)

RAY_HINT = "install it with `pip install multicam-tracker[ray]` (or `pip install 'ray[default]'`)"


def run_unit(pieces: list[Piece], cfg: PipelineConfig, with_embedder: bool) -> list[PieceResult]:
    """A worker's task (a process-pool job or a Ray task): the camera stage on ``pieces``, stamped with the
    process id and its peak RSS."""
    results = process_unit(pieces, cfg, with_embedder)
    pid, rss = os.getpid(), env.peak_rss_mb()
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


def _run_here(units, cfg, embedder, bar) -> Iterator[tuple[int, list[PieceResult]]]:
    for i, unit in enumerate(units):
        yield i, process_pieces(unit, cfg, embedder, bar.update)


def _run_pool(units, cfg, use_embedder: bool, workers: int) -> Iterator[tuple[int, list[PieceResult]]]:
    """Units on ``workers`` spawned processes, yielded as they finish. A worker that dies (killed, out of
    memory) fails the run at once instead of hanging it; leaving early terminates the workers."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")
    before = {p.pid for p in multiprocessing.active_children()}
    init = (os.getpid(), max(1, env.cpu_count() // workers), logging.getLogger().getEffectiveLevel())
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=init)
    try:
        futures = {pool.submit(run_unit, unit, cfg, use_embedder): i for i, unit in enumerate(units)}
        for fut in as_completed(futures):
            try:
                yield futures[fut], fut.result()
            except BrokenProcessPool:
                raise RuntimeError(
                    "a worker process died (killed, out of memory, or started from a script without "
                    "`if __name__ == '__main__':`, which spawned workers import again); finished cameras are "
                    "cached, run again to resume"
                ) from None
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
    """Whether the (resolved) config runs detection or re-identification on a GPU."""
    return any(d.startswith("cuda") for d in (cfg.detect.device, cfg.reid.device))


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
        refs = {task.remote(unit, cfg, use_embedder): i for i, unit in enumerate(units)}
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
    plan: list[Chunk]
    key: str
    path: Path
    parts: dict[int, PieceResult] = field(default_factory=dict)


@dataclass
class Execution:
    """:func:`execute`'s answer: one result per camera (input order) and what went into run.json."""

    results: list[CameraResult]
    meta: dict


def execute(
    sources: Sequence[FrameSource],
    detections: Sequence[str | None],
    cfg: PipelineConfig,
    run_dir: str | Path,
    embedder=None,
    progress: bool = True,
) -> Execution:
    """Produce every camera's ``CameraResult`` (tracklets with embeddings), from the cache or by computing it.

    ``sources`` / ``detections``: the opened cameras and their MOT detection files (None: run the detector);
    ``cfg``: the resolved config; ``embedder``: the driver's embedder, used when the work runs in this process
    (None: no appearance embedding anywhere). Results computed here are cached in ``RUN_DIR/cache`` as each
    camera completes. ``Execution.meta`` (for run.json): executor, workers, units, chunks per camera, which
    cameras came from the cache, and peak RSS of the driver, of each worker process and their sum.
    """
    from tqdm import tqdm

    ex = cfg.execution
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
            if isinstance(part, PieceResult):
                cam.parts[chunk.start] = part
                resumed[src.camera] = resumed.get(src.camera, 0) + 1
            else:
                pieces.append(
                    Piece(i, src if chunk.whole else src.window(chunk.start, chunk.stop), chunk, det)
                )
    for cam in todo.values():  # every chunk was cached but the camera was not yet assembled
        if len(cam.parts) == len(cam.plan):
            results[cam.index] = _finish(cam, cfg, cache)

    units = [pieces[k : k + ex.batch_cameras] for k in range(0, len(pieces), ex.batch_cameras)]
    workers = ex.workers or min(max(1, len(units)), env.cpu_count())
    workers = min(workers, max(1, len(units))) if ex.executor == "local" else workers
    use_embedder = embedder is not None
    rss: dict[int, float] = {}
    total = sum(len(p.source) for p in pieces)
    with tqdm(
        total=total or None,
        desc="cameras",
        unit="frame",
        disable=not progress or not pieces,
        dynamic_ncols=True,
    ) as bar:
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
                    results[cam.index] = _finish(cam, cfg, cache)
            if ex.executor == "ray" or workers > 1:
                bar.update(sum(len(p.source) for p in units[done]))

    driver = env.peak_rss_mb()
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


def _finish(cam: _Camera, cfg: PipelineConfig, cache: StageCache) -> CameraResult:
    """Assemble a camera whose pieces are all done, cache it and drop its chunk entries."""
    result = assemble(cam.source, [cam.parts[c.start] for c in cam.plan], cfg)
    cache.save(cam.path, result)
    cache.prune(cam.source.camera, keep=cam.path)
    return result
