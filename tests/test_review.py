"""The review queue (tracker.review): question order, answers re-associating what they affect, undo, the
track-review command line, and corrections kept when track-cameras runs again.

``write_review_run`` builds the run most of these tests (and the app tests) use: a synthetic 4-camera scene
of 12 people with known identities (:func:`tracker.synthetic.tracklets.synthetic_scene`, look-alike groups,
so the association makes mistakes), associated with the run's config, with a crop of each person's own
colour and a calibration file, written through ``write_store`` like the pipeline does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker import review
from tracker.association import associate
from tracker.config import AssociateConfig, PipelineConfig, to_dict
from tracker.errors import InputError
from tracker.evaluate import pairwise_f1
from tracker.export import export_run
from tracker.fsutil import atomic_path
from tracker.review.cli import run_cli
from tracker.review.queue import AnswerModel, p_same, ranked
from tracker.store import Change, ResultsStore, write_store
from tracker.synthetic.tracklets import synthetic_scene
from tracker.types import CameraInfo, Crop

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_videos"
ZONES = (0, 0, 1, 2)


def colour(person: int) -> np.ndarray:
    """A distinct BGR colour per person (hue steps of the golden ratio)."""
    hue = int((person * 0.618033988749895 % 1.0) * 179)
    return cv2.cvtColor(np.uint8([[[hue, 200, 230]]]), cv2.COLOR_HSV2BGR)[0, 0].astype(np.int16)


def crop_image(person: int, rng: np.random.Generator) -> np.ndarray:
    """A 96 x 40 crop: the person's colour with a little noise and a dark head, ``uint8`` BGR."""
    img = np.clip(colour(person) + rng.integers(-10, 11, (96, 40, 3)), 0, 255).astype(np.uint8)
    img[:14] = 40
    return img


def write_review_run(
    run_dir: Path, seed: int = 1, people: int = 12
) -> tuple[Path, dict[tuple[str, int], int]]:
    """The synthetic run of the module docstring in ``run_dir``; returns it and the true person of every
    tracklet."""
    scene = synthetic_scene(people, ZONES, dim=32, seed=seed, look_alike=0.5, noise=0.9, rate=0.4)
    run_dir.mkdir(parents=True, exist_ok=True)
    calibration = run_dir / "calibration.json"
    calibration.write_text(json.dumps({c: h.tolist() for c, h in scene.calibration.homographies.items()}))
    cfg = dataclasses.replace(
        PipelineConfig(), associate=AssociateConfig(links=scene.links, calibration=str(calibration))
    )
    rng = np.random.default_rng(seed)
    for t, p in zip(scene.tracklets, scene.person):
        t.crops = [
            Crop(int(f), t.boxes[i].astype(np.float32), 0.9, 0.5 + 0.01 * i, crop_image(int(p), rng))
            for i, f in list(enumerate(t.frames))[:: max(1, len(t) // 6)]
        ]
    assoc = associate(scene.tracklets, cfg.associate, scene.calibration)
    for t, g in zip(scene.tracklets, assoc.global_ids):
        t.global_id = int(g)
    last = max(int(t.frames[-1]) for t in scene.tracklets)
    cameras = [
        CameraInfo(c, f"/nonexistent/{c}.mp4", 640, 360, 5.0, 0.0, last, last, h)
        for c, h in sorted(scene.calibration.homographies.items())
    ]
    meta = {
        "tool": "multicam-tracker",
        "config": to_dict(cfg),
        "association": assoc.info,
        "detectors": {c.name: {"detector": "motion"} for c in cameras},
        "embedder": {"embedder": "histogram", "dim": 32, "device": "cpu"},
        "num_tracklets": len(scene.tracklets),
    }
    with atomic_path(run_dir / "results.sqlite") as tmp:
        write_store(tmp, meta=meta, cameras=cameras, tracklets=scene.tracklets, evidence=assoc.evidence)
    (run_dir / "run.json").write_text(json.dumps(meta))
    export_run(run_dir)
    return run_dir, {t.key: int(p) for t, p in zip(scene.tracklets, scene.person)}


@pytest.fixture
def run(tmp_path):
    return write_review_run(tmp_path / "run")


def state(store: ResultsStore) -> tuple:
    """Everything an answer may change: memberships, identities, evidence, questions, MOT rows."""
    return (
        [(t.key, t.global_id) for t in store.tracklet_infos()],
        store.identities(),
        sorted(
            (e.id, e.global_id, e.a, e.b, e.reason)
            for i in store.identities()
            for e in store.evidence(i.global_id)
        ),
        store.questions(None),
        [store.mot_rows(c.name).tolist() for c in store.cameras()],
    )


def truthful(truth: dict, q) -> str:
    return "same" if truth[q.a] == truth[q.b] else "different"


def f1(store: ResultsStore, truth: dict) -> float:
    infos = store.tracklet_infos()
    return pairwise_f1(np.array([t.global_id for t in infos]), np.array([truth[t.key] for t in infos]))[2]


# ----------------------------------------------------------------------------------------------------------
# the order of the questions


def test_p_same_is_a_coin_toss_at_the_threshold_and_learns_from_answers():
    assert p_same(0.6, 0.6) == pytest.approx(0.5)
    assert p_same(0.3, 0.6) > 0.85 > 0.15 > p_same(0.9, 0.6)
    # the reviewer keeps saying that same-camera pairs at the threshold are different people
    said = [("near_miss", ("cam1", i), ("cam1", i + 10), 0.6, {}, False) for i in range(6)]
    model = AnswerModel(0.6, said)
    assert model.p_same("near_miss", ("cam1", 1), ("cam1", 2), 0.6) < 0.2
    # other cameras: less so (the bias learns a little of it too)
    assert model.p_same("near_miss", ("cam1", 1), ("cam2", 2), 0.6) > 1.5 * model.p_same(
        "near_miss", ("cam1", 1), ("cam1", 2), 0.6
    )
    # a walk at a pedestrian's pace is more likely one person than one at three times that pace
    assert model.p_same("near_miss", ("a", 1), ("b", 2), 0.6, {"speed": 1.3}) > 2 * model.p_same(
        "near_miss", ("a", 1), ("b", 2), 0.6, {"speed": 3.9}
    )


def test_questions_are_ordered_by_expected_change(run):
    run_dir, _ = run
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        idents = [i for i in store.identities() if i.num_tracklets >= 2]
        big, other = idents[0], next(i for i in store.identities() if i.global_id != idents[0].global_id)
        a, b = store.identity_keys([big.global_id])[big.global_id][:2]
        c = store.identity_keys([other.global_id])[other.global_id][0]
        boxes = store.identity_boxes()
        questions = [
            ("join", a, b, 0.58, 500, "join at the threshold, 500 boxes", {}),
            ("join", a, b, 0.10, 500, "join far below the threshold", {}),
            ("near_miss", a, c, 0.62, 0, "near miss just above", {}),
            ("near_miss", a, c, 1.50, 0, "near miss far above", {}),
            ("near_miss", a, b, 0.62, 0, "obsolete: a and b are one identity", {}),
            ("join", a, c, 0.30, 50, "obsolete: a and c are two identities", {}),
        ]
        store.replace_questions(questions, {"built": True})
        order = [r.question.reason for r in ranked(store, 0.6)]
        stake = min(boxes[big.global_id], boxes[other.global_id])
        expected = sorted(
            [("join at the threshold, 500 boxes", (1 - p_same(0.58, 0.6)) * 500)]
            + [("near miss just above", p_same(0.62, 0.6) * stake)],
            key=lambda x: -x[1],
        )
        # a pair is asked once (its likeliest question) and obsolete questions are not asked at all
        assert order == [name for name, _ in expected]
        # a pair the reviewer already spoke about is not asked again
        q = next(r.question for r in ranked(store, 0.6) if r.question.kind == "near_miss")
        review.answer(store, q.id, "different")
        assert all(frozenset((r.question.a, r.question.b)) != frozenset((a, c)) for r in ranked(store, 0.6))


# ----------------------------------------------------------------------------------------------------------
# answers and re-association with constraints


def test_truthful_answers_make_the_identities_right(run):
    run_dir, truth = run
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        review.build_queue(store)
        before = f1(store, truth)
        threshold = review.run_setting(store).cfg.threshold
        for _ in range(20):
            top = ranked(store, threshold, limit=1)
            if not top:
                break
            review.answer(store, top[0].question.id, truthful(truth, top[0].question))
        after = f1(store, truth)
    assert before < 0.8  # the association alone gets this scene wrong (0.74 measured)
    assert after > 0.93  # 20 answers put it right (0.97 measured)


def test_answers_change_only_what_they_are_about(run):
    run_dir, truth = run
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        review.build_queue(store)
        threshold = review.run_setting(store).cfg.threshold
        items = ranked(store, threshold)
        # agreeing with the association changes no identity
        agree = next(
            r
            for r in items
            if (truthful(truth, r.question) == "same") == (r.global_ids[0] == r.global_ids[1])
        )
        before = state(store)[0]
        out = review.answer(
            store, agree.question.id, "same" if agree.global_ids[0] == agree.global_ids[1] else "different"
        )
        assert state(store)[0] == before and "as associated" in out.message
        # "same" to two identities joins them, and changes no identity outside the two
        apart = next(r for r in ranked(store, threshold) if r.global_ids[0] != r.global_ids[1])
        ga, gb = apart.global_ids
        members = store.identity_keys([i.global_id for i in store.identities()])
        out = review.answer(store, apart.question.id, "same")
        after = store.identity_keys([i.global_id for i in store.identities()])
        joined = next(g for g, ks in after.items() if apart.question.a in ks)
        assert apart.question.b in after[joined] and joined in (ga, gb)
        inside = set(members[ga]) | set(members[gb])
        assert set(after[joined]) <= inside  # exactly the union, unless a cannot-link made both fall apart
        assert {frozenset(ks) for ks in after.values() if not set(ks) & inside} == {
            frozenset(ks) for g, ks in members.items() if g not in (ga, gb)
        }
        assert any(w in out.message for w in ("are now identity", "joined identity", "is now ")), out.message
        # "different" to two tracklets of one identity separates them
        store.replace_questions(
            [("join", apart.question.a, apart.question.b, 0.5, 10, "test", {})], {"built": True}
        )
        q = store.questions()[0]
        review.answer(store, q.id, "different")
        gid = store.global_ids_of([q.a, q.b])
        assert gid[q.a] != gid[q.b]


def test_undo_restores_exactly_and_an_older_answer_can_be_taken_back(run):
    run_dir, truth = run
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        review.build_queue(store)
        threshold = review.run_setting(store).cfg.threshold
        original = state(store)
        history = [original]
        edits = []
        for _ in range(4):
            r = next(r for r in ranked(store, threshold) if r.global_ids[0] != r.global_ids[1])
            edits.append(review.answer(store, r.question.id, "same").edit_id)
            history.append(state(store))
        for expected in reversed(history[:-1]):  # newest first, exactly
            review.undo(store)
            assert state(store) == expected
        assert review.undo(store).message == "Nothing to undo." or all(e.undone for e in store.edits())
        # an older answer taken back: its pair is apart again, the later answers still hold
        first = None
        for _ in range(3):
            r = next(r for r in ranked(store, threshold) if r.global_ids[0] != r.global_ids[1])
            out = review.answer(store, r.question.id, "same")
            first = first or (out.edit_id, r.question)
        eid, q = first
        later = [e for e in store.edits() if e.action == "answer" and not e.undone and e.id != eid]
        out = review.undo(store, eid)
        assert "Took back edit" in out.message
        gid = store.global_ids_of([q.a, q.b])
        assert gid[q.a] != gid[q.b]
        assert store.question(q.id).status == "open"  # it may be asked again
        for e in later:
            g = store.global_ids_of([tuple(e.params["a"]), tuple(e.params["b"])])
            assert len(set(g.values())) == 1
        review.undo(store)  # the take-back itself is undone, exactly
        gid = store.global_ids_of([q.a, q.b])
        assert gid[q.a] == gid[q.b]
        with pytest.raises(InputError, match="already answered"):
            review.answer(store, q.id, "different")


def test_constraints_from_the_edit_log(run):
    run_dir, _ = run
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        idents = store.identities()
        keys = store.identity_keys([i.global_id for i in idents])
        a, b = idents[0].global_id, idents[1].global_id
        try:
            review.merge(store, a, b)
        except InputError:
            pytest.skip("the first two identities cannot be one person")
        cons = review.active_constraints(store)
        anchor = keys[a][0]
        assert {(anchor, k) for k in (keys[a] + keys[b])[1:]} <= set(cons.same)
        x = keys[a][0] if len(keys[a]) > 1 else keys[b][0]
        review.split(store, *x)
        cons = review.active_constraints(store)
        assert any(x in p for p in cons.different)
        # a later "same" takes back the earlier cannot-links between the two groups
        y = next(k for k in keys[a] + keys[b] if k != x)
        store.replace_questions([("near_miss", x, y, 0.7, 0, "test", {})], {"built": True})
        review.answer(store, store.questions()[0].id, "same")
        cons = review.active_constraints(store)
        assert (x, y) in cons.same and not any({x, y} == set(p) for p in cons.different)


def test_merge_keeps_its_id_and_refuses_one_camera_twice(run):
    run_dir, _ = run
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        infos = store.tracklet_infos()
        by_cam: dict[str, list] = {}
        for t in infos:
            by_cam.setdefault(t.camera, []).append(t)
        x, y = next(
            (s, t)
            for ts in by_cam.values()
            for s in ts
            for t in ts
            if s.global_id != t.global_id and s.first_time <= t.last_time and t.first_time <= s.last_time
        )
        with pytest.raises(InputError, match="at the same time"):
            review.merge(store, x.global_id, y.global_id)
        idents = [i.global_id for i in store.identities()]
        for keep in idents:
            for other in idents:
                if keep != other:
                    try:
                        out = review.merge(store, keep, other)
                    except InputError:
                        continue
                    assert store.identity(other) is None and store.identity(keep) is not None
                    assert out.message == f"Merged identity {other} into {keep}."
                    return


# ----------------------------------------------------------------------------------------------------------
# the command line


def cli(*args) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run_cli([str(a) for a in args]) == 0
    return out.getvalue()


def test_track_review_next_answer_json(run):
    run_dir, truth = run
    q = json.loads(cli(run_dir, "--next", "--json"))
    assert set(q) == {"id", "a", "b", "distance", "reason"} and isinstance(q["id"], int)
    assert isinstance(q["distance"], float) and q["reason"]
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        for side in ("a", "b"):
            s = q[side]
            assert set(s) == {"camera", "track_id", "global_id", "samples"}
            info = store.tracklet_info(s["camera"], s["track_id"])
            assert s["global_id"] == info.global_id
            assert 1 <= len(s["samples"]) <= 5
            rows = {int(r[0]): r for r in store.mot_rows(s["camera"]).tolist() if r[1] == info.global_id}
            for frame, x, y, w, h in s["samples"]:  # the boxes of the MOT file at those frames
                assert info.first_frame <= frame <= info.last_frame
                assert rows[frame][2:6] == pytest.approx([x, y, w, h], abs=0.01)
    before = (run_dir / "identities.csv").read_text()
    reply = (
        "same"
        if truth[(q["a"]["camera"], q["a"]["track_id"])] == truth[(q["b"]["camera"], q["b"]["track_id"])]
        else "different"
    )
    flip = (reply == "same") != (q["a"]["global_id"] == q["b"]["global_id"])
    out = json.loads(cli(run_dir, "--answer", q["id"], reply, "--json"))
    assert out["edit"] >= 1 and out["message"]
    assert ((run_dir / "identities.csv").read_text() != before) == flip
    nxt = json.loads(cli(run_dir, "--next", "--json"))
    assert nxt["id"] != q["id"]
    text = cli(run_dir)
    assert "1 answers" in text and "questions open" in text
    cli(run_dir, "--undo")
    assert (run_dir / "identities.csv").read_text() == before


def test_track_review_nothing_left_and_bad_input(run, tmp_path, capsys):
    alone, _ = write_review_run(tmp_path / "alone", people=1)  # one person: the queue runs out
    for _ in range(40):
        q = json.loads(cli(alone, "--next", "--json"))
        if q["id"] is None:
            break
        cli(alone, "--answer", q["id"], "same")
    assert q == {"id": None} and "Nothing left to ask." in cli(alone, "--next")
    assert (alone / "identities.csv").read_text().count("\n") == 2  # the header and the one person
    run_dir, _ = run
    cases = [
        ([str(run_dir), "--answer", "999", "same"], "question 999: no such question"),
        ([str(run_dir), "--answer", "x", "same"], "a question id is a whole number"),
        ([str(run_dir), "--answer", "1", "maybe"], "the answer is one of same, different, skip"),
        ([str(tmp_path / "nope"), "--next"], "run directory not found"),
    ]
    from tracker.review import main

    for argv, message in cases:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and err.startswith("track-review: error: ") and message in err
        assert "\n" not in err


def test_a_correction_waits_for_a_run_writing_the_directory(run):
    """While track-cameras holds the run directory (it reads the old store's corrections, then replaces the
    store), an answer would land in a store about to be replaced: it is refused with the writer named, and
    nothing changes; once the run is done the same answer is taken."""
    from tracker.fsutil import RunDir
    from tracker.review import main

    run_dir, truth = run
    q = json.loads(cli(run_dir, "--next", "--json"))
    before = log_rows(run_dir), (run_dir / "identities.csv").read_bytes()
    with RunDir(run_dir).lock("track-cameras"):
        with pytest.raises(InputError, match="track-cameras .* is writing this run directory"):
            run_cli([str(run_dir), "--answer", str(q["id"]), "same"])
        with pytest.raises(SystemExit) as exc:
            main([str(run_dir), "--undo"])
        assert exc.value.code == 2
    assert (log_rows(run_dir), (run_dir / "identities.csv").read_bytes()) == before
    assert json.loads(cli(run_dir, "--answer", q["id"], "same", "--json"))["edit"] >= 1


# ----------------------------------------------------------------------------------------------------------
# corrections survive re-runs


def track(out: Path, *extra: str, cams=(1, 2, 3)) -> dict:
    """track-cameras on the sample scene with its ground-truth boxes as detections (fast), into ``out``."""
    cmd = [sys.executable, "-m", "tracker", "--videos", *(str(SAMPLE / f"cam{i}.mp4") for i in cams)]
    cmd += ["--detections", *(str(SAMPLE / "gt" / f"cam{i}.txt") for i in cams)]
    cmd += [
        "--calibration",
        str(SAMPLE / "scene.json"),
        "--out",
        str(out),
        "--offline",
        "--quiet",
        "--no-video",
    ]
    cmd += ["--workers", "1", *extra]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO, timeout=900, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "run.json").read_text())


def outputs(run_dir: Path) -> dict[str, bytes]:
    files = sorted((run_dir / "mot").glob("*.txt")) + [run_dir / "identities.csv", run_dir / "mtmc.txt"]
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in files}


def log_rows(run_dir: Path) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(run_dir / "results.sqlite")
    try:
        return conn.execute(
            "SELECT id, time, action, params, undo, undone FROM edit_log ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_rerun_keeps_the_corrections_byte_for_byte(tmp_path):
    out = tmp_path / "run"
    track(out)
    truth_people = {}
    with ResultsStore.open(out / "results.sqlite") as store:
        review.build_queue(store)
        threshold = review.run_setting(store).cfg.threshold
        for r in ranked(store, threshold)[:3]:
            review.answer(store, r.question.id, "same" if r.global_ids[0] != r.global_ids[1] else "different")
        first = store.identities()[0]
        review.label(store, first.global_id, "courier")
        multi = next(i for i in store.identities() if i.num_tracklets > 1)
        review.split(store, *store.identity_keys([multi.global_id])[multi.global_id][-1])
        truth_people = {i.global_id: i.label for i in store.identities()}
    export_run(out)
    before, log = outputs(out), log_rows(out)
    assert len(log) == 5 and "courier" in (out / "identities.csv").read_text()

    meta = track(out)  # the same command again: the corrections are there, byte for byte
    assert outputs(out) == before and log_rows(out) == log
    assert meta["edits"]["carried"] == 5 and not [w for w in meta.get("warnings", []) if w["kind"] == "edits"]
    meta = track(out, "--force")  # recomputing every camera keeps them too
    assert outputs(out) == before and log_rows(out) == log
    with ResultsStore.open(out / "results.sqlite") as store:
        assert {i.global_id: i.label for i in store.identities()} == truth_people
        review.undo(store)  # and they can still be undone, newest first
        assert len([e for e in store.edits() if e.undone]) == 1

    # other settings: the edits are re-applied as constraints, their tracklets found again by their boxes
    changed = tmp_path / "changed"
    shutil.copytree(out, changed)
    meta = track(changed, "--frame-stride", "3")
    assert meta["edits"] == {
        "carried": 5,
        "applied": 4,
        "no_longer_apply": 0,
        "how": "re-applied as constraints (the automatic result changed)",
    }
    assert log_rows(changed) == log_rows(out) and not [
        w for w in meta.get("warnings", []) if w["kind"] == "edits"
    ]
    with ResultsStore.open(changed / "results.sqlite") as store:
        assert [i.label for i in store.identities() if i.label] == ["courier"]
        cons = review.active_constraints(store)
        infos = {t.key for t in store.tracklet_infos()}
        assert cons.same and all(a in infos and b in infos for a, b in cons.same + cons.different)
        for a, b in cons.same:  # what the reviewer joined is joined in the new run too
            g = store.global_ids_of([a, b])
            assert g[a] == g[b]

    # a camera left out: the edits about its tracklets no longer apply, and say so
    fewer = tmp_path / "fewer"
    shutil.copytree(out, fewer)
    with ResultsStore.open(fewer / "results.sqlite") as store:
        about_cam3 = [
            e.id
            for e in store.edits()
            if not e.undone
            and any(k[0] == "cam3" for k in review.constraints.edit_keys(e))
            and e.action != "label"
        ]
    assert about_cam3
    meta = track(fewer, cams=(1, 2))
    with ResultsStore.open(fewer / "results.sqlite") as store:
        stale = store.run_value("stale_edits", {})
    assert sorted(int(e) for e in stale) == sorted(about_cam3)
    assert len([w for w in meta["warnings"] if "no longer applies" in w["message"]]) >= len(about_cam3)
    assert all("cam3#" in stale[str(e)] for e in about_cam3)

    # only the explicit flag drops them, after saving the log
    meta = track(out, "--discard-edits")
    assert log_rows(out) == [] and (out / "discarded-edits.json").is_file()
    assert "discarded" in " ".join(w["message"] for w in meta["warnings"])
    saved = json.loads((out / "discarded-edits.json").read_text())
    assert len(saved["edits"]) == 5


def test_unreadable_previous_store_is_kept_aside(tmp_path):
    run_dir, _ = write_review_run(tmp_path / "run")
    (run_dir / "results.sqlite").rename(run_dir / "old.sqlite")
    (run_dir / "results.sqlite").write_text("not a database " * 100)
    new = tmp_path / "new.sqlite"
    shutil.copy2(run_dir / "old.sqlite", new)
    with ResultsStore.open(new) as store:
        tracklets = store.tracklets(crops=False)
        meta = store.meta()
    warnings = review.carry_edits(run_dir / "results.sqlite", new, tracklets, meta)
    assert len(warnings) == 1 and "kept as results.previous.sqlite" in warnings[0]
    assert (run_dir / "results.previous.sqlite").read_text().startswith("not a database")


def test_apply_change_undo_round_trip(run):
    """The store's primitive: a change with new identities, evidence and questions is undone exactly."""
    run_dir, _ = run
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        before = state(store)
        ident = next(i for i in store.identities() if i.num_tracklets >= 2)
        keys = store.identity_keys([ident.global_id])[ident.global_id]
        new = store.next_global_id()
        change = Change(
            tracklets={keys[-1]: new},
            labels={new: "visitor"},
            evidence_of={ident.global_id},
            questions=[("near_miss", keys[0], keys[-1], 0.7, 0, "test", {"gap": 1.0})],
        )
        store.apply_change(
            "split", {"camera": keys[-1][0], "track_id": keys[-1][1], "from": ident.global_id}, change
        )
        assert store.identity(new).label == "visitor" and store.evidence(ident.global_id) == []
        assert store.questions()[-1].terms == {"gap": 1.0}
        store.undo()
        assert state(store) == before
        assert store.next_global_id() == new + 1  # ids only grow


def test_carry_into_a_run_without_association_and_older_edits(tmp_path):
    """Edits re-applied without association (each tracklet its own identity, joined along the must-links);
    a merge logged by an older version (no tracklet list) is reported, not dropped silently."""
    from tests.test_store import make_cameras, make_tracklets, write_test_run

    old = write_test_run(tmp_path / "old", associated=False, with_embedder=False) / "results.sqlite"
    with ResultsStore.open(old) as store:
        a, b = store.tracklet_info("cam1", 1).global_id, store.tracklet_info("cam2", 1).global_id
        store.merge(a, b)  # person 1 in cam1 and cam2
        store.set_label(a, "courier")
        store._conn.execute(  # an edit as an older version logged it
            "INSERT INTO edit_log (time, action, params, undo) VALUES ('t', 'merge', "
            "'{\"keep\": 3, \"other\": 4}', '{}')"
        )
    new = tmp_path / "new.sqlite"
    tracklets = make_tracklets(associated=False)
    meta = {"config": {"reid": {"embedder": "none"}}}
    write_store(new, meta=meta, cameras=make_cameras(), tracklets=tracklets)
    warnings = review.carry_edits(old, new, tracklets, meta)
    assert any("logged by an older version" in w for w in warnings)
    with ResultsStore.open(new) as store:
        g = store.global_ids_of([("cam1", 1), ("cam2", 1), ("cam1", 2)])
        assert g[("cam1", 1)] == g[("cam2", 1)] != g[("cam1", 2)]
        assert store.identity(g[("cam1", 1)]).label == "courier"
        assert [e.action for e in store.edits()] == ["merge", "label", "merge"]
        assert set(store.run_value("stale_edits")) == {"3"}
    assert {t.key: t.global_id for t in tracklets}[("cam2", 1)] == g[("cam1", 1)]  # for the videos
    assert meta["edits"]["no_longer_apply"] == 1
