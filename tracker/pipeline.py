"""Wires the stages together: sources -> camera stage -> association -> results store -> exports and videos.

Each stage lives in its own module; this one resolves the config once (:func:`resolve_config`), moves data
between the stages, times them and writes the run directory (see docs/ARCHITECTURE.md for its layout).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import platform
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from tracker import env
from tracker._version import __version__
from tracker.calibration import Calibration, load_calibration
from tracker.camera import CameraResult
from tracker.config import PipelineConfig, to_dict
from tracker.errors import InputError
from tracker.fsutil import atomic_path, atomic_write_json
from tracker.video import FrameSource, open_source

log = logging.getLogger(__name__)

PACKAGES = ("numpy", "opencv-python", "torch", "torchvision", "ultralytics", "filterpy", "lap", "trackeval")


def open_inputs(videos: Sequence[str | Path], cfg: PipelineConfig) -> list[FrameSource]:
    """Open and check every camera input before any work starts, so bad input fails fast with nothing written.

    Camera names, time offsets and detection files come from ``cfg.video.names``, ``cfg.video.offsets`` and
    ``cfg.detect.detections`` (one per input when given).
    """
    n = len(videos)
    if not n:
        raise InputError("no camera inputs given (--videos)")
    for what, values in (
        ("video.names (--names)", cfg.video.names),
        ("video.offsets (--offsets)", cfg.video.offsets),
        ("detect.detections (--detections)", cfg.detect.detections),
    ):
        if values and len(values) != n:
            raise InputError(f"{what} has {len(values)} values for {n} videos")
    names = cfg.video.names or (None,) * n
    offsets = cfg.video.offsets or (0.0,) * n
    sources = [open_source(v, nm, off, cfg.video.stride) for v, nm, off in zip(videos, names, offsets)]
    cams = [s.camera for s in sources]
    dupes = sorted({c for c in cams if cams.count(c) > 1})
    if dupes:
        raise InputError(f"camera name '{dupes[0]}' is used twice; give distinct names with --names")
    detections = cfg.detect.detections or (None,) * n
    for path, s in zip(detections, sources):
        if path is None and not s.has_images:
            raise InputError(f"{s.info.source}: has no frames on disk; give its detections with --detections")
        if path is not None and not Path(path).is_file():
            raise InputError(f"{path}: detection file not found")
    return sources


def resolve_config(cfg: PipelineConfig, sources: Sequence[FrameSource] = ()) -> tuple[PipelineConfig, dict]:
    """The config with every ``auto`` decided, once, for this machine and these inputs: the detector (YOLO
    with its weights' path, or the motion detector), the embedder (MGN with its checkpoint, or the histogram),
    their devices, and the model cache folder. Workers, the stage cache key and run.json all use the result,
    so the choice (and its one warning line) is made here and nowhere else.

    Returns ``(resolved config, fallbacks)``; ``fallbacks`` says why ``auto`` fell back (``detector`` /
    ``embedder``: reason or None).
    """
    from tracker.detect import resolve_detector
    from tracker.reid import resolve_embedder

    models = dataclasses.replace(cfg.models, cache_dir=str(env.cache_dir(cfg.models.cache_dir)))
    cfg = dataclasses.replace(cfg, models=models)
    fallbacks: dict[str, str | None] = {"detector": None, "embedder": None}
    if not cfg.detect.detections:
        detect, fallbacks["detector"] = resolve_detector(cfg.detect, models)
        cfg = dataclasses.replace(cfg, detect=detect)
    if sources and not any(s.has_images for s in sources):
        cfg = dataclasses.replace(cfg, reid=dataclasses.replace(cfg.reid, embedder="none", device="cpu"))
    reid, fallbacks["embedder"] = resolve_embedder(cfg.reid, models)
    return dataclasses.replace(cfg, reid=reid), fallbacks


def read_calibration(cfg: PipelineConfig, cameras: list[str]) -> Calibration | None:
    """The run's calibration (``associate.calibration``) checked against its cameras, or None."""
    if not cfg.associate.calibration:
        return None
    calibration = load_calibration(cfg.associate.calibration).for_cameras(cameras)
    missing = calibration.unknown(cameras)
    if missing:
        log.info("calibration %s says nothing about %s", calibration.source, ", ".join(missing))
    return calibration


def versions() -> dict[str, str]:
    out = {"multicam-tracker": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def run(
    videos: Sequence[str | Path],
    out_dir: str | Path,
    cfg: PipelineConfig = PipelineConfig(),
    progress: bool = True,
) -> dict:
    """Run the whole job on ``videos`` (files, frame folders or MOT sequence folders, one per camera) and
    write the run directory ``out_dir``; returns the run metadata (run.json)."""
    from tracker.association import associate
    from tracker.executor import execute
    from tracker.export import export_run
    from tracker.reid import build_embedder
    from tracker.review import carry_edits
    from tracker.store import write_store

    out = Path(out_dir)
    started = time.perf_counter()
    sources = open_inputs(videos, cfg)
    calibration = read_calibration(cfg, [s.camera for s in sources])
    _check_writable(out)
    cfg, fallbacks = resolve_config(cfg, sources)
    embedder = build_embedder(cfg.reid, cfg.models)
    timings: dict[str, float] = {}
    detections = list(cfg.detect.detections) or [None] * len(sources)
    execution = execute(sources, detections, cfg, out, embedder, progress)
    results = execution.results
    for res in results:
        res.info.homography = None if calibration is None else calibration.homographies.get(res.info.name)
        for k, v in res.timings.items() if not res.cached else ():
            timings[k] = timings.get(k, 0.0) + v
    tracklets = [t for r in results for t in r.tracklets]
    timings["reid"] = timings.pop("embed", 0.0)  # crops are embedded in the camera tasks

    t = time.perf_counter()
    evidence: list = []
    association_info: dict = {}
    if cfg.associate.enabled:
        assoc = associate(tracklets, cfg.associate, calibration)
        for tr, gid in zip(tracklets, assoc.global_ids):
            tr.global_id = int(gid)
        evidence = list(assoc.evidence)
        association_info = assoc.info
    timings["associate"] = time.perf_counter() - t

    meta = {
        "tool": "multicam-tracker",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "versions": versions(),
        "config": to_dict(cfg),
        "calibration": calibration.source if calibration else None,
        "detectors": {r.info.name: r.detector for r in results},
        "detector_fallback": fallbacks["detector"],
        "embedder": embedder.info() if embedder is not None else None,
        "embedder_fallback": fallbacks["embedder"],
        "cameras": [_camera_meta(r) for r in results],
        "execution": execution.meta,
        "association": association_info,
        "num_tracklets": len(tracklets),
        "num_identities": len({t.global_id for t in tracklets}) if cfg.associate.enabled else None,
        "offline": cfg.models.offline,
    }
    t = time.perf_counter()
    with atomic_path(out / "results.sqlite") as tmp:
        write_store(tmp, meta=meta, cameras=[r.info for r in results], tracklets=tracklets, evidence=evidence)
        carry_edits(out / "results.sqlite", tmp, tracklets, meta)
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
    meta["peak_rss_mb"] = round(env.peak_rss_mb(), 1)
    workers_rss = sum(execution.meta["peak_rss_workers_mb"].values())
    meta["peak_rss_total_mb"] = round(meta["peak_rss_mb"] + workers_rss, 1)
    atomic_write_json(out / "run.json", meta)
    return meta


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
