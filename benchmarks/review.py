"""Review benchmark: a simulated reviewer answers the review queue from ground truth; multi-camera IDF1 after
0, 5, 10, 20 and 50 answers.

    python benchmarks/review.py                                   # rendered scenes, the sample scene, devset
    python benchmarks/review.py --seeds 21 22 23 --modes gt e2e   # which rendered scenes, which runs
    python benchmarks/review.py --no-devset --no-sample           # rendered scenes only
    python benchmarks/review.py --scale 1000 10000 --no-scenes    # seconds per answer against run size

Scenes: ``sample_videos/`` (12 people, 3 cameras) with its gt; 4-camera, 14-person, 40 s scenes rendered by
``python -m tracker.synthetic.render --out DIR --cameras 4 --people 14 --seconds 40 --seed S --overlap 0.3``
(``--seeds``, rendered into ``--scenes`` once); and, when ``/tmp/multicam-devset/manifest.json`` exists (the
semi-real scenes of the identity issue: real re-identification crops on a real background), every scene it
lists. Each scene is run by ``track-cameras`` twice (``--modes``): ``gt`` with the ground-truth boxes as
detections (``--detections gt/<cam>.txt ...``: association is all that is left to get wrong) and ``e2e``
end to end (the motion detector); both offline (histogram embedder), with the scene's calibration
(``--calibration scene.json``; ``--no-calibration`` leaves it out) and ``--no-video``. ``--yolo WEIGHTS``
runs end to end with YOLO instead (for example the OpenVINO export of YOLOv8n).

The reviewer works through the command line exactly as a script would: ``track-review RUN --next --json``,
then ``--answer ID same|different|skip`` (in this process, through :func:`tracker.review.cli.run_cli`). It
decides from the JSON's ``samples`` (up to 5 boxes per tracklet): each box is matched to the ground-truth box
of that camera and frame with the highest IoU (at least 0.5), the tracklet is the person most of its samples
match; ``same`` when both tracklets are the same person, ``different`` when they are not (or one of them
matches nobody), ``skip`` when neither matches anybody. After each checkpoint the run is scored with
:func:`tracker.evaluate.evaluate_run` (TrackEval, ``ALL``: all cameras as one sequence, so a person must keep
one id across cameras). *oracle* is the IDF1 when every tracklet gets its true person (its majority gt id over
all its boxes): the best any answers can reach with these tracklets.

``--scale N ...``: synthetic stores of N tracklets (:func:`tracker.synthetic.tracklets.synthetic_scene`, 8
cameras on 5 zones, 128-d embeddings, people arriving at 1 per second, no pixels) written as the pipeline
writes them; the time to make the queue (one association of the whole run), the mean time of 10 answers
(truthful, from the scene's identities; each re-associates only the part of the run it affects), and beside
it one association of the whole run with the answers' constraints (what re-associating everything would cost
per answer).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tracker.evaluate import GroundTruth

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's tracker, not another install
CHECKPOINTS = (0, 5, 10, 20, 50)
DEVSET = Path("/tmp/multicam-devset/manifest.json")


def render(scene: Path, seed: int) -> None:
    if (scene / "scene.json").is_file():
        return
    cmd = [sys.executable, "-m", "tracker.synthetic.render", "--out", str(scene), "--cameras", "4"]
    cmd += ["--people", "14", "--seconds", "40", "--seed", str(seed), "--overlap", "0.3", "--quiet"]
    subprocess.run(cmd, check=True, cwd=REPO)


def track(
    scene: Path, run: Path, mode: str, calibration: bool, detector: list[str] = ("--detector", "motion")
) -> float:
    """Run track-cameras on a scene into ``run`` (reused when it is there); returns its wall seconds."""
    if (run / "run.json").is_file():
        return float(json.loads((run / "run.json").read_text())["timings"]["total"])
    cams = sorted(p.stem for p in (scene / "gt").glob("*.txt"))
    cmd = [sys.executable, "-m", "tracker", "--videos", *(str(scene / f"{c}.mp4") for c in cams)]
    cmd += ["--out", str(run), *detector, "--reid", "histogram", "--offline", "--no-video"]
    cmd += ["--quiet", "--workers", "1"]
    if mode == "gt":
        cmd += ["--detections", *(str(scene / "gt" / f"{c}.txt") for c in cams)]
    if calibration:
        cmd += ["--calibration", str(scene / "scene.json")]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return time.perf_counter() - started


def reply(truth: GroundTruth, question: dict) -> str:
    from tracker.geometry import xywh_to_xyxy

    sides = []
    for side in ("a", "b"):
        s = question[side]
        samples = np.asarray(s["samples"], np.float64).reshape(-1, 5)
        sides.append(truth.person(s["camera"], samples[:, 0], xywh_to_xyxy(samples[:, 1:5])))
    if sides[0] is None and sides[1] is None:
        return "skip"
    return "same" if sides[0] == sides[1] else "different"


def cli(*args: str) -> str:
    from tracker.review.cli import run_cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_cli(list(args))
    return out.getvalue()


def idf1(run: Path, gt: Path) -> float:
    from tracker.evaluate import evaluate_run

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return float(evaluate_run(run, gt)["ALL"]["IDF1"])


def oracle(run: Path, gt: Path, truth: GroundTruth, work: Path) -> float:
    """IDF1 with every tracklet given its majority gt person (unmatched ones keep an id of their own)."""
    from tracker.fsutil import atomic_write_text
    from tracker.mot import mot_text, tracklet_rows
    from tracker.store import ResultsStore

    shutil.rmtree(work, ignore_errors=True)
    (work / "mot").mkdir(parents=True)
    shutil.copy2(run / "run.json", work / "run.json")
    with ResultsStore.open(run / "results.sqlite", readonly=True) as store:
        tracklets = store.tracklets(crops=False)
    by_camera: dict[str, tuple[list, list]] = {}
    taken: dict[tuple[str, int], set[int]] = {}  # (camera, person) -> frames already given to a tracklet
    for n, t in enumerate(sorted(tracklets, key=lambda t: -len(t))):
        p = truth.person(t.camera, t.frames, t.boxes)
        frames = set(t.frames.tolist())
        if p is not None and frames & taken.get((t.camera, p), set()):
            p = None  # one person twice in one frame: this impure tracklet keeps an id of its own
        if p is not None:
            taken.setdefault((t.camera, p), set()).update(frames)
        items, ids = by_camera.setdefault(t.camera, ([], []))
        items.append(t)
        ids.append(p if p is not None else 100_000 + n)
    for cam, (items, ids) in by_camera.items():
        atomic_write_text(work / "mot" / f"{cam}.txt", mot_text(tracklet_rows(items, ids)))
    return idf1(work, gt)


def review(run: Path, gt: Path, checkpoints, work: Path) -> dict:
    """The simulated reviewer on a copy of ``run``; IDF1 at each checkpoint and what it answered."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(run, work, ignore=shutil.ignore_patterns("cache"))
    from tracker.evaluate import GroundTruth

    truth = GroundTruth(gt)
    scores, replies, seconds = {}, [], []
    last = max(checkpoints)
    exhausted = None
    for n in range(last + 1):
        if n in checkpoints:
            scores[n] = idf1(work, gt)
        if n == last:
            break
        question = json.loads(cli(str(work), "--next", "--json"))
        if question["id"] is None:
            exhausted = n
            for m in checkpoints:
                if m > n:
                    scores[m] = scores.get(m, idf1(work, gt))
            break
        r = reply(truth, question)
        started = time.perf_counter()
        cli(str(work), "--answer", str(question["id"]), r)
        seconds.append(time.perf_counter() - started)
        replies.append(r)
    return {
        "idf1": scores,
        "replies": replies,
        "exhausted_after": exhausted,
        "answer_s": float(np.mean(seconds)) if seconds else 0.0,
        "truth": truth,
    }


def scale_row(n: int, work: Path) -> dict:
    """Seconds to make the queue and per answer on a synthetic store of ``n`` tracklets (module docstring)."""
    import dataclasses

    from tracker.association import associate
    from tracker.config import AssociateConfig, PipelineConfig, to_dict
    from tracker.review import active_constraints, answer, build_queue, ranked
    from tracker.store import ResultsStore, write_store
    from tracker.synthetic.tracklets import synthetic_scene
    from tracker.types import CameraInfo

    zones = (0, 0, 1, 1, 2, 2, 3, 4)
    scene = synthetic_scene(
        int(n / 6 * 1.15) + 10, zones, dim=128, seed=0, rate=1.0, look_alike=0.5, noise=0.7
    )
    order = sorted(range(len(scene.tracklets)), key=lambda i: scene.tracklets[i].start_time)[:n]
    tracklets = [scene.tracklets[i] for i in order]
    truth = {t.key: int(scene.person[i]) for t, i in zip(tracklets, order)}
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cal = work / "calibration.json"
    cal.write_text(json.dumps({c: h.tolist() for c, h in scene.calibration.homographies.items()}))
    cfg = dataclasses.replace(
        PipelineConfig(), associate=AssociateConfig(links=scene.links, calibration=str(cal))
    )
    assoc = associate(tracklets, cfg.associate, scene.calibration)
    for t, g in zip(tracklets, assoc.global_ids):
        t.global_id = int(g)
    last = max(int(t.frames[-1]) for t in tracklets)
    cams = [
        CameraInfo(c, c, 640, 360, 5.0, 0.0, last, last, h)
        for c, h in sorted(scene.calibration.homographies.items())
    ]
    meta = {"config": to_dict(cfg), "association": assoc.info}
    write_store(
        work / "results.sqlite", meta=meta, cameras=cams, tracklets=tracklets, evidence=assoc.evidence
    )
    with ResultsStore.open(work / "results.sqlite") as store:
        started = time.perf_counter()
        build_queue(store)
        build_s = time.perf_counter() - started
        threshold = cfg.associate.threshold
        answer_s = []
        for _ in range(10):
            q = ranked(store, threshold, limit=1)[0].question
            started = time.perf_counter()
            answer(store, q.id, "same" if truth[q.a] == truth[q.b] else "different")
            answer_s.append(time.perf_counter() - started)
        cons = active_constraints(store)
        everything = store.tracklets(crops=False)
    scale = dataclasses.replace(cfg.associate, appearance_scale=assoc.info["appearance_scale"])
    started = time.perf_counter()
    associate(everything, scale, scene.calibration, cons)
    full_s = time.perf_counter() - started
    return {
        "tracklets": n,
        "build_s": build_s,
        "answer_s": float(np.mean(answer_s)),
        "answer_max_s": float(np.max(answer_s)),
        "full_s": full_s,
    }


def scenes(args) -> list[tuple[str, Path, int]]:
    """(name, scene folder, people) of every scene to run."""
    out = []
    if args.sample:
        out.append(("sample", REPO / "sample_videos", 12))
    for seed in args.seeds:
        path = args.scenes / f"render-{seed}"
        render(path, seed)
        out.append((f"render-{seed}", path, 14))
    if args.devset and DEVSET.is_file():
        for s in json.loads(DEVSET.read_text())["scenes"]:
            out.append((s["name"], DEVSET.parent / s["dir"], int(s["people"])))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[21, 22, 23])
    parser.add_argument("--scenes", type=Path, default=Path("/tmp/multicam-review-scenes"))
    parser.add_argument("--runs", type=Path, default=Path("/tmp/multicam-review-runs"))
    parser.add_argument("--modes", nargs="+", default=["gt", "e2e"], choices=["gt", "e2e"])
    parser.add_argument("--no-sample", dest="sample", action="store_false")
    parser.add_argument("--no-devset", dest="devset", action="store_false")
    parser.add_argument("--no-calibration", dest="calibration", action="store_false")
    parser.add_argument(
        "--yolo",
        type=Path,
        metavar="WEIGHTS",
        help="end to end with YOLO (these weights, e.g. an OpenVINO export) instead of the motion detector",
    )
    parser.add_argument("--answers", type=int, nargs="+", default=list(CHECKPOINTS))
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--scale", type=int, nargs="*", default=[], help="synthetic run sizes (tracklets)")
    parser.add_argument("--no-scenes", dest="scenes_on", action="store_false", help="only the --scale rows")
    args = parser.parse_args(argv)
    if args.scale:
        rows = [scale_row(n, args.runs / "scale") for n in args.scale]
        print("| tracklets | make the queue (s) | one answer, mean / max (s) | whole run associated (s) |")
        print("|---|---|---|---|")
        for r in rows:
            answers = f"{r['answer_s']:.2f} / {r['answer_max_s']:.2f}"
            print(f"| {r['tracklets']:,} | {r['build_s']:.1f} | {answers} | {r['full_s']:.1f} |")
        if not args.scenes_on:
            return 0
    checkpoints = sorted(set(args.answers) | {0})
    rows = []
    tag = ("cal" if args.calibration else "nocal") + ("-yolo" if args.yolo else "")
    detector = (
        ["--detector", "yolo", "--detector-weights", str(args.yolo)]
        if args.yolo
        else ["--detector", "motion"]
    )
    for name, scene, people in scenes(args):
        gt = scene / "gt"
        cams = len(list(gt.glob("*.txt")))
        for mode in args.modes:
            run = args.runs / f"{name}-{mode}-{tag}"
            track_s = track(scene, run, mode, args.calibration, detector)
            result = review(run, gt, checkpoints, args.runs / "work")
            best = oracle(args.runs / "work", gt, result["truth"], args.runs / "oracle")
            with open(run / "run.json") as f:
                tracklets = json.load(f)["num_tracklets"]
            row = {
                "scene": name,
                "boxes": mode,
                "cameras": cams,
                "people": people,
                "tracklets": tracklets,
                "idf1": {str(k): round(v, 3) for k, v in result["idf1"].items()},
                "oracle": round(best, 3),
                "same": result["replies"].count("same"),
                "different": result["replies"].count("different"),
                "skip": result["replies"].count("skip"),
                "exhausted_after": result["exhausted_after"],
                "answer_s": round(result["answer_s"], 3),
                "track_s": round(track_s, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}; calibration: {'scene.json' if args.calibration else 'none'}"
    )
    head = " | ".join(f"IDF1 @{k}" for k in checkpoints)
    print(
        f"| scene | boxes | cameras | people | tracklets | {head} | oracle | answers same / different / skip "
        "| s per answer |"
    )
    print("|---|---|---|---|---|" + "---|" * len(checkpoints) + "---|---|---|")
    for r in rows:
        cells = " | ".join(f"{r['idf1'][str(k)]:.3f}" for k in checkpoints)
        ran_out = f" (queue empty after {r['exhausted_after']})" if r["exhausted_after"] is not None else ""
        print(
            f"| {r['scene']} | {r['boxes']} | {r['cameras']} | {r['people']} | {r['tracklets']} | {cells} | "
            f"{r['oracle']:.3f} | {r['same']} / {r['different']} / {r['skip']}{ran_out} | "
            f"{r['answer_s']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
