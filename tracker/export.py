"""Exports of the results store: MOTChallenge files, identities.csv and the AI City MTMC file.

``export_run(RUN_DIR)`` reads ``RUN_DIR/results.sqlite`` and writes, each atomically:

* ``mot/<camera>.txt``: ``frame,id,x,y,w,h,conf,-1,-1,-1`` (MOTChallenge, as TrackEval reads it), 1-based
  frames, sorted by frame then id; ids are global ids when association ran or a correction was made,
  else per-camera track ids (:meth:`tracker.store.ResultsStore.uses_global_ids`).
* ``identities.csv``: ``global_id,label,cameras,first_time,last_time,num_tracklets`` (cameras joined by
  ``;`` in camera order, times in seconds on the common clock).
* ``mtmc.txt``: ``camera_id obj_id frame_id x y w h xworld yworld`` (AI City Challenge layout), camera_id
  the 1-based camera index in store order, integer pixel boxes, ground-plane metres of the box's foot
  point through the inverse homography, ``-1 -1`` for uncalibrated cameras.

The same runs as ``track-export RUN_DIR`` after corrections made in the review UI. Every file is written
through :class:`tracker.fsutil.RunDir` (camera names read back from the store are checked as file names, and
no path can leave the run directory), holding the run directory's lock, into a staging folder committed in
one step with the manifest updated; a run whose results store says it was written by this version but whose
manifest is missing or of another run (interrupted while its outputs were being replaced) is refused.
:func:`check_run` says whether a run directory is consistent.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np

from tracker.errors import InputError, cli_entry
from tracker.fsutil import RunDir, atomic_write_text, check_name
from tracker.geometry import foot_points, to_ground, xywh_to_xyxy
from tracker.mot import mot_text
from tracker.store import CAMERA_SEPARATOR, ResultsStore

DB_NAME = "results.sqlite"
EXPORTS = ("identities.csv", "mtmc.txt", "mot/*.txt")
"""The files :func:`export_run` writes (patterns relative to the run directory)."""


def results_path(run_dir: str | Path) -> Path:
    """``RUN_DIR/results.sqlite``; InputError when the run directory does not exist."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: run directory not found")
    return run_dir / DB_NAME


def identities_text(store: ResultsStore) -> str:
    """identities.csv text: one row a global identity, by global id."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["global_id", "label", "cameras", "first_time", "last_time", "num_tracklets"])
    for ident in store.identities():
        out.writerow(
            [
                ident.global_id,
                ident.label,
                CAMERA_SEPARATOR.join(ident.cameras),
                f"{ident.first_time:.3f}",
                f"{ident.last_time:.3f}",
                ident.num_tracklets,
            ]
        )
    return buf.getvalue()


def ground_points(homography: np.ndarray | None, xywh: np.ndarray) -> np.ndarray:
    """(N, 2) float64 ground-plane coordinates (metres) of the foot points of ``xywh`` boxes; ``-1`` where
    the camera is uncalibrated (``homography`` None or singular) or a point lies on or above the horizon."""
    out = np.full((len(xywh), 2), -1.0)
    if homography is None or not len(xywh):
        return out
    try:
        inverse = np.linalg.inv(np.asarray(homography, np.float64))
    except np.linalg.LinAlgError:
        return out
    ground = to_ground(inverse, foot_points(xywh_to_xyxy(np.asarray(xywh, np.float64))))
    ok = np.isfinite(ground).all(axis=1)
    out[ok] = ground[ok]
    return out


def mtmc_text(store: ResultsStore) -> str:
    """AI City MTMC text of every camera's boxes, by camera index, frame, then id."""
    lines = []
    for idx, cam in enumerate(store.cameras(), start=1):
        rows = store.mot_rows(cam.name)
        world = ground_points(cam.homography, rows[:, 2:6])
        for (f, i, x, y, w, h, _), (gx, gy) in zip(rows.tolist(), world.tolist()):
            lines.append(
                f"{idx} {int(i)} {int(f)} {round(x)} {round(y)} {round(w)} {round(h)} "
                + ("-1 -1" if gx == -1.0 and gy == -1.0 else f"{gx:.3f} {gy:.3f}")
            )
    return "".join(line + "\n" for line in lines)


def write_exports(store: ResultsStore, out: RunDir) -> list[Path]:
    """Write every export of ``store`` into ``out`` (a run directory or its staging folder); returns the
    paths written. Camera names are checked as file names (a store may come from anyone)."""
    written = []
    for cam in store.cameras():
        check_name(cam.name, f"{store.path}: camera name")
        path = out.path("mot", f"{cam.name}.txt")
        atomic_write_text(path, mot_text(store.mot_rows(cam.name)))
        written.append(path)
    for name, text in (("identities.csv", identities_text(store)), ("mtmc.txt", mtmc_text(store))):
        atomic_write_text(out.path(name), text)
        written.append(out.path(name))
    return written


def store_run_id(store: ResultsStore) -> str | None:
    """The run id the store records (None: written before run ids existed)."""
    run_id = store.meta().get("run_id")
    return run_id if isinstance(run_id, str) else None


def export_run(run_dir: str | Path) -> list[Path]:
    """Write every export of ``RUN_DIR/results.sqlite`` in one step; returns the paths written.

    Holds the run directory's lock (InputError while another writer has it); InputError when the run is
    incomplete (see :func:`check_run`)."""
    run = RunDir(run_dir)
    path = results_path(run_dir)
    if not path.is_file():
        raise InputError(f"{path}: no results database (run track-cameras to create it)")
    with run.lock("track-export"):
        run.remove_stale()
        with ResultsStore.open(path) as store:
            run_id = store_run_id(store)
            problem = run.incomplete(run_id)
            if problem:
                raise InputError(problem)
            with run.staging() as stage:
                names = [p.relative_to(stage.root).as_posix() for p in write_exports(store, stage)]
                run.commit(stage, EXPORTS, run_id, manifest=run.manifest() is not None)
    return [run.path(n) for n in names]


def check_run(run_dir: str | Path, hashes: bool = True) -> list[str]:
    """Why ``RUN_DIR`` is not a consistent run, one line a problem; [] when it is (or predates manifests).

    Incomplete: its results store was written by this version but the manifest is missing or of another run
    (a run interrupted while its outputs were being replaced). Changed: a file the manifest lists is missing
    or differs in size (or, with ``hashes``, in content) from what the run wrote."""
    run = RunDir(run_dir)
    path = results_path(run_dir)
    if not path.is_file():
        return [f"{path}: missing (the run did not finish)"] if run.manifest() is not None else []
    with ResultsStore.open(path, readonly=True) as store:
        return run.verify(store_run_id(store), hashes)


@cli_entry("track-export")
def main(argv: list[str] | None = None) -> int:
    """``track-export RUN_DIR``: regenerate a run's MOT files, identities.csv and mtmc.txt from its store."""
    parser = argparse.ArgumentParser(
        prog="track-export",
        description="Regenerate RUN_DIR/mot/<camera>.txt, identities.csv and mtmc.txt from "
        "RUN_DIR/results.sqlite (after corrections made in track-view).",
    )
    parser.add_argument("run_dir", type=Path, help="a run directory written by track-cameras")
    args = parser.parse_args(argv)
    paths = export_run(args.run_dir)
    for p in paths:
        print(p)
    return 0
