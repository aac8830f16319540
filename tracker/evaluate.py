"""Tracking metrics with TrackEval (HOTA, CLEAR, Identity), per camera and over all cameras.

Scores MOTChallenge result files against MOTChallenge ground truth exactly as the official MOTChallenge
evaluation does: TrackEval's ``MotChallenge2DBox`` dataset (class 1 pedestrians are scored; result boxes that
match a distractor-class gt box at IoU >= 0.5 are removed; gt rows with a zero in column 7 are ignored) and
its ``HOTA``, ``CLEAR``, ``Identity`` and ``Count`` metrics at IoU 0.5.

Every sequence is written into a temporary TrackEval folder layout (``gt/<seq>/gt/gt.txt``,
``trackers/result/data/<seq>.txt``) and read back by TrackEval's own loader, so the numbers are TrackEval's.
Before writing, ids are renumbered 1..K per sequence (TrackEval indexes arrays by id, so huge or negative ids
would break it; renumbering changes no metric) and ground truth without a class column (MOT15 style: fewer
than 8 columns, or column 8 holding world coordinates / -1) gets class 1, which makes the MOT17 preprocessing
identical to TrackEval's MOT15 rules. Sequences whose name starts with ``MOT20`` use TrackEval's MOT20 rules
(non-MOT vehicles are distractors too).

Multi-camera score (``"ALL"`` in :func:`evaluate_run`): all cameras are concatenated into one sequence, camera
*k*'s frames shifted by the lengths of the cameras before it (natural name order). Ids are compared as they
are, so a result that keeps one global id for one person across cameras is rewarded and a change of id between
cameras costs IDF1/AssA (and an ID switch), as the multi-camera IDF1 of the MTMC literature. This assumes the
ground-truth ids are global too (``track-sim`` writes them so); for independent sequences whose gt ids are
per-sequence, only the per-camera and ``"COMBINED"`` figures mean anything.

Returned metrics are plain Python numbers: ratios in [0, 1] (HOTA, DetA, AssA, LocA, IDF1, IDP, IDR, MOTA,
MOTP) as ``float`` (HOTA, DetA, AssA, LocA averaged over TrackEval's 19 IoU thresholds, as its summaries do),
counts (IDSW, FP, FN, Frag, MT, PT, ML, GT_IDs, IDs, GT_Dets, Dets) as ``int``.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import io
import json
import math
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tracker.errors import InputError, cli_entry
from tracker.fsutil import atomic_write_json
from tracker.mot import read_mot

#: The metric keys of one scored sequence, in table order.
RATIO_KEYS = ("HOTA", "DetA", "AssA", "LocA", "IDF1", "IDP", "IDR", "MOTA", "MOTP")
COUNT_KEYS = ("IDSW", "FP", "FN", "Frag", "MT", "PT", "ML", "GT_IDs", "IDs", "GT_Dets", "Dets")

_TABLE_RATIOS = ("HOTA", "DetA", "AssA", "IDF1", "IDP", "IDR", "MOTA", "MOTP")
_TABLE_COUNTS = ("IDSW", "FP", "FN", "Frag", "GT_IDs", "IDs")
_IOU = 0.5
_VALID_CLASSES = np.arange(1, 14)  # MOTChallenge class numbers 1 (pedestrian) .. 13 (crowd)
_TRACKER = "result"


@dataclass
class _Sequence:
    """One sequence ready for TrackEval.

    ``gt``: (G, 9) float64 ``frame, id, x, y, w, h, mark, class, visibility``; ``res``: (R, 7) float64
    ``frame, id, x, y, w, h, conf``; ``length``: number of frames (>= every frame in both); ``benchmark``:
    TrackEval's preprocessing rules, ``"MOT17"`` or ``"MOT20"``; ``label``: how errors name it.
    """

    gt: np.ndarray
    res: np.ndarray
    length: int
    benchmark: str
    label: str


# --------------------------------------------------------------------------------------------- public API


def evaluate_sequences(
    pairs: Mapping[str, tuple[str | Path, str | Path | None]],
    lengths: Mapping[str, int] | None = None,
    benchmark: str | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Score MOTChallenge result files against ground truth, per sequence and combined.

    Parameters
    ----------
    pairs
        ``{sequence name: (gt file, result file)}``. The gt file has MOTChallenge gt columns
        ``frame, id, x, y, w, h, mark, class, visibility`` (MOT15-style files without classes are accepted);
        the result file ``frame, id, x, y, w, h, conf, ...``. A result of ``None`` scores as all misses.
    lengths
        Frames per sequence where known. A ``seqinfo.ini`` beside a ``<seq>/gt/gt.txt`` wins (and frames
        beyond its ``seqLength`` are an error, as in the official evaluation); otherwise the length is the
        largest of the given value and the last frame in gt or results.
    benchmark
        TrackEval preprocessing for every sequence (``"MOT15"``, ``"MOT16"``, ``"MOT17"``, ``"MOT20"``);
        default: ``"MOT20"`` for sequences named ``MOT20*``, else MOT17 rules.
    verbose
        Let TrackEval print to stdout.

    Returns
    -------
    ``{"sequences": {name: metrics}, "COMBINED": metrics}``, metrics as described in the module docstring;
    COMBINED is TrackEval's combination over the sequences (sums of counts, HOTA combined over all matches).
    """
    if not pairs:
        raise InputError("evaluate_sequences: no sequences given")
    lengths = dict(lengths or {})
    seqs = {
        name: _load_sequence(name, Path(gt), None if res is None else Path(res), lengths.get(name), benchmark)
        for name, (gt, res) in pairs.items()
    }
    raw = _score(list(seqs.values()), verbose)
    return {
        "sequences": {name: _summary(r) for name, r in zip(seqs, raw)},
        "COMBINED": _summary(_combine(raw)),
    }


def evaluate_run(
    run_dir: str | Path,
    gt_dir: str | Path,
    cameras: Sequence[str] | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Score a run directory per camera, combined, and over all cameras as one sequence; write metrics.json.

    Parameters
    ----------
    run_dir
        ``RUN_DIR`` with ``mot/<camera>.txt`` result files; ``run.json`` (optional) may give frames per camera
        in ``cameras[i]["frames_total"]`` (or ``"frames_processed"``), matched by ``cameras[i]["name"]``.
    gt_dir
        Either a folder of ``<camera>.txt`` gt files (``track-sim``'s ``DIR/gt``; a scene folder ``DIR`` with
        a ``gt/`` inside is accepted too) or a MOTChallenge folder of ``<seq>/gt/gt.txt`` (+ ``seqinfo.ini``).
    cameras
        Only these cameras (default: every camera with ground truth or results).

    Returns
    -------
    A dict, also written atomically to ``RUN_DIR/metrics.json``::

        {"run_dir": str, "gt_dir": str, "cameras": {camera: metrics}, "COMBINED": metrics, "ALL": metrics,
         "frames": {camera: int}, "missing_results": [camera], "no_gt": [camera], "trackeval": version}

    ``missing_results``: cameras with gt but no result file (scored as all misses); ``no_gt``: result files
    with no gt (skipped). ``COMBINED`` pools per-camera scores; ``ALL`` is the multi-camera score (module
    docstring).
    """
    import trackeval

    run_dir, gt_dir = Path(run_dir), Path(gt_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: run directory not found")
    mot_dir = run_dir / "mot"
    if not mot_dir.is_dir():
        raise InputError(f"{run_dir}: no mot/ folder of result files (not a track-cameras run directory?)")
    gt_files = _find_gt(gt_dir)
    res_files = {p.stem: p for p in mot_dir.glob("*.txt")}
    if not set(gt_files) & set(res_files):
        raise InputError(
            f"{gt_dir}: no ground truth matches the cameras of {run_dir} "
            f"(gt: {_names(gt_files)}; results: {_names(res_files)})"
        )
    names = set(gt_files) | set(res_files)
    if cameras is not None:
        unknown = [c for c in cameras if c not in names]
        if unknown:
            raise InputError(f"--cameras: no gt or results for {', '.join(unknown)} (have {_names(names)})")
        no_gt = [c for c in cameras if c not in gt_files]
        if no_gt:
            raise InputError(f"--cameras: {', '.join(no_gt)} has no ground truth in {gt_dir}")
        names = set(cameras)
    scored = sorted((c for c in names if c in gt_files), key=_natural)
    missing = [c for c in scored if c not in res_files]
    no_gt_files = sorted((c for c in names if c not in gt_files), key=_natural)

    frames = _run_frames(run_dir)
    seqs = [_load_sequence(c, gt_files[c], res_files.get(c), frames.get(c), None) for c in scored]
    raw = _score(seqs + [_concatenate(seqs)], verbose)
    per_camera, everything = raw[:-1], raw[-1]
    out = {
        "run_dir": str(run_dir),
        "gt_dir": str(gt_dir),
        "cameras": {c: _summary(r) for c, r in zip(scored, per_camera)},
        "COMBINED": _summary(_combine(per_camera)),
        "ALL": _summary(everything),
        "frames": {c: s.length for c, s in zip(scored, seqs)},
        "missing_results": missing,
        "no_gt": no_gt_files,
        "trackeval": trackeval.__version__,
    }
    atomic_write_json(run_dir / "metrics.json", out)
    return out


def format_table(metrics: Mapping[str, Any]) -> str:
    """A readable table of :func:`evaluate_run`'s result: one row per camera, COMBINED and ALL (percent)."""
    head = ["camera"] + [f"{k}%" for k in _TABLE_RATIOS] + list(_TABLE_COUNTS)
    rows = [[name, *_row(m)] for name, m in metrics["cameras"].items()]
    rows += [["COMBINED", *_row(metrics["COMBINED"])], ["ALL", *_row(metrics["ALL"])]]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(head), line(["-" * w for w in widths])]
    out += [line(r) for r in rows[:-2]]
    out += [line(["-" * w for w in widths])] + [line(r) for r in rows[-2:]]
    out.append(
        "COMBINED: per-camera scores pooled; ALL: all cameras as one sequence with global ids "
        "(multi-camera IDF1)."
    )
    if metrics.get("missing_results"):
        out.append(f"no result file (scored as all misses): {', '.join(metrics['missing_results'])}")
    if metrics.get("no_gt"):
        out.append(f"no ground truth (skipped): {', '.join(metrics['no_gt'])}")
    return "\n".join(out)


def evaluate_tracklets(
    tracklets: Sequence, ids: Sequence[int], gt_dir: str | Path, frames: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Score tracklets with the given global ``ids`` (one per tracklet) against ``gt_dir`` as
    :func:`evaluate_run` scores a run (``ALL`` is the multi-camera score): their boxes and scores are written
    as ``mot/<camera>.txt`` of a temporary run directory; ``frames``: per camera, the frames the run covered
    (default: as the ground truth says). For re-associating stored tracklets without writing a run."""
    from tracker.mot import mot_text, tracklet_rows

    by_camera: dict[str, tuple[list, list]] = {}
    for t, g in zip(tracklets, np.asarray(ids).tolist()):
        items, gids = by_camera.setdefault(t.camera, ([], []))
        items.append(t)
        gids.append(g)
    with tempfile.TemporaryDirectory(prefix="multicam-eval-") as tmp:
        run = Path(tmp)
        (run / "mot").mkdir()
        for cam, (items, gids) in by_camera.items():
            (run / "mot" / f"{cam}.txt").write_text(mot_text(tracklet_rows(items, gids)))
        if frames is not None:
            cams = [{"name": c, "frames_total": int(n)} for c, n in frames.items()]
            (run / "run.json").write_text(json.dumps({"cameras": cams}))
        with contextlib.redirect_stdout(io.StringIO()):
            return evaluate_run(run, gt_dir)


def pairwise_f1(labels: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of a clustering ``labels`` against ``truth`` (both (N,) ints):
    a pair of items counts as joined when both share a label."""

    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) // 2).sum())

    joined = pairs(np.unique(np.c_[labels, truth], axis=0, return_counts=True)[1])
    predicted = pairs(np.unique(labels, return_counts=True)[1])
    actual = pairs(np.unique(truth, return_counts=True)[1])
    precision = joined / predicted if predicted else 1.0
    recall = joined / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


class GroundTruth:
    """The people of a ground-truth folder (as :func:`evaluate_run` reads it), to say whom a track follows.

    The one rule every benchmark and simulated reviewer uses to label a tracklet with its true person:
    :meth:`person` is the gt id that most of the track's boxes match, each box with the gt box of its
    camera and frame it overlaps most, at IoU >= 0.5 (ties to the smaller id). With ``strict`` the boxes
    that match no gt box vote too, for nobody: a track that is mostly false positives follows nobody.
    """

    def __init__(self, gt_dir: str | Path):
        from tracker.geometry import xywh_to_xyxy

        #: camera -> frame -> ((G, 4) xyxy gt boxes, (G,) person ids)
        self.boxes: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
        for camera, path in _find_gt(Path(gt_dir)).items():
            data = read_mot(path, 6)
            frames = data[:, 0].astype(np.int64)
            order = np.argsort(frames, kind="stable")
            data, frames = data[order], frames[order]
            starts = np.flatnonzero(frames[1:] != frames[:-1]) + 1
            self.boxes[camera] = {
                int(rows[0, 0]): (xywh_to_xyxy(rows[:, 2:6]).astype(np.float32), rows[:, 1].astype(np.int64))
                for rows in np.split(data, starts)
                if len(rows)  # an empty file splits into one empty part
            }

    @property
    def people(self) -> set[int]:
        """Every person id of the ground truth."""
        return {int(p) for frames in self.boxes.values() for _, ids in frames.values() for p in ids}

    def person(
        self, camera: str, frames: Sequence[int], boxes_xyxy: np.ndarray, strict: bool = False
    ) -> int | None:
        """The gt person most of these (T,) frames' (T, 4) xyxy boxes match, None when none matches (or,
        ``strict``, when more boxes match nobody than that person)."""
        from tracker.geometry import iou_matrix

        gt = self.boxes.get(camera, {})
        votes: dict[int, int] = {}
        nobody = 0
        for f, box in zip(np.asarray(frames).tolist(), np.asarray(boxes_xyxy, np.float32)):
            found = gt.get(int(f))  # every frame held has at least one gt box
            if found is not None:
                iou = iou_matrix(box[None], found[0])[0]
                best = int(iou.argmax())
                if iou[best] >= _IOU:
                    p = int(found[1][best])
                    votes[p] = votes.get(p, 0) + 1
                    continue
            nobody += 1
        if not votes:
            return None
        person = max(votes, key=lambda p: (votes[p], -p))
        return None if strict and nobody >= votes[person] else person


@cli_entry("track-eval")
def main(argv: Sequence[str] | None = None) -> int:
    """``track-eval RUN_DIR --gt GT_DIR [--cameras a,b] [--json] [--verbose]``."""
    parser = argparse.ArgumentParser(
        prog="track-eval",
        description="Score a run's MOT files with TrackEval (HOTA, CLEAR, Identity) per camera and over all "
        "cameras as one sequence (multi-camera IDF1); writes RUN_DIR/metrics.json.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory with mot/<camera>.txt")
    parser.add_argument(
        "--gt",
        required=True,
        metavar="GT_DIR",
        help="folder of <camera>.txt gt files, or MOTChallenge <seq>/gt/gt.txt folders",
    )
    parser.add_argument("--cameras", help="comma-separated camera names to score (default: all)")
    parser.add_argument("--json", action="store_true", help="print metrics as JSON instead of a table")
    parser.add_argument("--verbose", action="store_true", help="show TrackEval's own output")
    args = parser.parse_args(argv)
    cameras = None
    if args.cameras is not None:
        cameras = [c.strip() for c in args.cameras.split(",") if c.strip()]
        if not cameras:
            raise InputError(f"--cameras {args.cameras!r}: no camera names")
    metrics = evaluate_run(args.run_dir, args.gt, cameras, verbose=args.verbose)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(format_table(metrics))
        print(f"wrote {Path(args.run_dir) / 'metrics.json'}")
    return 0


# --------------------------------------------------------------------------------------------- inputs


def _read_gt(path: Path) -> np.ndarray:
    """(G, 9) gt ``frame, id, x, y, w, h, mark, class, visibility``; class 1 where the file has no classes."""
    data = read_mot(path, 6)
    out = np.ones((len(data), 9))
    out[:, : min(9, data.shape[1])] = data[:, :9]
    has_classes = data.shape[1] >= 8 and np.isin(data[:, 7], _VALID_CLASSES).all()
    if not has_classes:
        out[:, 7] = 1
    return out


def _read_results(path: Path | None) -> np.ndarray:
    """(R, 7) results ``frame, id, x, y, w, h, conf`` (conf 1 when absent); empty when ``path`` is None."""
    if path is None:
        return np.zeros((0, 7))
    data = read_mot(path, 6)
    out = np.ones((len(data), 7))
    out[:, : min(7, data.shape[1])] = data[:, :7]
    return out


def _seqinfo(gt_file: Path) -> tuple[str, int] | None:
    """``(name, seqLength)`` from the ``seqinfo.ini`` of a ``<seq>/gt/gt.txt`` file, if there is one."""
    ini = gt_file.parent.parent / "seqinfo.ini"
    if gt_file.name != "gt.txt" or not ini.is_file():
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read(ini)
        section = parser["Sequence"]
        return section.get("name", gt_file.parent.parent.name), int(section["seqLength"])
    except (configparser.Error, KeyError, ValueError) as exc:
        raise InputError(f"{ini}: no valid [Sequence] seqLength ({exc})") from None


def _load_sequence(
    name: str, gt_file: Path, res_file: Path | None, length: int | None, benchmark: str | None
) -> _Sequence:
    """Read one gt/result pair and settle its length and preprocessing rules."""
    if not gt_file.is_file():
        raise InputError(f"{gt_file}: ground-truth file not found")
    if res_file is not None and not res_file.is_file():
        raise InputError(f"{res_file}: result file not found")
    gt, res = _read_gt(gt_file), _read_results(res_file)
    last = int(max(gt[:, 0].max(initial=0), res[:, 0].max(initial=0)))
    info = _seqinfo(gt_file)
    if info is not None:
        seq_name, length = info
        for path, data in ((gt_file, gt), (res_file, res)):
            if len(data) and data[:, 0].max() > length:
                raise InputError(
                    f"{path}: frame {int(data[:, 0].max())} is beyond seqLength {length} "
                    f"of {gt_file.parent.parent / 'seqinfo.ini'}"
                )
    else:
        seq_name, length = name, max(int(length or 0), last, 1)
    if benchmark is None:
        benchmark = "MOT20" if seq_name.upper().startswith("MOT20") else "MOT17"
    elif benchmark not in ("MOT15", "MOT16", "MOT17", "MOT20"):
        raise InputError(f"benchmark {benchmark!r}: expected MOT15, MOT16, MOT17 or MOT20")
    return _Sequence(gt, res, length, benchmark, f"{name} ({gt_file} vs {res_file or 'no results'})")


def _concatenate(seqs: list[_Sequence]) -> _Sequence:
    """All sequences as one: each one's frames shifted by the lengths of those before it, ids kept."""
    offsets = np.cumsum([0] + [s.length for s in seqs[:-1]])

    def shifted(arrays: Iterable[np.ndarray]) -> np.ndarray:
        parts = [a.copy() for a in arrays]
        for part, off in zip(parts, offsets):
            part[:, 0] += off
        return np.concatenate(parts)

    benchmarks = {s.benchmark for s in seqs}
    return _Sequence(
        gt=shifted(s.gt for s in seqs),
        res=shifted(s.res for s in seqs),
        length=int(sum(s.length for s in seqs)),
        benchmark=benchmarks.pop() if len(benchmarks) == 1 else "MOT17",
        label="ALL (every camera as one sequence)",
    )


def _find_gt(gt_dir: Path) -> dict[str, Path]:
    """``{camera: gt file}`` from a flat folder of ``<camera>.txt`` or MOTChallenge ``<seq>/gt/gt.txt``."""
    if not gt_dir.is_dir():
        raise InputError(f"{gt_dir}: ground-truth directory not found")
    flat = {p.stem: p for p in gt_dir.glob("*.txt")}
    if flat:
        return flat
    mot = {p.parent.parent.name: p for p in gt_dir.glob("*/gt/gt.txt")}
    if mot:
        return mot
    scene = {p.stem: p for p in (gt_dir / "gt").glob("*.txt")}
    if scene:
        return scene
    raise InputError(f"{gt_dir}: no ground truth (<camera>.txt files or <seq>/gt/gt.txt folders)")


def _run_frames(run_dir: Path) -> dict[str, int]:
    """Frames per camera from ``run.json`` where it says so (``frames_total``, else ``frames_processed``)."""
    path = run_dir / "run.json"
    if not path.is_file():
        return {}
    try:
        cams = json.loads(path.read_text()).get("cameras") or []
    except (OSError, ValueError, AttributeError):
        return {}
    frames = {}
    for cam in cams if isinstance(cams, list) else []:
        if not isinstance(cam, dict):
            continue
        name = cam.get("name", cam.get("camera"))
        count = cam.get("frames_total") or cam.get("frames_processed")
        if isinstance(name, str) and isinstance(count, (int, float)) and count > 0:
            frames[name] = int(count)
    return frames


def _names(items: Iterable[str]) -> str:
    names = sorted(items, key=_natural)
    return ", ".join(names) if names else "none"


def _natural(name: str) -> list:
    """Sort key so that cam2 comes before cam10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# --------------------------------------------------------------------------------------------- TrackEval


def _metrics() -> list:
    from trackeval.metrics import CLEAR, HOTA, Count, Identity

    quiet = {"THRESHOLD": _IOU, "PRINT_CONFIG": False}
    return [HOTA(), CLEAR(dict(quiet)), Identity(dict(quiet)), Count()]


def _renumber(ids: np.ndarray) -> np.ndarray:
    """Ids as 1..K in order of value (TrackEval sizes arrays by the largest id)."""
    return np.unique(ids, return_inverse=True)[1].reshape(-1) + 1


def _write(path: Path, data: np.ndarray, tail: str = "") -> None:
    """Write rows comma-separated with exact float text (``repr`` round-trips), ``tail`` appended to each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(map(repr, row)) + tail + "\n" for row in data.tolist()))


def _score(seqs: list[_Sequence], verbose: bool) -> list[dict[str, dict]]:
    """TrackEval's raw per-metric results (``{"HOTA": {...}, "CLEAR": {...}, ...}``) for each sequence."""
    from trackeval.datasets import MotChallenge2DBox
    from trackeval.utils import TrackEvalException

    keys = [f"seq{i:05d}" for i in range(len(seqs))]
    out: list[dict[str, dict]] = [{} for _ in seqs]
    metrics = _metrics()
    with tempfile.TemporaryDirectory(prefix="track-eval-") as tmp:
        root = Path(tmp)
        for key, seq in zip(keys, seqs):
            gt, res = seq.gt.copy(), seq.res.copy()
            gt[:, 1] = _renumber(gt[:, 1])
            res[:, 1] = _renumber(res[:, 1])
            _write(root / "gt" / key / "gt" / "gt.txt", gt)
            _write(root / "trackers" / _TRACKER / "data" / f"{key}.txt", res, ",-1,-1,-1")
        sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
        with sink:
            for bench in sorted({s.benchmark for s in seqs}):
                idx = [i for i, s in enumerate(seqs) if s.benchmark == bench]
                dataset = MotChallenge2DBox(
                    {
                        "GT_FOLDER": str(root / "gt"),
                        "TRACKERS_FOLDER": str(root / "trackers"),
                        "OUTPUT_FOLDER": str(root / "output"),
                        "TRACKERS_TO_EVAL": [_TRACKER],
                        "BENCHMARK": bench,
                        "SKIP_SPLIT_FOL": True,
                        "SEQ_INFO": {keys[i]: seqs[i].length for i in idx},
                        "PRINT_CONFIG": verbose,
                    }
                )
                for i in idx:
                    try:
                        raw = dataset.get_raw_seq_data(_TRACKER, keys[i])
                        data = dataset.get_preprocessed_seq_data(raw, "pedestrian")
                    except TrackEvalException as exc:
                        message = str(exc).replace(keys[i], "this sequence").splitlines()[0]
                        raise InputError(f"{seqs[i].label}: {message}") from None
                    out[i] = {m.get_name(): m.eval_sequence(data) for m in metrics}
    return out


def _combine(raw: list[dict[str, dict]]) -> dict[str, dict]:
    """TrackEval's combination of several sequences' raw results (as its COMBINED_SEQ)."""
    return {
        m.get_name(): m.combine_sequences({i: r[m.get_name()] for i, r in enumerate(raw)}) for m in _metrics()
    }


def _summary(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, float | int | None]:
    """Plain numbers from one raw result; array fields averaged over IoU thresholds as in TrackEval
    summaries."""
    hota, clear, ident, count = raw["HOTA"], raw["CLEAR"], raw["Identity"], raw["Count"]
    ratios = {
        "HOTA": np.mean(hota["HOTA"]),
        "DetA": np.mean(hota["DetA"]),
        "AssA": np.mean(hota["AssA"]),
        "LocA": np.mean(hota["LocA"]),
        "IDF1": ident["IDF1"],
        "IDP": ident["IDP"],
        "IDR": ident["IDR"],
        "MOTA": clear["MOTA"],
        "MOTP": clear["MOTP"],
    }
    counts = {
        "IDSW": clear["IDSW"],
        "FP": clear["CLR_FP"],
        "FN": clear["CLR_FN"],
        "Frag": clear["Frag"],
        "MT": clear["MT"],
        "PT": clear["PT"],
        "ML": clear["ML"],
        "GT_IDs": count["GT_IDs"],
        "IDs": count["IDs"],
        "GT_Dets": count["GT_Dets"],
        "Dets": count["Dets"],
    }
    out: dict[str, float | int | None] = {}
    for k in RATIO_KEYS:
        v = float(ratios[k])
        out[k] = v if math.isfinite(v) else None
    out.update({k: int(counts[k]) for k in COUNT_KEYS})
    return out


def _row(m: Mapping[str, Any]) -> list[str]:
    ratios = ["-" if m[k] is None else f"{100 * m[k]:.1f}" for k in _TABLE_RATIOS]
    return ratios + [str(m[k]) for k in _TABLE_COUNTS]


if __name__ == "__main__":
    sys.exit(main())
