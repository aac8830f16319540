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

Time per frame is the time of the trackers' own per-frame ``update`` calls (plus our ``finish``, which
interpolates gaps), divided by the frames: CPU time of this process (``time.process_time``, which leaves out
the time other processes hold the cores of a shared machine) and wall time, each the fastest of ``--repeat``
runs, run interleaved (tracker after tracker, round after round); ``speed-up`` is BYTETracker's CPU time over
the row's. Building inputs and writing/scoring results are outside the clock.
Accuracy is TrackEval (``tracker.evaluate.evaluate_sequences``, MOTChallenge rules), COMBINED over the
sequences of a data set.

ultralytics' trackers run with the settings of their own ``cfg/trackers/bytetrack.yaml`` and ``botsort.yaml``,
except that BOT-SORT runs without ReID (``with_reid: False``, its default) and with global motion compensation
off (``gmc_method: none``): no tracker here sees images, so this is a like-for-like, box-only comparison.
Note their ``track_buffer`` (30) counts frames whatever the frame rate; our ``max_age`` is in seconds.

The detector part runs PETS09-S2L1 end to end (the real video: decode + detect + our tracker, per-camera ids
as ``track-cameras --no-associate``) with the motion detector and with YOLO (``--yolo-weights``, by default
the shared YOLOv8n INT8 OpenVINO export; skipped when absent), with detection precision / recall against the
ground truth; then it times :func:`tracker.camera.process_camera` (decode + detect + track, one camera at a
time, no re-identification, association or outputs) on the sample scene with each detector."""

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
    """One tracker on one data set: COMBINED metrics and milliseconds per frame (wall and CPU)."""

    dataset: str
    tracker: str
    metrics: dict
    ms_per_frame: float  # wall
    frames: int
    cpu_ms_per_frame: float = float("nan")


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
        out.append(
            Sequence(video.stem, detector_detections(video), int(info.frames_total or 0), info.fps, gt)
        )
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


def run_ours(seq: Sequence, cfg=None) -> tuple[np.ndarray, tuple[float, float]]:
    """Our CameraTracker over every frame; returns (MOT rows (N, 7) frame,id,x,y,w,h,conf, (wall seconds,
    CPU seconds of this process))."""
    from tracker.config import TrackConfig
    from tracker.mot import tracklet_rows
    from tracker.track import CameraTracker
    from tracker.types import Detections

    inputs = [
        (f, (f - 1) / seq.fps, seq.detections.get(f, Detections.empty())) for f in range(1, seq.length + 1)
    ]
    tracker = CameraTracker(cfg or TrackConfig(), seq.fps, seq.name)
    start, cpu = time.perf_counter(), time.process_time()
    for frame, t, dets in inputs:
        tracker.update(frame, t, dets)
    tracklets = tracker.finish()
    seconds = (time.perf_counter() - start, time.process_time() - cpu)
    return tracklet_rows(tracklets), seconds


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


def run_ultralytics(seq: Sequence, kind: str) -> tuple[np.ndarray, tuple[float, float]]:
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
    start, cpu = time.perf_counter(), time.process_time()
    for boxes in inputs:
        outputs.append(tracker.update(boxes, None))
    seconds = (time.perf_counter() - start, time.process_time() - cpu)
    parts = [
        np.c_[np.full(len(o), f), o[:, 4], o[:, :2], o[:, 2:4] - o[:, :2], o[:, 5]]
        for f, o in enumerate(outputs, start=1)
        if len(o)
    ]
    return (np.concatenate(parts) if parts else np.zeros((0, 7))), seconds


TRACKERS: dict[str, Callable[[Sequence], tuple[np.ndarray, tuple[float, float]]]] = {
    "ours": run_ours,
    "ultralytics BYTETracker": lambda s: run_ultralytics(s, "bytetrack"),
    "ultralytics BOTSORT (no ReID, no GMC)": lambda s: run_ultralytics(s, "botsort"),
}


def measure(
    trackers: dict[str, Callable[[Sequence], tuple[np.ndarray, tuple[float, float]]]],
    seqs: list[Sequence],
    dataset: str,
    repeat: int = 1,
) -> list[Outcome]:
    """Run every tracker over a data set's sequences ``repeat`` times, interleaved (tracker after tracker,
    round after round, so that the load of a shared machine falls on all of them alike), and score each
    tracker's results with TrackEval, COMBINED over the sequences.

    A sequence's time is the fastest of its runs, wall and CPU (``time.process_time``: this process only,
    which leaves out the time other processes hold the cores); the trackers are deterministic, so the rows
    of every run are the same.
    """
    from tracker.evaluate import evaluate_sequences
    from tracker.export import mot_text

    best: dict[tuple[str, str], list[float]] = {}
    rows: dict[tuple[str, str], np.ndarray] = {}
    for _ in range(max(1, repeat)):
        for name, run in trackers.items():
            for seq in seqs:
                out, (wall, cpu) = run(seq)
                key = (name, seq.name)
                rows[key] = out
                old = best.get(key, [np.inf, np.inf])
                best[key] = [min(old[0], wall), min(old[1], cpu)]
    frames = sum(s.length for s in seqs)
    outcomes = []
    for name in trackers:
        pairs = {}
        with tempfile.TemporaryDirectory(prefix="bench-track-") as tmp:
            for seq in seqs:
                r = rows[(name, seq.name)]
                r = r[np.lexsort((r[:, 1], r[:, 0]))]
                path = Path(tmp) / f"{seq.name}.txt"
                path.write_text(mot_text(r))
                pairs[seq.name] = (seq.gt, path)
            metrics = evaluate_sequences(pairs, {s.name: s.length for s in seqs})["COMBINED"]
        wall = sum(best[(name, s.name)][0] for s in seqs)
        cpu = sum(best[(name, s.name)][1] for s in seqs)
        outcomes.append(
            Outcome(dataset, name, metrics, 1000.0 * wall / frames, frames, 1000.0 * cpu / frames)
        )
    return outcomes


def accuracy_table(outcomes: list[Outcome], reference: str = "ultralytics BYTETracker") -> str:
    """The accuracy and time table; ``speed-up`` is ``reference``'s CPU time on the same data set over the
    row's."""
    ref = {o.dataset: o.cpu_ms_per_frame for o in outcomes if o.tracker == reference}
    head = ("data set", "tracker", "frames", "CPU ms/frame", "wall ms/frame", "speed-up", "HOTA", "IDF1")
    head += ("MOTA", "IDSW", "FP", "FN")
    rows = [
        (
            o.dataset,
            o.tracker,
            str(o.frames),
            f"{o.cpu_ms_per_frame:.3f}",
            f"{o.ms_per_frame:.3f}",
            f"{ref[o.dataset] / o.cpu_ms_per_frame:.2f}x" if o.dataset in ref else "-",
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


def _detector_config(kind: str, yolo_weights: Path | None):
    """DetectConfig of one detector for the benchmarks (CPU; YOLO with ``yolo_weights``), or None when YOLO
    has no weights here."""
    from tracker.config import DetectConfig

    if kind != "yolo":
        return DetectConfig(detector=kind, device="cpu")
    if yolo_weights is None or not yolo_weights.exists():
        return None
    return DetectConfig(detector="yolo", weights=str(yolo_weights), device="cpu")


def pipeline_fps(detectors: list[str], frames: dict[str, int], yolo_weights: Path | None) -> str:
    """Frames per second of the camera stage (:func:`tracker.camera.process_camera`: decode + detect +
    track, no re-identification) per camera on the sample scene (640x360), per detector."""
    from tracker.camera import process_camera
    from tracker.config import ModelsConfig, PipelineConfig, ReidConfig
    from tracker.video import open_source

    videos = sorted(SAMPLE.glob("cam*.mp4"))
    head = ("detector", "cameras", "frames/cam", "fps/camera", "CPU fps/camera", "decode ms", "detect ms")
    head += ("track ms",)
    rows = []
    for kind in detectors:
        det = _detector_config(kind, yolo_weights)
        if det is None:
            rows.append((kind, "-", "-", "skipped: no weights", "-", "-", "-", "-"))
            continue
        cfg = dataclasses.replace(
            PipelineConfig(), detect=det, reid=ReidConfig(embedder="none"), models=ModelsConfig(offline=True)
        )
        walls, cpus, done, parts = [], [], [], {"decode": 0.0, "detect": 0.0, "track": 0.0}
        for video in videos:
            source = open_source(video)
            if frames.get(kind, 0) > 0:
                source = source.window(1, frames[kind] + 1)
            start, cpu = time.perf_counter(), time.process_time()
            result = process_camera(source, cfg)
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
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
                f"{total / sum(cpus):.1f}",
                *(f"{1000 * parts[k] / total:.1f}" for k in ("decode", "detect", "track")),
            )
        )
    return _table(head, rows) + (
        "\nfps/camera: frames / wall time of process_camera (includes building the detector and, for"
        "\nmotion, its background model from 25 sampled frames); CPU fps/camera: frames / CPU time of this"
        " process"
    )


def pets_end_to_end(eval_data: Path, detectors: list[str], yolo_weights: Path | None, frames: int = 0) -> str:
    """PETS09-S2L1 (the real 795-frame video, 480x360) through decode + detect + our tracker, as
    ``track-cameras --no-associate`` runs a camera: detection precision / recall at IoU 0.5 against the ground
    truth, TrackEval HOTA / IDF1 / MOTA of the tracks, and the time of each step (wall and CPU)."""
    from tracker.config import ModelsConfig, TrackConfig
    from tracker.detect import build_detector
    from tracker.evaluate import evaluate_sequences
    from tracker.geometry import iou_matrix, linear_assignment
    from tracker.mot import mot_text, tracklet_rows
    from tracker.track import CameraTracker
    from tracker.video import open_source

    root = eval_data / "pets09-s2l1-vtest"
    video, gt_path = root / "vtest.avi", root / "PETS09-S2L1-480x360" / "gt" / "gt.txt"
    gt = np.loadtxt(gt_path, delimiter=",")
    head = ("detector", "frames", "det P", "det R", "HOTA", "IDF1", "MOTA", "IDSW", "fps", "CPU fps")
    head += ("detect ms", "detect CPU ms", "track ms")
    rows = []
    for kind in detectors:
        cfg = _detector_config(kind, yolo_weights)
        if cfg is None:
            rows.append((kind, *["-"] * 7, "skipped: no weights", *["-"] * 4))
            continue
        source = open_source(video)
        if frames:
            source = source.window(1, frames + 1)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        detector = build_detector(cfg, ModelsConfig(offline=True), source)
        tracker = CameraTracker(TrackConfig(), source.info.fps / source.stride, source.camera)
        spent = {"detect": 0.0, "detect_cpu": 0.0, "track": 0.0}
        tp = n_det = n_gt = n = 0
        for frame in source:
            t, c = time.perf_counter(), time.process_time()
            (dets,) = detector.detect([frame])
            spent["detect"] += time.perf_counter() - t
            spent["detect_cpu"] += time.process_time() - c
            t = time.perf_counter()
            tracker.update(frame.index, frame.time, dets, frame.image)
            spent["track"] += time.perf_counter() - t
            g = gt[gt[:, 0] == frame.index][:, 2:6]
            g = np.c_[g[:, :2], g[:, :2] + g[:, 2:]]
            n, n_det, n_gt = n + 1, n_det + len(dets), n_gt + len(g)
            if len(dets) and len(g):
                tp += len(linear_assignment(1.0 - iou_matrix(g, dets.xyxy), 0.5)[0])
        tracklets = tracker.finish()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        result = tracklet_rows(tracklets)
        with tempfile.TemporaryDirectory(prefix="bench-pets-") as tmp:
            path = Path(tmp) / "PETS09-S2L1.txt"
            path.write_text(mot_text(result[np.lexsort((result[:, 1], result[:, 0]))]))
            m = evaluate_sequences({"PETS09-S2L1": (gt_path, path)}, {"PETS09-S2L1": n})["COMBINED"]
        rows.append(
            (
                kind,
                str(n),
                f"{tp / max(n_det, 1):.3f}",
                f"{tp / max(n_gt, 1):.3f}",
                *(f"{100 * m[k]:.1f}" for k in ("HOTA", "IDF1", "MOTA")),
                str(m["IDSW"]),
                f"{n / wall:.1f}",
                f"{n / cpu:.1f}",
                *(f"{1000 * spent[k] / n:.1f}" for k in ("detect", "detect_cpu", "track")),
            )
        )
    return _table(head, rows) + (
        "\nfps: frames / wall time of the whole camera (decode, building the detector with its background"
        "\nsample, detect, track, finish); CPU fps: frames / CPU time of this process for the same"
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
    parser.add_argument("--no-pipeline", action="store_true", help="skip the pipeline fps tables")
    parser.add_argument(
        "--yolo-weights",
        type=Path,
        default=REPO.parent / "shared" / "models" / "yolov8n_int8_openvino_model",
        help="YOLO weights for the detector rows (skipped when absent; never downloaded)",
    )
    parser.add_argument(
        "--pets-frames", type=int, default=0, help="frames of PETS09-S2L1 end to end (0 = all 795)"
    )
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
    outcomes = [o for ds, seqs in data.items() for o in measure(trackers, seqs, ds, args.repeat)]
    print("\nPer-camera trackers on the same detections (TrackEval COMBINED over each data set's sequences)")
    print(accuracy_table(outcomes))

    if args.sweep:
        sweep = []
        for ds, seqs in data.items():
            for change in ({}, *SWEEP):
                cfg = dataclasses.replace(TrackConfig(), **change)
                label = "ours " + (" ".join(f"{k}={v}" for k, v in change.items()) or "(defaults)")
                sweep += measure({label: lambda s, c=cfg: run_ours(s, c)}, seqs, ds)
        print("\nTrackConfig, one knob at a time (everything else at its default)")
        print(accuracy_table(sweep))

    if not args.no_pipeline:
        detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
        if args.eval_data.is_dir():
            print("\nPETS09-S2L1 end to end: decode + detect + track (per-camera ids, as --no-associate)")
            pets_detectors = [d for d in detectors if d != "hog"]
            print(pets_end_to_end(args.eval_data, pets_detectors, args.yolo_weights, args.pets_frames))
        print("\nWhole-camera processing on the sample scene (tracker.camera.process_camera)")
        print(pipeline_fps(detectors, {"hog": args.hog_frames}, args.yolo_weights))
    return 0


if __name__ == "__main__":
    sys.exit(main())
