"""Per-camera tracking benchmark: our CameraTracker against ultralytics' BYTETracker and BOT-SORT.

    python benchmarks/tracking.py                     # accuracy + time table, then whole-pipeline fps
    python benchmarks/tracking.py --track min_hits=2  # add a row for our tracker with other TrackConfig knobs
                                                      # (repeat --track for more rows)
    python benchmarks/tracking.py --sweep             # also vary each TrackConfig knob alone on every set

Every tracker gets exactly the same detections, built before any clock starts:

* ``sample``: the committed synthetic scene (``sample_videos/cam*.mp4``), detections of the offline ``motion``
  detector, computed once and cached in the model cache (``tracker.env.cache_dir() / "benchmarks"``);
* ``MOT17``: the 7 MOT17 train sequences over their full length, public FRCNN detections
  (``eval-data/mot17-mini/train/<SEQ>/det/det.txt``), scored against ``eval-data/mot-gt-full``;
* ``PETS09``: PETS09-S2L1 at 480x360 with its MOT15 public (ACF) detections. Their raw scores run from -0.5 to
  139; each is replaced by its quantile among all scores of the file (a monotone map to [0, 1], the same for
  every tracker) so that the [0, 1] thresholds of all three trackers mean the same thing. Without it
  ultralytics' score fusion (IoU x score) leaves [0, 1] and the comparison is meaningless.

Time per frame is the wall time of the trackers' own per-frame ``update`` calls (plus our ``finish``, which
interpolates gaps), divided by the frames, the fastest of ``--repeat`` runs; building inputs and
writing/scoring results are outside the clock.
Accuracy is TrackEval (``tracker.evaluate.evaluate_sequences``, MOTChallenge rules), COMBINED over the
sequences of a data set.

ultralytics' trackers run with the settings of their own ``cfg/trackers/bytetrack.yaml`` and ``botsort.yaml``,
except that BOT-SORT runs without ReID (``with_reid: False``, its default) and with global motion compensation
off (``gmc_method: none``): no tracker here sees images, so this is a like-for-like, box-only comparison.
Note their ``track_buffer`` (30) counts frames whatever the frame rate; our ``max_age`` is in seconds.

The pipeline part times :func:`tracker.pipeline.process_camera` (decode + detect + track, one camera at a
time, no re-identification, association or outputs) on the sample scene with each offline detector, and YOLO
when its weights are on disk (never downloaded here)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's tracker package, not an installed one
DEFAULT_EVAL_DATA = REPO.parent / "shared" / "eval-data"
SAMPLE = REPO / "sample_videos"
MOT17_SEQS = tuple(f"MOT17-{n:02d}-FRCNN" for n in (2, 4, 5, 9, 10, 11, 13))

# One knob at a time around the defaults (``--sweep``): the TrackConfig values worth knowing about.
SWEEP: tuple[dict, ...] = (
    {"high_thresh": 0.3},
    {"high_thresh": 0.7},
    {"new_track_thresh": 0.4},
    {"new_track_thresh": 0.8},
    {"match_iou": 0.1},
    {"match_iou": 0.3},
    {"low_match_iou": 0.3},
    {"low_match_iou": 0.7},
    {"min_hits": 1},
    {"min_hits": 2},
    {"min_hits": 4},
    {"max_age": 1.0},
    {"max_age": 2.5},
    {"min_length": 1},
    {"min_length": 10},
    {"interpolate": False},
)


@dataclass
class Sequence:
    """One camera's detections and ground truth.

    ``detections``: {1-based frame: Detections (xyxy float32 pixels, confidence in [0, 1])};
    ``length``: frames in the sequence (every frame 1..length is fed, empty where there are no detections);
    ``fps``: frame rate (our tracker turns ``max_age`` seconds into frames with it); ``gt``: MOT gt file.
    """

    name: str
    detections: dict
    length: int
    fps: float
    gt: Path


@dataclass
class Outcome:
    """One tracker on one data set: COMBINED metrics and milliseconds per frame."""

    dataset: str
    tracker: str
    metrics: dict
    ms_per_frame: float
    frames: int


# ------------------------------------------------------------------------------------------------- inputs


def detector_detections(video: Path, cfg=None) -> dict:
    """Detections of one video by a detector (default: the offline ``motion`` detector), cached in the model
    cache under a key of the video's bytes, the DetectConfig and the detector's code (all of
    ``tracker/detect.py`` for the motion detector; for YOLO the ``YoloDetector`` class and the weights' file
    names, sizes and times), so that a change to the detector recomputes them. Returns {1-based frame:
    Detections}."""
    from tracker import env
    from tracker.config import DetectConfig, ModelsConfig
    from tracker.detect import build_detector, read_mot_detections
    from tracker.fsutil import atomic_write_text
    from tracker.video import open_source

    cfg = cfg or DetectConfig(detector="motion", device="cpu")
    if cfg.detector == "yolo":
        import inspect

        from tracker.detect import YoloDetector

        weights = Path(cfg.weights)
        files = sorted(weights.rglob("*")) if weights.is_dir() else [weights]
        code = inspect.getsource(YoloDetector).encode()
        code += repr([(f.name, f.stat().st_size, f.stat().st_mtime) for f in files if f.is_file()]).encode()
    else:
        code = (REPO / "tracker" / "detect.py").read_bytes()
    key = hashlib.sha1(video.read_bytes() + repr(cfg).encode() + code).hexdigest()[:16]
    cache = env.cache_dir() / "benchmarks" / f"{video.stem}-{cfg.detector}-{key}.txt"
    if not cache.is_file():
        source = open_source(video)
        detector = build_detector(cfg, ModelsConfig(offline=True), source)
        lines = []
        frames = iter(source)
        while chunk := [f for _, f in zip(range(cfg.batch), frames)]:
            for frame, dets in zip(chunk, detector.detect(chunk)):
                lines += [
                    f"{frame.index},-1,{x:.2f},{y:.2f},{w:.2f},{h:.2f},{c:.4f}\n"
                    for (x, y, w, h), c in zip(dets.xywh.tolist(), dets.confidence.tolist())
                ]
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, "".join(lines))
    return read_mot_detections(cache)


def sample_scene() -> list[Sequence]:
    """The committed sample scene's cameras with motion-detector detections (empty when it is absent)."""
    from tracker.video import open_source

    out = []
    for video in sorted(SAMPLE.glob("cam*.mp4")):
        gt = SAMPLE / "gt" / f"{video.stem}.txt"
        if not gt.is_file():
            continue
        info = open_source(video).info
        out.append(Sequence(video.stem, detector_detections(video), int(info.frames_total or 0), info.fps, gt))
    return out


def mot17(eval_data: Path) -> list[Sequence]:
    """The 7 MOT17 train sequences, full length, public FRCNN detections."""
    from tracker.detect import read_mot_detections
    from tracker.video import open_source

    out = []
    for seq in MOT17_SEQS:
        folder = eval_data / "mot17-mini" / "train" / seq
        info = open_source(folder).info
        gt = eval_data / "mot-gt-full" / "gt" / "mot_challenge" / "MOT17-train" / seq / "gt" / "gt.txt"
        out.append(
            Sequence(
                seq, read_mot_detections(folder / "det" / "det.txt"), int(info.frames_total), info.fps, gt
            )
        )
    return out


def quantile_scores(by_frame: dict) -> dict:
    """The same detections with each score replaced by its quantile among all scores (ties share the mean
    rank).

    A monotone map onto [0, 1]: the order of scores is kept, thresholds become "keep the top (1 - t)".
    """
    from tracker.types import Detections

    frames = sorted(by_frame)
    scores = np.concatenate([by_frame[f].confidence for f in frames]) if frames else np.zeros(0)
    order = np.sort(scores)
    ranks = (np.searchsorted(order, scores, "left") + np.searchsorted(order, scores, "right")) / 2
    q = (ranks / max(len(scores), 1)).astype(np.float32)
    out, start = {}, 0
    for f in frames:
        n = len(by_frame[f])
        out[f] = Detections(by_frame[f].xyxy, q[start : start + n])
        start += n
    return out


def pets(eval_data: Path) -> list[Sequence]:
    """PETS09-S2L1 (795 frames, 480x360) with quantile-normalised public ACF detections, at the avi's 10
    fps."""
    from tracker.detect import read_mot_detections

    folder = eval_data / "pets09-s2l1-vtest" / "PETS09-S2L1-480x360"
    dets = quantile_scores(read_mot_detections(folder / "det" / "det.txt"))
    return [Sequence("PETS09-S2L1", dets, 795, 10.0, folder / "gt" / "gt.txt")]


# ----------------------------------------------------------------------------------------------- trackers


def run_ours(seq: Sequence, cfg=None) -> tuple[np.ndarray, float]:
    """Our CameraTracker over every frame; returns (MOT rows (N, 7) frame,id,x,y,w,h,conf, seconds)."""
    from tracker.config import TrackConfig
    from tracker.track import CameraTracker
    from tracker.types import Detections

    inputs = [
        (f, (f - 1) / seq.fps, seq.detections.get(f, Detections.empty())) for f in range(1, seq.length + 1)
    ]
    tracker = CameraTracker(cfg or TrackConfig(), seq.fps, seq.name)
    start = time.perf_counter()
    for frame, t, dets in inputs:
        tracker.update(frame, t, dets)
    tracklets = tracker.finish()
    seconds = time.perf_counter() - start
    parts = [
        np.c_[
            tr.frames,
            np.full(len(tr), tr.track_id),
            tr.boxes[:, :2],
            tr.boxes[:, 2:] - tr.boxes[:, :2],
            tr.scores,
        ]
        for tr in tracklets
    ]
    return (np.concatenate(parts) if parts else np.zeros((0, 7))), seconds


class _Boxes:
    """The results-like object ultralytics' trackers read: ``xyxy``, ``xywh`` (centre x, y, w, h), ``conf``,
    ``cls`` (all 0, person), ``len()`` and indexing by boolean mask."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray):
        self.xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        self.conf = np.asarray(conf, np.float32)
        self.cls = np.zeros(len(self.conf), np.float32)
        self.xywh = np.c_[(self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2, self.xyxy[:, 2:] - self.xyxy[:, :2]]

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index) -> _Boxes:
        return _Boxes(self.xyxy[index], self.conf[index])


def ultralytics_args(kind: str):
    """Namespace of ultralytics' own tracker YAML (``bytetrack`` or ``botsort``); BOT-SORT: ReID and GMC
    off."""
    from tracker.config import ModelsConfig
    from tracker.detect import _prepare_ultralytics

    _prepare_ultralytics(ModelsConfig(offline=True))
    import ultralytics
    import yaml

    path = Path(ultralytics.__file__).parent / "cfg" / "trackers" / f"{kind}.yaml"
    args = yaml.safe_load(path.read_text())
    if kind == "botsort":
        args.update(with_reid=False, gmc_method="none")
    return argparse.Namespace(**args)


def run_ultralytics(seq: Sequence, kind: str) -> tuple[np.ndarray, float]:
    """ultralytics' BYTETracker (``bytetrack``) or BOTSORT (``botsort``) over every frame; as
    :func:`run_ours`."""
    args = ultralytics_args(kind)
    from ultralytics.trackers import BOTSORT, BYTETracker

    empty = _Boxes(np.zeros((0, 4)), np.zeros(0))
    inputs = [
        _Boxes(d.xyxy, d.confidence) if (d := seq.detections.get(f)) is not None else empty
        for f in range(1, seq.length + 1)
    ]
    tracker = (BYTETracker if kind == "bytetrack" else BOTSORT)(args)
    outputs = []
    start = time.perf_counter()
    for boxes in inputs:
        outputs.append(tracker.update(boxes, None))
    seconds = time.perf_counter() - start
    parts = [
        np.c_[np.full(len(o), f), o[:, 4], o[:, :2], o[:, 2:4] - o[:, :2], o[:, 5]]
        for f, o in enumerate(outputs, start=1)
        if len(o)
    ]
    return (np.concatenate(parts) if parts else np.zeros((0, 7))), seconds


TRACKERS: dict[str, Callable[[Sequence], tuple[np.ndarray, float]]] = {
    "ours": run_ours,
    "ultralytics BYTETracker": lambda s: run_ultralytics(s, "bytetrack"),
    "ultralytics BOTSORT (no ReID, no GMC)": lambda s: run_ultralytics(s, "botsort"),
}


def score(
    name: str,
    seqs: list[Sequence],
    run: Callable[[Sequence], tuple[np.ndarray, float]],
    dataset: str,
    repeat: int = 1,
) -> Outcome:
    """Run one tracker over a data set's sequences and score them together with TrackEval.

    Each sequence is tracked ``repeat`` times (the trackers are deterministic) and its fastest time counts,
    which keeps other processes on a shared machine out of the figure as far as possible.
    """
    from tracker.evaluate import evaluate_sequences
    from tracker.export import mot_text

    seconds, frames, pairs = 0.0, 0, {}
    with tempfile.TemporaryDirectory(prefix="bench-track-") as tmp:
        for seq in seqs:
            runs = [run(seq) for _ in range(max(1, repeat))]
            rows, dt = runs[-1][0], min(t for _, t in runs)
            seconds += dt
            frames += seq.length
            rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
            path = Path(tmp) / f"{seq.name}.txt"
            path.write_text(mot_text(rows))
            pairs[seq.name] = (seq.gt, path)
        metrics = evaluate_sequences(pairs, {s.name: s.length for s in seqs})["COMBINED"]
    return Outcome(dataset, name, metrics, 1000.0 * seconds / max(frames, 1), frames)


def accuracy_table(outcomes: list[Outcome]) -> str:
    head = ("data set", "tracker", "frames", "ms/frame", "HOTA", "IDF1", "MOTA", "IDSW", "FP", "FN")
    rows = [
        (
            o.dataset,
            o.tracker,
            str(o.frames),
            f"{o.ms_per_frame:.2f}",
            *(f"{100 * o.metrics[k]:.1f}" for k in ("HOTA", "IDF1", "MOTA")),
            *(str(o.metrics[k]) for k in ("IDSW", "FP", "FN")),
        )
        for o in outcomes
    ]
    return _table(head, rows)


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)])


# ----------------------------------------------------------------------------------------------- pipeline


def pipeline_fps(detectors: list[str], frames: dict[str, int]) -> str:
    """Frames per second of process_camera per camera on the sample scene, per detector."""
    from tracker.config import DetectConfig, PipelineConfig
    from tracker.detect import resolve_yolo_weights
    from tracker.pipeline import process_camera
    from tracker.video import open_source

    videos = sorted(SAMPLE.glob("cam*.mp4"))
    head = ("detector", "cameras", "frames/cam", "fps/camera", "decode ms", "detect ms", "track ms")
    rows = []
    for kind in detectors:
        if kind == "yolo":
            weights, _ = resolve_yolo_weights(DetectConfig().weights, download=False)
            if weights is None:
                rows.append((kind, "-", "-", "skipped: no weights offline", "-", "-", "-"))
                continue
        cfg = dataclasses.replace(PipelineConfig(), detect=DetectConfig(detector=kind))
        walls, done, parts = [], [], {"decode": 0.0, "detect": 0.0, "track": 0.0}
        for video in videos:
            source = open_source(video)
            if frames.get(kind, 0) > 0:
                source = source.window(1, frames[kind] + 1)
            start = time.perf_counter()
            result = process_camera(source, cfg, progress=False)
            walls.append(time.perf_counter() - start)
            done.append(result.info.frames_processed)
            for k in parts:
                parts[k] += result.timings[k]
        total = sum(done)
        rows.append(
            (
                kind,
                str(len(videos)),
                str(total // len(videos)),
                f"{total / sum(walls):.1f}",
                *(f"{1000 * parts[k] / total:.1f}" for k in ("decode", "detect", "track")),
            )
        )
    return _table(head, rows) + (
        "\nfps/camera: frames / wall time of process_camera (includes building the "
        "detector and, for motion, its background model from 25 sampled frames)"
    )


# --------------------------------------------------------------------------------------------------- main


def _knob(text: str) -> tuple[str, object]:
    from tracker.config import TrackConfig

    key, _, value = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(TrackConfig)}
    if key not in fields or not value:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE with KEY one of {', '.join(fields)}")
    kind = type(getattr(TrackConfig(), key))
    if kind is bool:
        return key, value.lower() in ("1", "true", "yes")
    return key, kind(value)


def _environment() -> str:
    load = os.getloadavg()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min), python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--eval-data",
        type=Path,
        default=DEFAULT_EVAL_DATA,
        help="real data folder (MOT17 and PETS rows are skipped when absent)",
    )
    parser.add_argument("--datasets", default="sample,MOT17,PETS09", help="comma-separated subset")
    parser.add_argument(
        "--track",
        type=_knob,
        nargs="+",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="also run our tracker with these TrackConfig values (repeat for more rows)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="track each sequence this many times and report the fastest (default 3)",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="vary each TrackConfig knob alone on every data set"
    )
    parser.add_argument("--detectors", default="motion,hog,yolo", help="detectors for the pipeline fps table")
    parser.add_argument(
        "--hog-frames", type=int, default=20, help="frames per camera timed for hog (slow on CPU); 0 = all"
    )
    parser.add_argument("--no-pipeline", action="store_true", help="skip the pipeline fps table")
    args = parser.parse_args(argv)
    os.environ.setdefault("MULTICAM_TRACKER_OFFLINE", "1")

    from tracker.config import TrackConfig

    print(f"machine: {_environment()}")
    wanted = [d.strip() for d in args.datasets.split(",") if d.strip()]
    loaders = {
        "sample": sample_scene,
        "MOT17": lambda: mot17(args.eval_data),
        "PETS09": lambda: pets(args.eval_data),
    }
    data: dict[str, list[Sequence]] = {}
    for name in wanted:
        if name not in loaders:
            parser.error(f"--datasets: unknown data set {name!r} (known: {', '.join(loaders)})")
        if name != "sample" and not args.eval_data.is_dir():
            print(f"{name}: skipped, {args.eval_data} is absent")
            continue
        seqs = loaders[name]()
        if seqs:
            data[name] = seqs
        else:
            print(f"{name}: skipped, no sequences found")

    trackers = dict(TRACKERS)
    for knobs in args.track:
        tuned = dataclasses.replace(TrackConfig(), **dict(knobs))
        label = "ours " + " ".join(f"{k}={v}" for k, v in knobs)
        trackers[label] = lambda s, c=tuned: run_ours(s, c)
    outcomes = [
        score(name, seqs, run, ds, args.repeat) for ds, seqs in data.items() for name, run in trackers.items()
    ]
    print("\nPer-camera trackers on the same detections (TrackEval COMBINED over each data set's sequences)")
    print(accuracy_table(outcomes))

    if args.sweep:
        sweep = []
        for ds, seqs in data.items():
            for change in ({}, *SWEEP):
                cfg = dataclasses.replace(TrackConfig(), **change)
                label = "ours " + (" ".join(f"{k}={v}" for k, v in change.items()) or "(defaults)")
                sweep.append(score(label, seqs, lambda s, c=cfg: run_ours(s, c), ds))
        print("\nTrackConfig, one knob at a time (everything else at its default)")
        print(accuracy_table(sweep))

    if not args.no_pipeline:
        detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
        print("\nWhole-camera processing on the sample scene (tracker.pipeline.process_camera)")
        print(pipeline_fps(detectors, {"hog": args.hog_frames}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
