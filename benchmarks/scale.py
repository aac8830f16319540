"""Scale benchmark: wall time, peak memory and throughput of ``track-cameras`` for 1, 2, 4 and 8 cameras
with the sequential, local-process and Ray executors; on a CUDA GPU also how many 1080p 25 fps streams
YOLO + MGN keep up with in real time.

    .venv/bin/python benchmarks/scale.py [--seconds 10] [--cameras 1 2 4 8] [--executors sequential local ray]

Scenes come from ``track-sim`` (two 4-camera scenes, 640x360, 15 fps, rendered once into ``--scenes``). Every
run is a fresh ``track-cameras`` process on a fresh run directory (no stage cache), with the offline motion
detector and histogram re-id, association on, no annotated video. ``wall`` is the whole command (interpreter
start, model set-up, association and the results store included), ``stage`` the camera stage alone (run.json
``execution.wall_s``); throughput is camera-seconds of video per wall-second; ``peak RSS`` is the driver plus
the sum of the worker processes' peaks (run.json ``peak_rss_total_mb``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXECUTORS = {
    "sequential": ["--executor", "local", "--workers", "1"],
    "local": ["--executor", "local", "--workers", "2"],
    "ray": ["--executor", "ray", "--workers", "2"],
}
SCENE_CAMERAS = 4
CLI = "from tracker.cli import track_cameras; track_cameras()"


def scenes(folder: Path, seconds: float, width: int = 640, height: int = 360, fps: float = 15) -> list[Path]:
    """Two 4-camera scenes (seeds 1 and 2); rendered unless already there with the same settings.

    ``track-sim`` runs in its own process: this one stays small, as the commands it starts inherit its peak
    RSS in ``ru_maxrss``."""
    out = []
    for seed in (1, 2):
        d = folder / f"scene{seed}-{seconds:g}s-{width}x{height}-{fps:g}fps"
        if not (d / "scene.json").is_file():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tracker.synthetic",
                    "--out",
                    str(d),
                    "--cameras",
                    str(SCENE_CAMERAS),
                    "--people",
                    "8",
                    "--seconds",
                    f"{seconds:g}",
                    "--seed",
                    str(seed),
                    "--fps",
                    f"{fps:g}",
                    "--width",
                    str(width),
                    "--height",
                    str(height),
                    "--quiet",
                ],
                check=True,
            )
        out.append(d)
    return out


def videos(scene_dirs: list[Path], n: int) -> list[Path]:
    """The first ``n`` videos over the scenes, cycling when more are asked for than exist."""
    all_videos = [d / f"cam{i + 1}.mp4" for d in scene_dirs for i in range(SCENE_CAMERAS)]
    return [all_videos[i % len(all_videos)] for i in range(n)]


def track(paths: list[Path], flags: list[str], work: Path) -> dict:
    """Run ``track-cameras`` once in a fresh process; returns its wall time and run.json."""
    out = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    names = [f"c{i + 1}" for i in range(len(paths))]
    cmd = [
        sys.executable,
        "-c",
        CLI,
        "--videos",
        *map(str, paths),
        "--names",
        *names,
        "--out",
        str(out),
        "--no-video",
        "--quiet",
        "--offline",
        *flags,
    ]
    env = {**os.environ, "MULTICAM_TRACKER_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"track-cameras failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return {"wall": wall, "meta": json.loads((out / "run.json").read_text())}


def cpu_table(args) -> list[dict]:
    scene_dirs = scenes(args.scenes, args.seconds)
    rows = []
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        for n in args.cameras:
            for name in args.executors:
                if name == "ray" and not _has_ray():
                    print(f"{n} cameras, ray: skipped: Ray is not installed", flush=True)
                    continue
                flags = EXECUTORS[name] + ["--detector", "motion", "--reid", "histogram"]
                r = track(videos(scene_dirs, n), flags, Path(tmp))
                ex = r["meta"]["execution"]
                row = {
                    "cameras": n,
                    "executor": name,
                    "workers": ex["workers"],
                    "wall_s": round(r["wall"], 1),
                    "stage_s": ex["wall_s"],
                    "cam_s_per_s": round(n * args.seconds / r["wall"], 2),
                    "peak_rss_total_mb": r["meta"]["peak_rss_total_mb"],
                    "peak_rss_driver_mb": r["meta"]["peak_rss_mb"],
                    "peak_rss_worker_max_mb": max(ex["peak_rss_workers_mb"].values(), default=0.0),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def _has_ray() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def cuda_streams(args) -> str:
    """The most 1080p 25 fps streams processed in real time (camera stage no slower than the video) with YOLO
    and MGN on the first CUDA GPU, cameras batched across worker processes; or why it was skipped."""
    import torch

    if not torch.cuda.is_available():
        return "skipped: no CUDA GPU"
    from tracker.config import DetectConfig, ReidConfig
    from tracker.detect import resolve_yolo_weights
    from tracker.reid.weights import resolve_mgn_weights

    yolo, why = resolve_yolo_weights(args.yolo or DetectConfig().weights, download=True)
    if yolo is None:
        return f"skipped: no YOLO weights ({why})"
    reid = ReidConfig()
    mgn, why = resolve_mgn_weights(args.mgn, reid.url, True, reid.sha256)
    if mgn is None:
        return f"skipped: no MGN checkpoint ({why})"
    seconds = args.cuda_seconds
    scene_dirs = scenes(args.scenes, seconds, 1920, 1080, 25)
    workers = max(1, min(8, (os.cpu_count() or 2) // 2))
    best, lines = 0, []
    with tempfile.TemporaryDirectory(prefix="scale-cuda-") as tmp:
        for n in args.streams:
            flags = [
                "--detector",
                "yolo",
                "--detector-weights",
                str(yolo),
                "--reid",
                "mgn",
                "--reid-weights",
                str(mgn),
                "--device",
                "cuda",
                "--no-associate",
                "--workers",
                str(min(workers, n)),
                "--batch-cameras",
                str(math.ceil(n / min(workers, n))),
            ]
            r = track(videos(scene_dirs, n), flags, Path(tmp))
            stage = r["meta"]["execution"]["wall_s"]
            realtime = stage <= seconds
            lines.append(
                f"{n} streams: camera stage {stage:.1f} s for {seconds:g} s of video "
                f"({'real time' if realtime else 'slower than real time'})"
            )
            print(lines[-1], flush=True)
            if not realtime:
                break
            best = n
    gpu = torch.cuda.get_device_name(0)
    summary = f"{best} streams of 1080p 25 fps in real time on {gpu} (YOLO {yolo.name} + MGN)"
    return "\n".join([summary, *lines])


def markdown(rows: list[dict]) -> str:
    head = (
        "| cameras | executor | workers | wall s | stage s | camera-s / s | peak RSS total MiB "
        "| driver MiB | largest worker MiB |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        cells = [
            r[k]
            for k in (
                "cameras",
                "executor",
                "workers",
                "wall_s",
                "stage_s",
                "cam_s_per_s",
                "peak_rss_total_mb",
                "peak_rss_driver_mb",
                "peak_rss_worker_max_mb",
            )
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10, help="length of the synthetic scenes (default 10)")
    ap.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--executors", nargs="+", choices=list(EXECUTORS), default=list(EXECUTORS))
    ap.add_argument(
        "--scenes",
        type=Path,
        default=Path(tempfile.gettempdir()) / "multicam-scale-scenes",
        help="where the synthetic scenes are rendered (reused between runs)",
    )
    ap.add_argument(
        "--streams",
        type=int,
        nargs="+",
        default=[8, 16, 24, 32, 40, 48, 64],
        help="CUDA: stream counts to try, in increasing order",
    )
    ap.add_argument("--cuda-seconds", type=float, default=20, help="CUDA: length of the 1080p scenes")
    ap.add_argument("--yolo", help="CUDA: YOLO weights (default: the model cache)")
    ap.add_argument("--mgn", help="CUDA: MGN checkpoint (default: the model cache)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    started = time.perf_counter()
    rows = cpu_table(args)
    print()
    print(markdown(rows))
    print()
    cuda = cuda_streams(args)
    print(f"CUDA: {cuda}")
    print(f"# total {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "cuda": cuda}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
