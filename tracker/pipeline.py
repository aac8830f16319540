"""Wires the stages together: sources -> camera stage -> association -> results store -> exports and videos.

Each stage lives in its own module; this one resolves the config once (:func:`resolve_config`), moves data
between the stages, times them and writes the run directory (see docs/ARCHITECTURE.md for its layout).

The run directory is consistent or clearly incomplete (:class:`tracker.fsutil.RunDir`): the run holds its
lock (a second writer stops with one line), removes what an interrupted run left (``.part`` files, the
staging folder), writes every output into ``RUN_DIR/.staging`` (:func:`write_outputs`) and commits them in
one step, ``manifest.json`` (every output with its sha256, and the run id the store and run.json record)
written last; outputs of an earlier run that this one does not produce (another camera's MOT file, videos
after ``--no-video``, a metrics.json that scored the earlier results) are removed. Every warning line of the
run is recorded in run.json (``warnings``); a camera that gives fewer frames than it announces is one of
them, or with ``video.strict`` (``--strict``) an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import fnmatch
import logging
import platform
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path

from tracker import env
from tracker._version import __version__
from tracker.calibration import Calibration, load_calibration
from tracker.camera import CameraResult
from tracker.config import PipelineConfig, to_dict
from tracker.errors import InputError
from tracker.fsutil import STAGING, RunDir, atomic_write_json
from tracker.video import FrameSource, open_source

log = logging.getLogger(__name__)

PACKAGES = ("numpy", "opencv-python", "torch", "torchvision", "ultralytics", "filterpy", "lap", "trackeval")
OUTPUTS = (
    "results.sqlite",
    "run.json",
    "identities.csv",
    "mtmc.txt",
    "mot/*.txt",
    "videos/*.mp4",
    "metrics.json",
)
"""What a run owns in its directory (patterns): written by it, or removed as superseded (metrics.json scored
the previous results; track-eval writes it again)."""
EXACT_COUNT = frozenset({".mp4", ".m4v", ".mov", ".avi"})
"""Containers whose header frame count is exact; elsewhere OpenCV estimates it from the duration."""


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
    cams = [s.camera.casefold() for s in sources]  # one file on a case-insensitive file system
    dupes = sorted({s.camera for s, c in zip(sources, cams) if cams.count(c) > 1})
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
        log.warning(
            "calibration %s says nothing about %s: no ground-plane evidence for them",
            calibration.source,
            ", ".join(missing),
            extra={"run_warning": {"kind": "calibration", "cameras": missing}},
        )
    return calibration


def check_inputs_apart(out: Path, inputs: Sequence[str | Path]) -> None:
    """InputError when an input lies where the run writes (an output it would replace or remove, its cache or
    staging folder), or the run directory lies inside an input folder (its outputs would become input)."""
    root = out.resolve()
    for given in inputs:
        p = Path(given).resolve()
        if p.is_dir() and (root == p or root.is_relative_to(p)):
            raise InputError(f"--out {out}: is inside the input folder {given}; choose a folder outside it")
        if not p.is_relative_to(root):
            continue
        rel = p.relative_to(root).as_posix()
        if any(fnmatch.fnmatchcase(rel, pat) for pat in OUTPUTS) or rel.split("/")[0] in ("cache", STAGING):
            raise InputError(
                f"{given}: is where the run writes in {out} (it would be replaced); use another --out"
            )


class WarningLog(logging.Handler):
    """Every warning line logged under ``tracker`` while it is attached, for run.json's ``warnings``.

    Each entry is ``{"kind", "message", ...}``: ``kind`` and further fields from the log call's
    ``extra={"run_warning": {...}}`` (default kind: the logging module's last name, e.g. ``cache``)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.entries: list[dict] = []
        self._echo = False

    def emit(self, record: logging.LogRecord) -> None:
        extra = getattr(record, "run_warning", None) or {}
        entry = {"kind": record.name.rpartition(".")[2], **extra, "message": record.getMessage()}
        self.entries.append(entry)
        if self._echo and logging.lastResort is not None:  # nothing else prints it: as if we were not here
            logging.lastResort.handle(record)

    @contextlib.contextmanager
    def attached(self) -> Iterator[WarningLog]:
        logger = logging.getLogger("tracker")
        node: logging.Logger | None = logger
        handlers = False
        while node is not None:
            handlers = handlers or bool(node.handlers)
            node = node.parent if node.propagate else None
        self._echo = not handlers
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)


def frames_warning(source: FrameSource, read: int) -> str | None:
    """The warning line for a camera that gave ``read`` frames of those its source announces, or None.

    A video container's count may be an estimate (outside :data:`EXACT_COUNT`): 1% (at least 2 frames)
    is tolerated there."""
    info = source.info
    if not info.frames_total:
        return None
    expected = len(source)
    video = Path(info.source).is_file()
    tolerance = (
        max(2, expected // 100) if video and Path(info.source).suffix.lower() not in EXACT_COUNT else 0
    )
    if read >= expected - tolerance:
        return None
    every = f" (stride {source.stride}, of {info.frames_total} in all)" if source.stride > 1 else ""
    what = "video" if video else "frame folder"
    return (
        f"{info.name}: read {read} of the {expected} frames{every} {info.source} announces: the {what} is "
        "truncated or has frames that cannot be decoded, so its results end early"
    )


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
    from tracker.reid import build_embedder

    out = Path(out_dir)
    started = time.perf_counter()
    with WarningLog().attached() as warnings:
        sources = open_inputs(videos, cfg)
        calibration = read_calibration(cfg, [s.camera for s in sources])
        inputs = [s.info.source for s in sources] + list(cfg.detect.detections)
        if cfg.associate.calibration:
            inputs.append(cfg.associate.calibration)
        check_inputs_apart(out, inputs)
        run_dir = RunDir(out)
        run_dir.check_writable()
        with run_dir.lock("track-cameras"):
            stale = run_dir.remove_stale()
            if stale:
                log.info("removed %d partial file(s) an interrupted run left in %s", len(stale), out)
            cfg, fallbacks = resolve_config(cfg, sources)
            embedder = build_embedder(cfg.reid, cfg.models)
            timings: dict[str, float] = {}
            detections = list(cfg.detect.detections) or [None] * len(sources)
            execution = execute(sources, detections, cfg, out, embedder, progress)
            results = execution.results
            _check_frames(sources, results, cfg.video.strict)
            for res in results:
                res.info.homography = (
                    None if calibration is None else calibration.homographies.get(res.info.name)
                )
                for k, v in res.timings.items() if not res.cached else ():
                    timings[k] = timings.get(k, 0.0) + v
            tracklets = [t for r in results for t in r.tracklets]
            timings["reid"] = timings.pop("embed", 0.0)  # crops are embedded in the camera tasks

            t = time.perf_counter()
            evidence: list = []
            association_info: dict = {}
            if cfg.associate.enabled:
                frames = {r.info.name: (r.info.width, r.info.height) for r in results}
                assoc = associate(tracklets, cfg.associate, calibration, frames=frames)
                for tr, gid in zip(tracklets, assoc.global_ids):
                    tr.global_id = int(gid)
                evidence = list(assoc.evidence)
                association_info = assoc.info
            timings["associate"] = time.perf_counter() - t

            meta = {
                "tool": "multicam-tracker",
                "run_id": uuid.uuid4().hex,
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
                "warnings": warnings.entries,
            }
            with run_dir.staging() as stage:
                write_outputs(
                    stage,
                    meta,
                    results,
                    tracklets,
                    evidence,
                    sources,
                    cfg,
                    progress,
                    timings,
                    started,
                    previous=run_dir.path("results.sqlite"),
                )
                run_dir.commit(stage, OUTPUTS, meta["run_id"])
    return meta


def write_outputs(
    stage: RunDir,
    meta: dict,
    results: Sequence[CameraResult],
    tracklets: list,
    evidence: list,
    sources: Sequence[FrameSource],
    cfg: PipelineConfig,
    progress: bool,
    timings: dict[str, float],
    started: float,
    previous: Path,
) -> None:
    """Write the run's outputs into the staging folder ``stage``, in order: the results store (with the
    corrections of the store at ``previous``, the run directory's last one, carried over), its exports,
    the annotated videos, then run.json (``meta`` with timings since ``started`` and peak memory added).
    Nothing here is seen by readers until :meth:`RunDir.commit`."""
    from tracker.export import write_exports
    from tracker.review import carry_edits
    from tracker.store import ResultsStore, write_store

    t = time.perf_counter()
    store_path = stage.path("results.sqlite")
    write_store(
        store_path, meta=meta, cameras=[r.info for r in results], tracklets=tracklets, evidence=evidence
    )
    carry_edits(previous, store_path, tracklets, meta)  # the user's corrections, before any export
    timings["store"] = time.perf_counter() - t
    t = time.perf_counter()
    with ResultsStore.open(store_path, readonly=True) as store:
        write_exports(store, stage)
    timings["export"] = time.perf_counter() - t

    if cfg.output.annotated_video:
        from tracker.annotate import write_annotated_videos

        t = time.perf_counter()
        write_annotated_videos(list(sources), tracklets, stage.path("videos"), progress)
        timings["video"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    meta["timings"] = {k: round(v, 3) for k, v in timings.items()}
    meta["peak_rss_mb"] = round(env.peak_rss_mb(), 1)
    workers_rss = sum(meta["execution"]["peak_rss_workers_mb"].values())
    meta["peak_rss_total_mb"] = round(meta["peak_rss_mb"] + workers_rss, 1)
    atomic_write_json(stage.path("run.json"), meta)


def _check_frames(sources: Sequence[FrameSource], results: Sequence[CameraResult], strict: bool) -> None:
    """One warning line per camera that gave fewer frames than it announces (InputError with ``strict``)."""
    for src, res in zip(sources, results):
        message = frames_warning(src, res.info.frames_processed)
        if message is None:
            continue
        if strict:
            raise InputError(message + " (--strict)")
        log.warning(
            message,
            extra={
                "run_warning": {
                    "kind": "frames",
                    "camera": src.camera,
                    "frames_read": res.info.frames_processed,
                    "frames_expected": len(src),
                }
            },
        )


def _camera_meta(r: CameraResult) -> dict:
    """A camera's run.json entry: its CameraInfo (no homography), whether calibrated, tracklets, whether
    cached, timings, and its source's absolute path and content fingerprint (the review UI opens a source only
    while it still is that file)."""
    from tracker.cache import source_fingerprint

    info = dataclasses.asdict(r.info)
    info.pop("homography", None)
    source = Path(r.info.source)
    info["source_path"] = str(source.resolve()) if source.exists() else None
    info["source_fingerprint"] = source_fingerprint(source) if source.exists() else None
    info["calibrated"] = r.info.homography is not None
    info["tracklets"] = len(r.tracklets)
    info["cached"] = r.cached
    info["timings"] = {k: round(v, 3) for k, v in r.timings.items()}
    return info
