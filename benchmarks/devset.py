"""Development set for cross-camera identities: semi-real and rendered 4-camera scenes, one table.

    python benchmarks/devset.py --build                      # render the set into /tmp/multicam-devset, then run
    python benchmarks/devset.py                              # run track-cameras on every scene, print the tables
    python benchmarks/devset.py --extra "--reid none"        # the same with extra track-cameras arguments
    python benchmarks/devset.py --extra "--no-associate" --json rows.json
    python benchmarks/devset.py DIR --modes gt --scenes mars-a market-a

**The set** (:data:`SCENES`, written with a ``manifest.json``): six semi-real scenes (``track-sim --crops``:
real people from the TEST identities of MARS (``reid-mini-mars``) or Market-1501 (``market1501-full``) on the
PETS09 background, 8-16 people, overlapping and disjoint layouts, 30-45 s) and two plain ``track-sim``
scenes (14 people, overlap 0.3), all 4 cameras at 640x360, 15 fps. Seeds are the set's own (101...), apart
from the seeds of held-out scenes, so that tuning on this set is not tuning on them. The folder must be
outside the repository (research-licensed pixels never go into it); without ``../shared/eval-data`` the
semi-real scenes are skipped with a message.

**A run** of a scene in a mode is one ``track-cameras`` process on the scene's videos with
``--detector motion --reid histogram --offline --no-video --workers 1`` and then ``--extra``:

* ``e2e``: the detector finds the people;
* ``gt``: the scene's ground-truth boxes are the detections (``--detections gt/<camera>.txt ...``), so that
  only tracking, re-identification and association are measured.

It is cached under ``DIR/runs/<scene>/<mode>-<key>``, the key a hash of the arguments, the scene's
``scene.json`` and the ``tracker/`` source, so re-running prints at once; ``--force`` runs again.

**Scores** (:func:`score`): TrackEval through :func:`tracker.evaluate.evaluate_run`: ``IDF1`` of all cameras
as one sequence with global ids (multi-camera IDF1, ``ALL``), the mean of the per-camera IDF1, ``HOTA``
(ALL); the number of identities the run made against the people in the ground truth; and the pairwise
precision and recall of tracklet joins (:func:`tracklet_joins`): every tracklet takes the gt person most of
its boxes match (IoU >= 0.5), and a pair of tracklets counts as joined when they share a global id.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shlex
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EVAL_DATA = REPO.parent / "shared" / "eval-data"
DEFAULT_DIR = Path("/tmp/multicam-devset")
BASE_ARGS = (
    "--detector",
    "motion",
    "--reid",
    "histogram",
    "--offline",
    "--no-video",
    "--workers",
    "1",
    "--quiet",
)
MODES = ("e2e", "gt")


@dataclass(frozen=True)
class Scene:
    """One scene of the set: ``kind`` ``"semi-real"`` (``crops`` relative to eval-data) or ``"renderer"``."""

    name: str
    kind: str
    seed: int
    people: int
    seconds: int
    overlap: float
    crops: str | None = None

    def args(self, out: Path) -> list[str]:
        """``track-sim`` arguments that render this scene into ``out``."""
        args = [
            "--out",
            str(out),
            "--cameras",
            "4",
            "--people",
            str(self.people),
            "--seconds",
            str(self.seconds),
            "--seed",
            str(self.seed),
            "--overlap",
            str(self.overlap),
            "--fps",
            "15",
            "--width",
            "640",
            "--height",
            "360",
            "--quiet",
        ]
        if self.crops:
            args += [
                "--crops",
                str(EVAL_DATA / self.crops),
                "--background",
                str(EVAL_DATA / "pets09-s2l1-vtest" / "vtest.avi"),
            ]
        return args


SCENES = (
    Scene("mars-a", "semi-real", 101, 8, 40, 0.3, "reid-mini-mars"),
    Scene("mars-b", "semi-real", 102, 12, 35, 0.0, "reid-mini-mars"),
    Scene("mars-c", "semi-real", 103, 16, 45, 0.3, "reid-mini-mars"),
    Scene("market-a", "semi-real", 104, 10, 40, 0.3, "market1501-full"),
    Scene("market-b", "semi-real", 105, 14, 40, 0.0, "market1501-full"),
    Scene("market-c", "semi-real", 106, 16, 30, 0.4, "market1501-full"),
    Scene("sim-a", "renderer", 111, 14, 30, 0.3),
    Scene("sim-b", "renderer", 112, 14, 30, 0.3),
)


# ------------------------------------------------------------------------------------------------ build


def build(root: Path, scenes: tuple[Scene, ...]) -> None:
    """Render every scene not yet in ``root`` (one ``track-sim`` process each) and write ``manifest.json``."""
    root.mkdir(parents=True, exist_ok=True)
    done = []
    for sc in scenes:
        if sc.crops and not EVAL_DATA.is_dir():
            print(f"devset: skip {sc.name}: {EVAL_DATA} is absent (semi-real scenes need the real crops)")
            continue
        out = root / sc.name
        marker = out / "track-sim-args.json"
        if not (marker.is_file() and json.loads(marker.read_text()) == sc.args(out)):
            start = time.perf_counter()
            cmd = [sys.executable, "-m", "tracker.synthetic", *sc.args(out)]
            subprocess.run(cmd, check=True, cwd=REPO)
            marker.write_text(json.dumps(sc.args(out)))
            print(
                f"devset: rendered {sc.name} ({sc.kind}) in {time.perf_counter() - start:.0f} s: "
                f"{shlex.join(['track-sim', *sc.args(out)])}"
            )
        done.append({**dataclasses.asdict(sc), "dir": sc.name})
    (root / "manifest.json").write_text(json.dumps({"scenes": done}, indent=2) + "\n")


# -------------------------------------------------------------------------------------------------- run


def _code_key() -> str:
    """Hash of the tracker package's source, so that cached runs are redone after a code change."""
    h = hashlib.sha1()
    for path in sorted((REPO / "tracker").rglob("*.py")):
        h.update(path.relative_to(REPO).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def run_scene(root: Path, name: str, mode: str, extra: list[str], force: bool, code_key: str) -> dict:
    """Run ``track-cameras`` on one scene in one mode (cached) and return its scores (:func:`score`)."""
    scene_dir = root / name
    scene = json.loads((scene_dir / "scene.json").read_text())
    cams = [c["name"] for c in scene["cameras"]]
    args = ["--videos", *(str(scene_dir / f"{c}.mp4") for c in cams), *BASE_ARGS]
    if mode == "gt":
        args += ["--detections", *(str(scene_dir / "gt" / f"{c}.txt") for c in cams)]
    args += extra
    key = hashlib.sha1(
        json.dumps([args, (scene_dir / "scene.json").read_text(), code_key]).encode()
    ).hexdigest()
    run_dir = root / "runs" / name / f"{mode}-{key[:12]}"
    result = run_dir / "devset-row.json"
    if result.is_file() and not force:
        return json.loads(result.read_text())
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tracker", *args, "--out", str(run_dir), "--force"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"devset: track-cameras failed on {name} ({mode}): {proc.stderr.strip()[-2000:]}")
    row = {
        "scene": name,
        "mode": mode,
        "extra": shlex.join(extra),
        "seconds": round(time.perf_counter() - start, 1),
        "scene_dir": str(scene_dir),
        "run_dir": str(run_dir),
        **score(run_dir, scene_dir),
    }
    result.write_text(json.dumps(row, indent=2) + "\n")
    return row


def score(run_dir: Path, scene_dir: Path) -> dict:
    """Scores of a run against its scene's ground truth (module docstring); ratios in [0, 1]."""
    from tracker.evaluate import GroundTruth, evaluate_run, pairwise_f1

    metrics = evaluate_run(run_dir, scene_dir / "gt")
    labels, truth = tracklet_joins(run_dir / "results.sqlite", scene_dir / "gt")
    precision, recall, f1 = pairwise_f1(labels, truth) if len(labels) else (float("nan"),) * 3
    people = GroundTruth(scene_dir / "gt").people
    per_camera = [m["IDF1"] for m in metrics["cameras"].values() if m["IDF1"] is not None]
    return {
        "idf1_all": metrics["ALL"]["IDF1"],
        "idf1_camera_mean": float(np.mean(per_camera)) if per_camera else None,
        "hota_all": metrics["ALL"]["HOTA"],
        "identities": _identities(run_dir / "results.sqlite"),
        "people": len(people),
        "join_precision": precision,
        "join_recall": recall,
        "join_f1": f1,
        "tracklets_matched": len(labels),
    }


def _identities(store: Path) -> int:
    """Identities a run made: distinct global ids (each tracklet its own when not associated, id -1)."""
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT camera, track_id, global_id FROM tracklets").fetchall()
    return len({g if g >= 0 else (c, t) for c, t, g in rows})


def tracklet_joins(store: Path, gt_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N,) run labels and (N,) true person ids of the N output tracks that match a gt person: each
    track's boxes as the run wrote them (the store's ``track_boxes``, the MOT files' rows), labelled by
    :class:`tracker.evaluate.GroundTruth` (``strict``: tracks whose boxes mostly match nobody are left out). The label
    is the track's global id, or a label of its own when it has none (``-1``)."""
    from tracker.evaluate import GroundTruth
    from tracker.geometry import xywh_to_xyxy

    truth = GroundTruth(gt_dir)
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT camera, track_id, global_id, frame, x, y, w, h FROM track_boxes "
            "ORDER BY camera, track_id, frame"
        ).fetchall()
    tracks: dict[tuple[str, int], list] = {}
    for cam, tid, gid, *box in rows:
        tracks.setdefault((cam, int(tid)), []).append((int(gid), *box))
    labels, people = [], []
    for n, ((cam, _), items) in enumerate(sorted(tracks.items())):
        data = np.asarray([item[1:] for item in items], np.float64)
        person = truth.person(cam, data[:, 0], xywh_to_xyxy(data[:, 1:5]), strict=True)
        if person is not None:
            labels.append(items[0][0] if items[0][0] >= 0 else -(n + 1))
            people.append(person)
    return np.asarray(labels, np.int64), np.asarray(people, np.int64)


# ------------------------------------------------------------------------------------------------ table


_COLUMNS = (
    ("scene", "scene", "{}"),
    ("kind", "kind", "{}"),
    ("people", "people", "{}"),
    ("ids", "identities", "{}"),
    ("IDF1-ALL%", "idf1_all", "pct"),
    ("IDF1-cam%", "idf1_camera_mean", "pct"),
    ("HOTA-ALL%", "hota_all", "pct"),
    ("join-P%", "join_precision", "pct"),
    ("join-R%", "join_recall", "pct"),
    ("s", "seconds", "{}"),
)
_AVERAGED = ("idf1_all", "idf1_camera_mean", "hota_all", "join_precision", "join_recall")


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{100 * value:.1f}" if fmt == "pct" else fmt.format(value)


def table(rows: list[dict]) -> str:
    """One text table: a row per scene, then the mean per kind, the mean and the min over the set."""
    body = [[_cell(r.get(key), fmt) for _, key, fmt in _COLUMNS] for r in rows]
    summary = []
    groups = [(f"mean {k}", [r for r in rows if r["kind"] == k]) for k in sorted({r["kind"] for r in rows})]
    for label, group in [*groups, ("mean", rows)]:
        summary.append(
            [label, "", "", ""]
            + [_cell(float(np.nanmean([_num(r[k]) for r in group])), "pct") for k in _AVERAGED]
            + [""]
        )
    summary.append(
        ["min", "", "", ""]
        + [_cell(float(np.nanmin([_num(r[k]) for r in rows])), "pct") for k in _AVERAGED]
        + [""]
    )
    head = [c for c, _, _ in _COLUMNS]
    widths = [max(len(x[i]) for x in [head, *body, *summary]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = line(["-" * w for w in widths])
    return "\n".join([line(head), rule, *map(line, body), rule, *map(line, summary)])


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _glue_extra(argv: list[str]) -> list[str]:
    """``--extra VALUE`` as ``--extra=VALUE``, so that a value starting with ``--`` (``--no-associate``) parses."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--extra" and i + 1 < len(argv):
            out.append(f"--extra={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "dir", nargs="?", type=Path, default=DEFAULT_DIR, help=f"the set's folder (default {DEFAULT_DIR})"
    )
    ap.add_argument(
        "--build",
        nargs="?",
        type=Path,
        const=True,
        metavar="DIR",
        help="render the set (into DIR, default the set's folder) before running it",
    )
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--scenes", nargs="+", metavar="NAME", help="only these scenes")
    ap.add_argument("--extra", default="", help='extra track-cameras arguments, e.g. "--reid none"')
    ap.add_argument("--force", action="store_true", help="run again even when a cached run exists")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as JSON")
    args = ap.parse_args(_glue_extra(sys.argv[1:] if argv is None else argv))
    root = (args.build if isinstance(args.build, Path) else args.dir).resolve()
    if root == REPO or REPO in root.parents:
        ap.error(f"{root}: the set holds research-licensed pixels; put it outside the repository")
    scenes = tuple(s for s in SCENES if not args.scenes or s.name in args.scenes)
    if args.build is not None:
        build(root, scenes)
    manifest = root / "manifest.json"
    if not manifest.is_file():
        print(f"devset: {root} has no manifest.json; render the set first with --build")
        return 1
    kinds = {s["name"]: s["kind"] for s in json.loads(manifest.read_text())["scenes"]}
    names = [s.name for s in scenes if s.name in kinds]
    if not names:
        print(f"devset: no scene of {', '.join(s.name for s in scenes)} in {manifest}")
        return 1
    extra = shlex.split(args.extra)
    code_key = _code_key()
    os.environ.setdefault("MULTICAM_TRACKER_OFFLINE", "1")
    rows = []
    for mode in args.modes:
        mode_rows = []
        for name in names:
            row = run_scene(root, name, mode, extra, args.force, code_key)
            mode_rows.append({**row, "kind": kinds[name]})
        rows += mode_rows
        detections = " --detections DIR/gt/<camera>.txt ..." if mode == "gt" else ""
        print(
            f"\n== {mode}: track-cameras --videos DIR/cam*.mp4 {shlex.join(BASE_ARGS)}{detections} "
            f"{shlex.join(extra)}".rstrip()
        )
        print(table(mode_rows))
    print(
        "\nIDF1-ALL: all cameras as one sequence with global ids (multi-camera IDF1); IDF1-cam: mean per-camera "
        "IDF1; ids: identities made (people: in the ground truth); join-P/R: pairwise precision/recall of "
        "tracklets sharing a global id."
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
