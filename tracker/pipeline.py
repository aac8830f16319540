"""Wires the stages together: sources -> detection -> tracking -> re-identification -> association -> outputs.

Each stage lives in its own module; this one only moves data between them, times them and writes the run
directory (see docs/ARCHITECTURE.md for its layout).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path


from tracker import __version__, env
from tracker.config import PipelineConfig, to_dict
from tracker.errors import InputError
from tracker.fsutil import atomic_path, atomic_write_json
from tracker.types import CameraInfo, Tracklet
from tracker.video import FrameSource, open_source

log = logging.getLogger(__name__)

PACKAGES = ("numpy", "opencv-python", "torch", "torchvision", "ultralytics", "filterpy", "lap", "trackeval")


@dataclass
class CameraInput:
    """One camera to process: a video / frame folder / MOT sequence, and optionally its MOT detections."""

    path: str
    name: str | None = None
    offset: float = 0.0
    detections: str | None = None


@dataclass
class CameraResult:
    info: CameraInfo
    tracklets: list[Tracklet]
    detector: dict
    timings: dict[str, float] = field(default_factory=dict)
    cached: bool = False  # taken from the run's stage cache (tracker.cache) instead of computed


def open_inputs(inputs: list[CameraInput], stride: int) -> list[FrameSource]:
    """Open and check every input before any work starts, so bad input fails fast with nothing written."""
    sources = [open_source(c.path, c.name, c.offset, stride) for c in inputs]
    names = [s.camera for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"camera name '{dupes[0]}' is used twice; give distinct names with --names")
    for c, s in zip(inputs, sources):
        if c.detections is None and not s.has_images:
            raise InputError(f"{c.path}: has no frames on disk; give its detections with --detections")
        if c.detections is not None and not Path(c.detections).is_file():
            raise InputError(f"{c.detections}: detection file not found")
    return sources


def process_camera(source: FrameSource, cfg: PipelineConfig, detections_file: str | None = None,
                   embedder=None, progress: bool = False) -> CameraResult:
    """One camera's stage (detect, track, embed crops) in this process, without cache or chunking."""
    import tempfile

    from tracker.executor import execute

    one = dataclasses.replace(cfg.execution, executor="local", workers=1, chunk_seconds=0.0, force=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = execute([source], [detections_file], dataclasses.replace(cfg, execution=one), tmp, embedder, progress)
    return run.results[0]


def versions() -> dict[str, str]:
    out = {"multicam-tracker": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB: ``VmHWM`` of /proc/self/status on Linux, the high-water
    mark of this program's own memory (``ru_maxrss`` also keeps the parent's size from before ``exec``, which
    inflates spawned workers and benchmarked commands), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(inputs: list[CameraInput], out_dir: str | Path, cfg: PipelineConfig, progress: bool = True,
        calibration: str | None = None) -> dict:
    """Run the whole job and write the run directory; returns the run metadata (run.json)."""
    from tracker.associate import associate, load_calibration
    from tracker.executor import execute
    from tracker.export import export_run
    from tracker.reid import build_embedder
    from tracker.store import ResultsStore

    out = Path(out_dir)
    started = time.perf_counter()
    sources = open_inputs(inputs, cfg.video.stride)
    _check_writable(out)
    calib_path = calibration or cfg.associate.calibration
    homographies = load_calibration(calib_path) if calib_path else {}

    detector_fallback = None
    if any(inp.detections is None for inp in inputs):
        from tracker.detect import resolve_detector

        detect_cfg, detector_fallback = resolve_detector(cfg.detect)  # decided once, not per worker
        cfg = dataclasses.replace(cfg, detect=detect_cfg)
    embedder = build_embedder(cfg.reid) if any(s.has_images for s in sources) else None
    cfg = dataclasses.replace(cfg, reid=_resolved_reid(cfg.reid, embedder))
    timings: dict[str, float] = {}
    execution = execute(sources, [inp.detections for inp in inputs], cfg, out, embedder, progress)
    results = execution.results
    for res in results:
        res.info.homography = homographies.get(res.info.name)
        for k, v in res.timings.items() if not res.cached else ():
            timings[k] = timings.get(k, 0.0) + v
    tracklets = [t for r in results for t in r.tracklets]

    timings["reid"] = timings.pop("embed", 0.0)  # crops are embedded in the camera tasks

    t = time.perf_counter()
    evidence: list = []
    if cfg.associate.enabled:
        assoc = associate(tracklets, cfg.associate, homographies or None)
        for tr, gid in zip(tracklets, assoc.global_ids):
            tr.global_id = int(gid)
        evidence = list(assoc.evidence)
    timings["associate"] = time.perf_counter() - t

    meta = {
        "tool": "multicam-tracker",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "versions": versions(),
        "config": to_dict(cfg),
        "calibration": calib_path,
        "detectors": {r.info.name: r.detector for r in results},
        "detector_fallback": detector_fallback,
        "embedder": embedder.info() if embedder is not None else None,
        "cameras": [_camera_meta(r) for r in results],
        "execution": execution.meta,
        "num_tracklets": len(tracklets),
        "num_identities": len({t.global_id for t in tracklets}) if cfg.associate.enabled else None,
        "offline": env.offline(),
    }
    t = time.perf_counter()
    with atomic_path(out / "results.sqlite") as tmp:
        with ResultsStore.create(tmp) as store:
            store.write_run(meta=meta, cameras=[r.info for r in results], tracklets=tracklets, evidence=evidence)
    timings["store"] = time.perf_counter() - t
    t = time.perf_counter()
    export_run(out)
    timings["export"] = time.perf_counter() - t

    if cfg.output.annotated_video:
        from tracker.annotate import write_annotated_videos

        t = time.perf_counter()
        write_annotated_videos(sources, tracklets, out / "videos", progress)
        timings["video"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    meta["timings"] = {k: round(v, 3) for k, v in timings.items()}
    meta["peak_rss_mb"] = round(peak_rss_mb(), 1)
    workers_rss = sum(execution.meta["peak_rss_workers_mb"].values())
    meta["peak_rss_total_mb"] = round(meta["peak_rss_mb"] + workers_rss, 1)
    atomic_write_json(out / "run.json", meta)
    return meta


def _resolved_reid(reid, embedder):
    """The reid config that rebuilds exactly ``embedder`` (workers, the cache key and run.json use it), so
    that ``auto`` is decided once in the driver, with one warning, not again in every worker."""
    if embedder is None:
        return dataclasses.replace(reid, embedder="none")
    info = embedder.info()
    if info.get("embedder") == "histogram":
        return dataclasses.replace(reid, embedder="histogram")
    weights = info.get("weights")
    return dataclasses.replace(reid, embedder="mgn", weights=weights) if weights else reid


def _camera_meta(r: CameraResult) -> dict:
    info = dataclasses.asdict(r.info)
    info.pop("homography", None)
    info["calibrated"] = r.info.homography is not None
    info["tracklets"] = len(r.tracklets)
    info["cached"] = r.cached
    info["timings"] = {k: round(v, 3) for k, v in r.timings.items()}
    return info


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"{out}: cannot write the run there ({exc.strerror or exc})") from None
