"""Exports of the results store: MOTChallenge files, identities.csv, the MTMC file, track-export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_store import HOMOGRAPHY, LAYOUT, write_test_run
from tracker.export import export_run, ground_points, main
from tracker.store import ResultsStore


@pytest.fixture
def run_dir(tmp_path) -> Path:
    run = write_test_run(tmp_path / "run", with_embedder=False)
    export_run(run)
    return run


def _mot(run: Path, camera: str) -> np.ndarray:
    return np.loadtxt(run / "mot" / f"{camera}.txt", delimiter=",", ndmin=2)


def test_mot_exact_format(run_dir):
    lines = (run_dir / "mot" / "cam1.txt").read_text().splitlines()
    # cam1 frame 1: only person 1 (track 1), box x = 50 + 30, y = 60 + 1, 40 x 120
    assert lines[0] == "1,1,80.00,61.00,40.00,120.00,0.800,-1,-1,-1"
    assert lines[4] == "5,1,96.00,61.00,40.00,120.00,0.800,-1,-1,-1"
    assert lines[5] == "5,2,110.00,62.00,40.00,120.00,0.800,-1,-1,-1"
    rows = _mot(run_dir, "cam1")
    assert rows.shape == (sum(f1 - f0 + 1 for _, c, _, f0, f1 in LAYOUT if c == "cam1"), 10)
    assert (rows[:, 7:] == -1).all()
    keys = rows[:, 0] * 1000 + rows[:, 1]
    assert (np.diff(keys) > 0).all(), "sorted by frame then id, one row per id and frame"
    # ids are global ids: person 3 has track id 3 in cam1 but appears with id 3, person 1's second
    # track (track id 4) is global id 1
    assert set(rows[rows[:, 0] >= 70, 1]) == {1}


def test_mot_readable_by_trackeval(run_dir):
    from trackeval.datasets import MotChallenge2DBox

    data, _ = MotChallenge2DBox._load_simple_text_file(str(run_dir / "mot" / "cam3.txt"))
    assert sorted(int(k) for k in data) == sorted(
        {f for _, c, _, f0, f1 in LAYOUT if c == "cam3" for f in range(f0, f1 + 1)}
    )
    assert [row[:2] for row in data["20"]] == [["20", "3"], ["20", "5"]]


def test_identities_csv(run_dir):
    lines = (run_dir / "identities.csv").read_text().splitlines()
    assert lines[0] == "global_id,label,cameras,first_time,last_time,num_tracklets"
    assert lines[1] == "1,,cam1;cam2,0.000,8.900,3"
    assert lines[2] == "2,,cam1;cam2;cam3,0.400,9.400,3"
    assert len(lines) == 6


def test_mtmc(run_dir):
    rows = np.loadtxt(run_dir / "mtmc.txt", ndmin=2)
    assert rows.shape[1] == 9
    assert set(rows[:, 0]) == {1, 2, 3}
    assert len(rows) == sum(f1 - f0 + 1 for *_, f0, f1 in LAYOUT)
    uncal = rows[rows[:, 0] != 2]
    assert (uncal[:, 7:] == -1).all()
    cam2 = rows[rows[:, 0] == 2]
    foot = np.c_[cam2[:, 3] + cam2[:, 5] / 2, cam2[:, 4] + cam2[:, 6]]
    np.testing.assert_allclose(cam2[:, 7], (foot[:, 0] - 100) / 20, atol=0.05)
    np.testing.assert_allclose(cam2[:, 8], (foot[:, 1] - 50) / 10, atol=0.1)
    first = (run_dir / "mtmc.txt").read_text().splitlines()[0].split()
    assert first == ["1", "1", "1", "80", "61", "40", "120", "-1", "-1"]


def test_ground_points_inverse_homography():
    ground = np.array([[1.0, 2.0], [3.5, -1.0]])
    pix = np.c_[ground, np.ones(2)] @ HOMOGRAPHY.T
    xywh = np.c_[pix[:, 0] - 10, pix[:, 1] - 40, np.full(2, 20.0), np.full(2, 40.0)]
    np.testing.assert_allclose(ground_points(HOMOGRAPHY, xywh), ground)
    assert (ground_points(None, xywh) == -1).all()
    assert (ground_points(np.zeros((3, 3)), xywh) == -1).all()


def test_merge_export_then_undo_restores(run_dir):
    before = {
        p.name: p.read_bytes()
        for p in [*(run_dir / "mot").iterdir(), run_dir / "identities.csv", run_dir / "mtmc.txt"]
    }
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        store.merge(4, 5)
    export_run(run_dir)
    cam3 = _mot(run_dir, "cam3")
    assert set(cam3[:, 1]) == {2, 3, 4} and (cam3[(cam3[:, 0] > 20) & (cam3[:, 0] <= 40), 1] == 4).all()
    assert (
        _mot(run_dir, "cam2").tolist()
        == np.loadtxt(
            [line for line in before["cam2.txt"].decode().splitlines()], delimiter=",", ndmin=2
        ).tolist()
    )
    assert "4,,cam2;cam3," in (run_dir / "identities.csv").read_text()
    assert " 5 " not in " ".join(line.split()[1] for line in (run_dir / "mtmc.txt").read_text().splitlines())

    with ResultsStore.open(run_dir / "results.sqlite") as store:
        store.split("cam1", 4)
    export_run(run_dir)
    assert set(_mot(run_dir, "cam1")[-21:, 1]) == {6}

    with ResultsStore.open(run_dir / "results.sqlite") as store:
        store.undo()
        store.undo()
    export_run(run_dir)
    after = {
        p.name: p.read_bytes()
        for p in [*(run_dir / "mot").iterdir(), run_dir / "identities.csv", run_dir / "mtmc.txt"]
    }
    assert after == before


def test_unassociated_exports_track_ids(tmp_path):
    run = write_test_run(tmp_path / "run", associated=False, with_embedder=False)
    export_run(run)
    assert set(_mot(run, "cam1")[:, 1]) == {1, 2, 3, 4}
    assert len((run / "identities.csv").read_text().splitlines()) == 11


def test_track_export_cli(run_dir, tmp_path, capsys):
    (run_dir / "identities.csv").unlink()
    with pytest.raises(SystemExit) as exc:
        main([str(run_dir)])
    assert exc.value.code == 0 and (run_dir / "identities.csv").is_file()
    assert "identities.csv" in capsys.readouterr().out
    for bad, msg in [(tmp_path / "nope", "run directory not found"), (tmp_path, "no results database")]:
        with pytest.raises(SystemExit) as exc:
            main([str(bad)])
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and err.startswith("track-export: error: ") and msg in err
        assert "\n" not in err


# ------------------------------------------------------------------------ writes stay inside, in one step


def _committed_run(root: Path, run_id: str = "run-1") -> Path:
    """A run directory as track-cameras leaves it: store, exports and run.json committed with a manifest."""
    import json

    from tests.test_store import make_cameras, make_tracklets
    from tracker.export import write_exports
    from tracker.fsutil import RunDir
    from tracker.pipeline import OUTPUTS
    from tracker.store import write_store

    run = RunDir(root)
    meta = {"tool": "multicam-tracker", "run_id": run_id}
    with run.staging() as stage:
        write_store(
            stage.path("results.sqlite"), meta=meta, cameras=make_cameras(), tracklets=make_tracklets()
        )
        with ResultsStore.open(stage.path("results.sqlite"), readonly=True) as store:
            write_exports(store, stage)
        stage.path("run.json").write_text(json.dumps(meta))
        run.commit(stage, OUTPUTS, run_id)
    return root


def test_store_camera_names_cannot_point_outside(tmp_path, capsys):
    """A results store from someone else whose camera is named ../../victim/notes truncates nothing."""
    from tests.test_store import make_cameras, make_tracklets
    from tracker.errors import InputError
    from tracker.store import write_store

    victim = tmp_path / "victim" / "notes.txt"
    victim.parent.mkdir()
    victim.write_text("precious")
    run = tmp_path / "a" / "b" / "run"
    run.mkdir(parents=True)
    cameras = make_cameras()
    tracklets = make_tracklets()
    evil = "../../../victim/notes"
    cameras[0].name = evil
    for t in tracklets:
        t.camera = evil if t.camera == "cam1" else t.camera
    write_store(run / "results.sqlite", meta={}, cameras=cameras, tracklets=tracklets)
    with pytest.raises(InputError, match="camera name: '../../../victim/notes' is not a safe camera name"):
        export_run(run)
    with pytest.raises(SystemExit) as exc:
        main([str(run)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "not a safe camera name" in err
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in run.iterdir()) == ["results.sqlite"]  # nothing written, no lock left


def test_a_symlink_out_of_the_run_directory_is_refused(run_dir, tmp_path):
    from tracker.errors import InputError

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "cam1.txt").write_text("precious")
    for p in (run_dir / "mot").iterdir():
        p.unlink()
    (run_dir / "mot").rmdir()
    (run_dir / "mot").symlink_to(elsewhere)  # a received run directory may hold links
    with pytest.raises(InputError, match="outside the run directory"):
        export_run(run_dir)
    assert (elsewhere / "cam1.txt").read_text() == "precious" and len(list(elsewhere.iterdir())) == 1


def test_export_updates_the_manifest_and_refuses_an_incomplete_run(tmp_path):
    import json

    from tracker.errors import InputError
    from tracker.export import check_run

    run = _committed_run(tmp_path / "run")
    assert check_run(run) == []
    before = json.loads((run / "manifest.json").read_text())
    with ResultsStore.open(run / "results.sqlite") as store:
        store.merge(4, 5)
    export_run(run)
    after = json.loads((run / "manifest.json").read_text())
    assert check_run(run) == [] and after["run_id"] == "run-1"
    assert after["files"]["mot/cam3.txt"] != before["files"]["mot/cam3.txt"]
    assert after["files"]["run.json"] == before["files"]["run.json"]  # not an export: kept
    (run / "manifest.json").unlink()  # what a run killed while committing its outputs leaves
    problems = check_run(run)
    assert len(problems) == 1 and "incomplete" in problems[0]
    with pytest.raises(InputError, match="incomplete: no manifest.json"):
        export_run(run)
    other = _committed_run(tmp_path / "other", run_id="run-2")
    (other / "manifest.json").replace(run / "manifest.json")
    with pytest.raises(
        InputError, match="inconsistent: manifest.json is of run run-2, results.sqlite of run run-1"
    ):
        export_run(run)


def test_export_waits_for_no_writer(run_dir):
    from tracker.errors import InputError
    from tracker.fsutil import RunDir

    with RunDir(run_dir).lock("track-cameras"):
        with pytest.raises(InputError, match="another track-cameras .* is writing this run directory"):
            export_run(run_dir)
    export_run(run_dir)
