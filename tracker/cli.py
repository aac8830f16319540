"""``track-cameras``: the whole job from the command line.

    track-cameras --videos cam1.mp4 cam2.mp4 --out runs/x [--config configs/default.yaml] ...
    track-cameras export RUN_DIR          (re-export MOT / identities / MTMC files from the results store)

Config values come from the YAML file (defaults when none is given); flags override them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from tracker.config import dump_yaml, load_config, override
from tracker.errors import InputError, cli_entry


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated seconds like 0,1.5, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="track-cameras",
        description="Detect, track and re-identify people across several cameras; write MOT files, "
        "a results database and annotated videos. `track-cameras export RUN_DIR` re-exports a run.",
    )
    p.add_argument("--videos", nargs="+", metavar="PATH",
                   help="video files, folders of frames or MOTChallenge sequence folders, one per camera")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory to write")
    p.add_argument("--config", metavar="YAML", help="config file (see configs/default.yaml)")
    p.add_argument("--names", nargs="+", metavar="NAME", help="camera names (default: file stems)")
    p.add_argument("--detector", choices=["auto", "yolo", "motion", "hog"])
    p.add_argument("--detector-weights", metavar="PATH", help="YOLO weights (.pt) or a model name to download")
    p.add_argument("--detections", nargs="+", metavar="DET_TXT",
                   help="MOT-format detection files, one per input, replacing the detector")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], help="device for detection and re-identification")
    p.add_argument("--reid", choices=["auto", "mgn", "histogram", "onnx", "openvino", "none"], help="embedder")
    p.add_argument("--reid-weights", metavar="PATH", help="MGN checkpoint")
    p.add_argument("--offsets", type=_floats, metavar="S1,S2", help="per-camera start time in seconds on a common clock")
    p.add_argument("--frame-stride", type=int, metavar="N", help="process every N-th frame")
    p.add_argument("--calibration", metavar="PATH", help="scene.json or calibration file with ground-plane homographies")
    p.add_argument("--no-associate", action="store_true", help="skip cross-camera association (per-camera ids)")
    p.add_argument("--no-video", action="store_true", help="do not write annotated videos")
    p.add_argument("--offline", action="store_true", help="never use the network (no model downloads)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--print-config", action="store_true", help="print the effective config as YAML and exit")
    p.add_argument("--executor", choices=["local", "ray"],
                   help="run cameras in local worker processes (default) or as Ray tasks")
    p.add_argument("--workers", type=int, metavar="N",
                   help="parallel workers (default: min(cameras or chunks, CPU cores); 1: in this process)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to use (default: start Ray on this machine)")
    p.add_argument("--chunk-seconds", type=float, metavar="S",
                   help="process long videos in time chunks of about S seconds in parallel, tracks stitched")
    p.add_argument("--batch-cameras", type=int, metavar="K",
                   help="cameras one worker reads round-robin, with detector and re-id batches across them "
                   "(cameras sharing a GPU)")
    p.add_argument("--force", action="store_true",
                   help="recompute every camera, ignoring the stage cache in RUN_DIR/cache")
    return p


@cli_entry("track-cameras")
def track_cameras(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:
        from tracker.export import main as export_main

        return export_main(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s: %(message)s")
    if args.offline:
        os.environ["MULTICAM_TRACKER_OFFLINE"] = "1"
    from tracker.pipeline import CameraInput, run

    cfg = load_config(args.config)
    device = args.device
    cfg = override(
        cfg,
        **{
            "detect.detector": args.detector,
            "detect.weights": args.detector_weights,
            "detect.device": device,
            "reid.device": device,
            "reid.embedder": args.reid,
            "reid.weights": args.reid_weights,
            "video.stride": args.frame_stride,
            "video.offsets": args.offsets,
            "video.names": tuple(args.names) if args.names else None,
            "associate.enabled": False if args.no_associate else None,
            "output.annotated_video": False if args.no_video else None,
            "execution.executor": args.executor,
            "execution.workers": args.workers,
            "execution.ray_address": args.ray_address,
            "execution.chunk_seconds": args.chunk_seconds,
            "execution.batch_cameras": args.batch_cameras,
            "execution.force": True if args.force else None,
        },
    )
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    if not args.videos or not args.out:
        _parser().error("--videos and --out are required")
    n = len(args.videos)
    offsets = cfg.video.offsets or (0.0,) * n
    names = cfg.video.names or (None,) * n
    dets = args.detections or [None] * n
    for what, values in (("--offsets", offsets), ("--names", names), ("--detections", dets)):
        if len(values) != n:
            raise InputError(f"{what} has {len(values)} values for {n} videos")
    inputs = [CameraInput(v, nm, off, d) for v, nm, off, d in zip(args.videos, names, offsets, dets)]
    meta = run(inputs, args.out, cfg, progress=not args.quiet, calibration=args.calibration)
    if not args.quiet:
        cams = ", ".join(f"{c['name']}: {c['tracklets']} tracklets" for c in meta["cameras"])
        ids = meta.get("num_identities")
        print(f"wrote {args.out} ({cams}{f'; {ids} identities' if ids is not None else ''}) "
              f"in {meta['timings']['total']:.1f} s")
    return 0
