"""tracker.evaluate: TrackEval scores per sequence, per camera and over all cameras (multi-camera IDF1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tracker.errors import InputError
from tracker.evaluate import evaluate_run, evaluate_sequences, main

REPO = Path(__file__).resolve().parents[1]
MOT17_DPM = [f"MOT17-{n:02d}-DPM" for n in (2, 4, 5, 9, 10, 11, 13)]


def tracks(people: int, frames: int, seed: int = 0, id_base: int = 1) -> np.ndarray:
    """(people * frames, 9) MOT gt rows ``frame, id, x, y, w, h, 1, 1, 1``: people walking side by side."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(people):
        x0, vx = 30.0 + 120 * p, rng.uniform(-1, 1)
        for f in range(1, frames + 1):
            rows.append([f, id_base + p, x0 + vx * f, 50 + 0.5 * f, 40, 100, 1, 1, 1])
    return np.array(rows)


def write_mot(path: Path, rows: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(f"{v:g}" for v in r) + "\n" for r in rows))
    return path


def as_results(gt: np.ndarray) -> np.ndarray:
    """Results in the exporter's layout ``frame, id, x, y, w, h, conf, -1, -1, -1`` with gt's boxes and
    ids."""
    return np.c_[gt[:, :6], np.ones(len(gt)), -np.ones((len(gt), 3))]


def make_run(tmp_path: Path, gt: dict[str, np.ndarray], res: dict[str, np.ndarray]) -> tuple[Path, Path]:
    """A track-sim style gt folder and a run directory with mot/<camera>.txt."""
    for cam, rows in gt.items():
        write_mot(tmp_path / "scene" / "gt" / f"{cam}.txt", rows)
    for cam, rows in res.items():
        write_mot(tmp_path / "run" / "mot" / f"{cam}.txt", rows)
    return tmp_path / "run", tmp_path / "scene" / "gt"


# ------------------------------------------------------------------------------------- single sequence


def test_perfect_result_scores_one(tmp_path):
    gt = write_mot(tmp_path / "gt.txt", tracks(4, 40))
    out = evaluate_sequences({"seq": (gt, gt)})
    m = out["sequences"]["seq"]
    assert m["HOTA"] == pytest.approx(1.0) and m["IDF1"] == pytest.approx(1.0)
    assert m["MOTA"] == pytest.approx(1.0)
    assert (m["IDSW"], m["FP"], m["FN"], m["GT_IDs"], m["IDs"]) == (0, 0, 0, 4, 4)
    assert out["COMBINED"] == m


def test_swapped_ids_midway_cost_identity(tmp_path):
    gt = tracks(2, 60)
    res = as_results(gt)
    late = res[:, 0] > 30
    res[late, 1] = 3 - res[late, 1]  # ids 1 and 2 swap from frame 31 on
    m = evaluate_sequences({"s": (write_mot(tmp_path / "gt.txt", gt), write_mot(tmp_path / "r.txt", res))})
    m = m["sequences"]["s"]
    assert m["IDSW"] >= 1
    assert m["IDF1"] < 0.75 and m["AssA"] < 0.75
    assert m["MOTA"] == pytest.approx(1 - m["IDSW"] / len(gt))  # every box is still found


def test_mot_preprocessing_distractors_and_zero_marked(tmp_path):
    """Class-7 (static person) gt is not scored and results on it are not false positives; mark 0 is
    ignored."""
    walker = tracks(1, 20)
    static = tracks(1, 20, id_base=2)
    static[:, 2] += 300
    static[:, 7] = 7
    ignored = tracks(1, 20, id_base=3)
    ignored[:, 2] += 600
    ignored[:, 6] = 0
    gt = np.r_[walker, static, ignored]
    res = as_results(gt)  # boxes on all three
    m = evaluate_sequences({"s": (write_mot(tmp_path / "gt.txt", gt), write_mot(tmp_path / "r.txt", res))})
    m = m["sequences"]["s"]
    assert m["GT_IDs"] == 1 and m["GT_Dets"] == 20
    assert (
        m["FP"] == 20
    )  # only the result boxes on the zero-marked person count; the static person's are removed
    assert m["FN"] == 0 and m["IDF1"] < 1


def test_sequence_errors_name_the_input(tmp_path):
    gt = tracks(2, 10)
    gt_file = write_mot(tmp_path / "MOT-X" / "gt" / "gt.txt", gt)
    (tmp_path / "MOT-X" / "seqinfo.ini").write_text("[Sequence]\nname=MOT-X\nseqLength=8\n")
    with pytest.raises(InputError, match="beyond seqLength 8"):
        evaluate_sequences({"x": (gt_file, gt_file)})
    dup = as_results(gt)
    dup[:, 1] = 5  # two boxes with one id in every frame
    with pytest.raises(InputError, match="same ID more than once"):
        evaluate_sequences({"x": (write_mot(tmp_path / "g.txt", gt), write_mot(tmp_path / "d.txt", dup))})
    (tmp_path / "bad.txt").write_text("1,2,three,4,5,6\n")
    with pytest.raises(InputError, match="bad.txt: not a MOTChallenge file"):
        evaluate_sequences({"x": (tmp_path / "bad.txt", None)})


# ------------------------------------------------------------------------------------- multi-camera


def test_all_cameras_reward_consistent_global_ids(tmp_path):
    gt = {"cam1": tracks(3, 50, seed=1), "cam2": tracks(3, 40, seed=2)}  # the same three people in both
    run, gt_dir = make_run(tmp_path, gt, {c: as_results(g) for c, g in gt.items()})
    out = evaluate_run(run, gt_dir)
    assert out["ALL"]["IDF1"] == pytest.approx(1.0) and out["ALL"]["IDSW"] == 0
    assert out["frames"] == {"cam1": 50, "cam2": 40}
    assert json.loads((run / "metrics.json").read_text()) == out

    renumbered = as_results(gt["cam2"])
    renumbered[:, 1] += 100  # cam2 tracked perfectly, but with its own ids
    write_mot(run / "mot" / "cam2.txt", renumbered)
    out = evaluate_run(run, gt_dir)
    for cam in ("cam1", "cam2"):
        assert out["cameras"][cam]["IDF1"] == pytest.approx(1.0) and out["cameras"][cam]["IDSW"] == 0
    assert out["COMBINED"]["IDF1"] == pytest.approx(1.0)
    assert out["ALL"]["IDF1"] < 0.6  # each person is split 50:40 between two ids
    assert out["ALL"]["IDSW"] == 3 and out["ALL"]["MOTA"] < 1


def test_run_missing_results_and_extra_results(tmp_path):
    gt = {"cam1": tracks(2, 30), "cam2": tracks(2, 30), "cam3": tracks(1, 30)}
    run, gt_dir = make_run(
        tmp_path,
        gt,
        {"cam1": as_results(gt["cam1"]), "cam2": as_results(gt["cam2"]), "lobby": as_results(gt["cam1"])},
    )
    (run / "run.json").write_text(json.dumps({"cameras": [{"name": "cam3", "frames_total": 45}]}))
    out = evaluate_run(run, gt_dir)
    assert list(out["cameras"]) == ["cam1", "cam2", "cam3"]
    assert out["missing_results"] == ["cam3"] and out["no_gt"] == ["lobby"]
    assert out["cameras"]["cam3"]["FN"] == 30 and out["cameras"]["cam3"]["MOTA"] == 0
    assert out["frames"]["cam3"] == 45
    assert out["ALL"]["FN"] == 30 and out["ALL"]["IDF1"] == pytest.approx(240 / 270)

    only = evaluate_run(run, tmp_path / "scene", cameras=["cam2"])  # a scene folder with gt/ inside works too
    assert list(only["cameras"]) == ["cam2"] and only["ALL"]["IDF1"] == pytest.approx(1.0)
    with pytest.raises(InputError, match="lobby has no ground truth"):
        evaluate_run(run, gt_dir, cameras=["lobby"])


def test_run_against_motchallenge_layout(tmp_path):
    seq = tmp_path / "gt" / "SEQ-01"
    write_mot(seq / "gt" / "gt.txt", tracks(2, 20))
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ-01\nseqLength=25\n")
    write_mot(tmp_path / "run" / "mot" / "SEQ-01.txt", as_results(tracks(2, 20)))
    out = evaluate_run(tmp_path / "run", tmp_path / "gt")
    assert out["frames"] == {"SEQ-01": 25} and out["cameras"]["SEQ-01"]["HOTA"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------- real reference data


def _summary_file(path: Path) -> dict[str, float]:
    head, values = path.read_text().split("\n")[:2]
    return dict(zip(head.split(), map(float, values.split())))


@pytest.mark.slow
def test_matches_trackeval_reference_on_mot17(eval_data):
    """MPNTrack on the 7 MOT17-*-DPM train sequences (112,297 gt boxes) vs TrackEval's published output."""
    root = eval_data / "mot-gt-full"
    trk = root / "trackers" / "mot_challenge" / "MOT17-train" / "MPNTrack"
    pairs = {
        s: (root / "gt" / "mot_challenge" / "MOT17-train" / s / "gt" / "gt.txt", trk / "data" / f"{s}.txt")
        for s in MOT17_DPM
    }
    out = evaluate_sequences(pairs)

    ref = _summary_file(trk / "pedestrian_summary.txt")
    got = out["COMBINED"]
    for key in ("HOTA", "DetA", "AssA", "LocA", "IDF1", "IDP", "IDR", "MOTA", "MOTP"):
        assert 100 * got[key] == pytest.approx(ref[key], abs=0.01), key
    names = {"FP": "CLR_FP", "FN": "CLR_FN"}
    for key in ("IDSW", "FP", "FN", "Frag", "MT", "PT", "ML", "GT_IDs", "IDs", "GT_Dets", "Dets"):
        assert got[key] == ref[names.get(key, key)], key
    assert (round(100 * got["HOTA"], 1), round(100 * got["MOTA"], 3), round(100 * got["IDF1"], 3)) == (
        59.3,
        59.133,
        68.001,
    )

    lines = (trk / "pedestrian_detailed.csv").read_text().splitlines()
    cols = lines[0].split(",")
    for line in lines[1:]:
        row = dict(zip(cols, line.split(",")))
        if row["seq"] == "COMBINED":
            continue
        mine = out["sequences"][row["seq"]]
        assert mine["HOTA"] == pytest.approx(float(row["HOTA___AUC"]), abs=1e-9)
        assert mine["IDF1"] == pytest.approx(float(row["IDF1"]), abs=1e-9)
        assert mine["MOTA"] == pytest.approx(float(row["MOTA"]), abs=1e-9)
        assert mine["IDSW"] == int(float(row["IDSW"]))


def test_mot15_ground_truth_without_classes(eval_data):
    """MOT15 gt (class column -1): py-motmetrics' TUD-Campus hypotheses, values quoted by EvalDeT."""
    root = eval_data / "mot-gt-full"
    gt = root / "gt" / "mot_challenge" / "MOT15-train" / "TUD-Campus" / "gt" / "gt.txt"
    res = root / "trackers" / "mot_challenge" / "MOT15-train" / "motmetrics_test" / "data" / "TUD-Campus.txt"
    m = evaluate_sequences({"TUD-Campus": (gt, res)})["sequences"]["TUD-Campus"]
    assert (m["FP"], m["FN"], m["IDSW"]) == (13, 150, 7)
    assert m["MOTA"] == pytest.approx(0.526, abs=5e-4) and m["IDF1"] == pytest.approx(0.558, abs=5e-4)
    assert m["HOTA"] == pytest.approx(0.3914, abs=5e-5) and m["AssA"] == pytest.approx(0.3691, abs=5e-5)


# ------------------------------------------------------------------------------------- CLI


def test_cli_missing_run_dir_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nope"), "--gt", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("track-eval: error: ") and "nope" in err[0]


def test_cli_no_matching_cameras_is_exit_2(tmp_path, capsys):
    run, gt_dir = make_run(tmp_path, {"cam1": tracks(1, 5)}, {"other": as_results(tracks(1, 5))})
    with pytest.raises(SystemExit) as exit_info:
        main([str(run), "--gt", str(gt_dir)])
    assert exit_info.value.code == 2
    assert "no ground truth matches" in capsys.readouterr().err


def test_cli_prints_table_and_json(tmp_path, capsys):
    gt = {"cam1": tracks(2, 20), "cam2": tracks(2, 20)}
    run, gt_dir = make_run(tmp_path, gt, {c: as_results(g) for c, g in gt.items()})
    with pytest.raises(SystemExit) as exit_info:
        main([str(run), "--gt", str(gt_dir), "--cameras", "cam1,cam2", "--json"])
    assert exit_info.value.code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["ALL"]["IDF1"] == pytest.approx(1.0) and (run / "metrics.json").is_file()

    proc = subprocess.run(
        [sys.executable, "-m", "tracker.evaluate", str(run), "--gt", str(gt_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:5] == ["camera", "HOTA%", "DetA%", "AssA%", "IDF1%"] and "IDSW" in lines[0]
    rows = {
        ln.split()[0]: ln.split()
        for ln in lines[2:]
        if ln.split() and ln.split()[0] in ("cam1", "cam2", "COMBINED", "ALL")
    }
    assert set(rows) == {"cam1", "cam2", "COMBINED", "ALL"}
    assert rows["ALL"][1] == "100.0" and proc.stderr == ""


def test_ground_truth_names_the_person_a_track_follows(tmp_path):
    from tracker.evaluate import GroundTruth

    gt = tracks(2, 10)  # person 1 at x = 30 + ..., person 2 at x = 150 + ...
    write_mot(tmp_path / "gt" / "cam1.txt", gt)
    truth = GroundTruth(tmp_path / "gt")
    assert truth.people == {1, 2}
    one = gt[gt[:, 1] == 1]
    xyxy = np.c_[one[:, 2:4], one[:, 2:4] + one[:, 4:6]]
    # the person most boxes match, even when some frames follow the other person or nobody
    mixed = xyxy.copy()
    two = gt[gt[:, 1] == 2]
    mixed[:3] = np.c_[two[:3, 2:4], two[:3, 2:4] + two[:3, 4:6]]
    mixed[3:5] += 500  # matches nobody
    assert truth.person("cam1", one[:, 0], mixed) == 1
    # strict: a track that mostly matches nobody follows nobody; the default still names its person
    far = xyxy.copy()
    far[:6] += 500
    assert truth.person("cam1", one[:, 0], far) == 1
    assert truth.person("cam1", one[:, 0], far, strict=True) is None
    assert truth.person("cam1", one[:, 0], xyxy + 500) is None
    assert truth.person("cam2", one[:, 0], xyxy) is None  # a camera without ground truth
