"""``track-sim``: render a synthetic multi-camera scene with ground truth, drawn people (:mod:`.render`) or real
ReID crops on a real background (:mod:`.composite`). Run it as ``track-sim`` or ``python -m tracker.synthetic``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tracker.errors import InputError, cli_entry
from tracker.synthetic.composite import render_composite
from tracker.synthetic.render import render_scene


@cli_entry("track-sim")
def main(argv: list[str] | None = None) -> int:
    """``track-sim``: render a synthetic multi-camera scene with ground truth (``--crops``: semi-real)."""
    ap = argparse.ArgumentParser(prog="track-sim", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (videos, gt/, scene.json)")
    ap.add_argument(
        "--cameras", type=int, default=None, help="number of cameras, 2-6 (default 3; 4 with --crops)"
    )
    ap.add_argument("--people", type=int, default=None, help="number of people (default 12; 14 with --crops)")
    ap.add_argument(
        "--seconds", type=float, default=None, help="length in seconds (default 30; 40 with --crops)"
    )
    ap.add_argument("--seed", type=int, default=7, help="random seed: the same seed gives the same scene")
    ap.add_argument(
        "--overlap",
        type=float,
        default=0.3,
        help="fraction of a view shared by overlapping camera pairs, 0-0.9 (default 0.3)",
    )
    ap.add_argument("--fps", type=float, default=15, help="frames per second (default 15)")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument(
        "--crops",
        metavar="DIR",
        help="semi-real scene: real people from this ReID crops folder (Market-1501 or MARS layout)",
    )
    ap.add_argument(
        "--background",
        nargs="+",
        metavar="PATH",
        help="with --crops: real background video(s), frame folder(s) or image(s), one per camera "
        "in turn (the median of up to 25 frames)",
    )
    ap.add_argument(
        "--crop-split",
        default="test",
        choices=["test", "train", "all"],
        help="with --crops: which identities to use (default test: never those a ReID model trains on)",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    args = ap.parse_args(argv)
    if bool(args.crops) != bool(args.background):
        raise InputError("--crops and --background go together (real people on a real background)")
    start = time.perf_counter()
    fps = int(args.fps) if float(args.fps).is_integer() else args.fps
    real = bool(args.crops)
    cameras = args.cameras if args.cameras is not None else (4 if real else 3)
    people = args.people if args.people is not None else (14 if real else 12)
    seconds = args.seconds if args.seconds is not None else (40 if real else 30)
    seconds = int(seconds) if float(seconds).is_integer() else seconds
    if real:
        scene = render_composite(
            args.out,
            args.crops,
            args.background,
            cameras,
            people,
            seconds,
            args.seed,
            args.overlap,
            fps,
            args.width,
            args.height,
            args.crop_split,
            progress=not args.quiet,
        )
    else:
        scene = render_scene(
            args.out,
            cameras,
            people,
            seconds,
            args.seed,
            args.overlap,
            fps,
            args.width,
            args.height,
            progress=not args.quiet,
        )
    if not args.quiet:
        size = sum((Path(args.out) / c["video"]).stat().st_size for c in scene["cameras"]) / 1e6
        print(
            f"track-sim: wrote {len(scene['cameras'])} cameras x {round(seconds * fps)} frames, "
            f"{len(scene['people'])} people to {args.out} ({size:.1f} MB video) in "
            f"{time.perf_counter() - start:.1f} s"
        )
    return 0
