"""``track-cameras``: the whole job from the command line.

    track-cameras --videos cam1.mp4 cam2.mp4 --out runs/x [--config configs/default.yaml] ...
    track-cameras export RUN_DIR          (re-export MOT / identities / MTMC files from the results store)

Config values come from the YAML file (defaults when none is given); every flag is an override of one config
key (:data:`FLAGS`), so the config is the one route by which settings reach the stages. The environment is
read here: ``MULTICAM_TRACKER_OFFLINE=1`` is ``--offline`` (``MULTICAM_TRACKER_HOME``, the default model
cache, is read when the pipeline resolves ``models.cache_dir``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from tracker import env
from tracker.config import PipelineConfig, dump_yaml, load_config, override
from tracker.errors import InputError, cli_entry

# flag (argparse dest) -> config key it overrides
FLAGS = {
    "detector": "detect.detector",
    "detector_weights": "detect.weights",
    "detections": "detect.detections",
    "reid": "reid.embedder",
    "reid_weights": "reid.weights",
    "offsets": "video.offsets",
    "frame_stride": "video.stride",
    "names": "video.names",
    "calibration": "associate.calibration",
    "executor": "execution.executor",
    "workers": "execution.workers",
    "ray_address": "execution.ray_address",
    "chunk_seconds": "execution.chunk_seconds",
    "batch_cameras": "execution.batch_cameras",
}
SWITCHES = {  # store_true flags -> (config key, value when given)
    "no_associate": ("associate.enabled", False),
    "no_video": ("output.annotated_video", False),
    "force": ("execution.force", True),
    "discard_edits": ("output.discard_edits", True),
    "offline": ("models.offline", True),
    "strict": ("video.strict", True),
}


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated seconds like 0,1.5, got {text!r}"
        ) from None


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (``track-cameras: error: ...``, exit 2), like every other
    error of the command."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="track-cameras",
        description="Detect, track and re-identify people across several cameras; write MOT files, "
        "a results database and annotated videos. `track-cameras export RUN_DIR` re-exports a run.",
    )
    p.add_argument(
        "--videos",
        nargs="+",
        metavar="PATH",
        help="video files, folders of frames or MOTChallenge sequence folders, one per camera",
    )
    p.add_argument("--out", metavar="RUN_DIR", help="run directory to write")
    p.add_argument("--config", metavar="YAML", help="config file (see configs/default.yaml)")
    p.add_argument("--names", nargs="+", metavar="NAME", help="camera names (default: file stems)")
    p.add_argument("--detector", choices=["auto", "yolo", "motion", "hog"])
    p.add_argument(
        "--detector-weights",
        metavar="PATH",
        help="YOLO weights (.pt, .onnx, an OpenVINO/TensorRT export folder) or a model name to download",
    )
    p.add_argument(
        "--detections",
        nargs="+",
        metavar="DET_TXT",
        help="MOT-format detection files, one per input, replacing the detector",
    )
    p.add_argument(
        "--device", choices=["cpu", "cuda", "auto"], help="device for detection and re-identification"
    )
    p.add_argument(
        "--reid", choices=["auto", "mgn", "histogram", "onnx", "openvino", "none"], help="appearance embedder"
    )
    p.add_argument("--reid-weights", metavar="PATH", help="MGN checkpoint")
    p.add_argument(
        "--offsets", type=_floats, metavar="S1,S2", help="per-camera start time in seconds on a common clock"
    )
    p.add_argument("--frame-stride", type=int, metavar="N", help="process every N-th frame")
    p.add_argument(
        "--calibration", metavar="PATH", help="scene.json or calibration file with ground-plane homographies"
    )
    p.add_argument(
        "--no-associate", action="store_true", help="skip cross-camera association (per-camera ids)"
    )
    p.add_argument("--no-video", action="store_true", help="do not write annotated videos")
    p.add_argument("--offline", action="store_true", help="never use the network (no model downloads)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--print-config", action="store_true", help="print the effective config as YAML and exit")
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        help="run cameras in local worker processes (default) or as Ray tasks",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="parallel workers (default: min(cameras or chunks, CPU cores); 1: in this process)",
    )
    p.add_argument(
        "--ray-address", metavar="ADDR", help="Ray cluster to use (default: start Ray on this machine)"
    )
    p.add_argument(
        "--chunk-seconds",
        type=float,
        metavar="S",
        help="process long videos in time chunks of about S seconds in parallel, tracks stitched",
    )
    p.add_argument(
        "--batch-cameras",
        type=int,
        metavar="K",
        help="cameras one worker reads round-robin, with detector and re-id batches across them "
        "(cameras sharing a GPU)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="recompute every camera, ignoring the stage cache in RUN_DIR/cache (corrections are kept)",
    )
    p.add_argument(
        "--discard-edits",
        action="store_true",
        help="drop the corrections (merges, splits, labels, review answers) of a previous run in RUN_DIR "
        "instead of re-applying them (the old edit log is saved as RUN_DIR/discarded-edits.json)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="a camera that gives fewer frames than it announces (truncated video, undecodable frames) is an "
        "error, not a warning",
    )
    return p


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--offsets -1.5,0`` as ``--offsets=-1.5,0``: argparse would take a value starting with '-' for a
    flag (``-1e12,0``, ``-inf,0`` and ``-.5,0`` too; only a ``--flag`` after it is one)."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--offsets" and arg[:1] == "-" and arg[1:2] not in ("-", "h", ""):
            out[-1] = f"--offsets={arg}"
        else:
            out.append(arg)
    return out


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The config file with every given flag applied as an override of its key. A value out of range is an
    InputError naming the flag."""
    cfg = load_config(args.config)
    values = {key: getattr(args, dest) for dest, key in FLAGS.items()}
    values.update({key: value for dest, (key, value) in SWITCHES.items() if getattr(args, dest)})
    if args.device is not None:
        values["detect.device"] = values["reid.device"] = args.device
    if env.offline_requested():
        values.setdefault("models.offline", True)
    values = {key: tuple(v) if isinstance(v, list) else v for key, v in values.items() if v is not None}
    try:
        return override(cfg, **values)
    except InputError as exc:  # name the flag that set the key, when a flag did
        bad = str(exc).split(":", 1)[0]
        flags = {k: "--" + dest.replace("_", "-") for dest, k in FLAGS.items()}
        flags.update({k: "--" + dest.replace("_", "-") for dest, (k, _) in SWITCHES.items()})
        flags.update({"detect.device": "--device", "reid.device": "--device"})
        raise InputError(f"{flags[bad]}: {exc}" if bad in values and bad in flags else str(exc)) from None


@cli_entry("track-cameras")
def track_cameras(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:
        from tracker.export import main as export_main

        return export_main(argv[1:])
    args = _parser().parse_args(_join_negative_values(argv))
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s: %(message)s"
    )
    cfg = config_from_args(args)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    if not args.videos or not args.out:
        _parser().error("--videos and --out are required")
    from tracker.pipeline import run

    meta = run(args.videos, args.out, cfg, progress=not args.quiet)
    if not args.quiet:
        cams = ", ".join(f"{c['name']}: {c['tracklets']} tracklets" for c in meta["cameras"])
        ids = meta.get("num_identities")
        warned = len(meta.get("warnings") or [])
        print(
            f"wrote {args.out} ({cams}{f'; {ids} identities' if ids is not None else ''}) "
            f"in {meta['timings']['total']:.1f} s"
            + (f"; {warned} warning(s), listed in run.json" if warned else "")
        )
    return 0
