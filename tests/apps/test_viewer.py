"""The review app (apps/viewer.py) under Streamlit's AppTest: every page renders from a small run the
tests write through ResultsStore, answers and corrections change the exports, bad input is one st.error
line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.test_review import write_review_run
from tests.test_store import LAYOUT, need_embedder, person_colours, person_crop, write_test_run
from tracker.export import export_run
from tracker.store import ResultsStore
from tracker.view import PATH_ENV

APP = Path(__file__).resolve().parents[2] / "apps" / "viewer.py"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def start(monkeypatch, path: Path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(PATH_ENV, str(path))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def show(at, page: str):
    at.radio(key="page").set_value(page).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.fixture
def run_dir(tmp_path) -> Path:
    run = write_test_run(tmp_path / "run", with_embedder=False)
    export_run(run)
    return run


def test_overview(monkeypatch, run_dir):
    at = start(monkeypatch, run_dir)
    assert not at.error
    detections = sum(f1 - f0 + 1 for *_, f0, f1 in LAYOUT)
    assert [m.value for m in at.metric] == ["3", "10", "5", f"{detections:,}"]
    assert "Run run" in texts(at.header)
    assert "**Detector:** test on cam1, cam2, cam3" in texts(at.markdown)
    assert "**Appearance:** none" in texts(at.markdown)
    assert "source not readable here" in texts(at.caption)  # the recorded sources do not exist here


def test_overview_metrics_table_and_models_in_words(monkeypatch, tmp_path):
    run, _ = write_review_run(tmp_path / "run")
    scores = {"HOTA": 0.61, "IDF1": 0.734, "MOTA": 0.8, "IDSW": 7, "DetA": 0.5}
    metrics = {"cameras": {"cam1": scores, "cam2": scores}, "COMBINED": scores, "ALL": scores}
    (run / "metrics.json").write_text(__import__("json").dumps(metrics))
    at = start(monkeypatch, run)
    table = at.table[0].value
    assert list(table.columns) == ["HOTA", "IDF1", "MOTA", "IDSW"]
    assert list(table.index) == ["all cameras as one (multi-camera)", "per-camera pooled", "cam1", "cam2"]
    assert table.loc["cam1", "IDF1"] == "73.4%" and table.loc["cam1", "IDSW"] == "7"
    assert not at.json  # no raw JSON tree
    words = texts(at.markdown)
    assert (
        "motion detector (OpenCV background subtraction" in words and "colour and texture histograms" in words
    )


def test_gallery_filter_sort_and_open(monkeypatch, run_dir):
    at = show(start(monkeypatch, run_dir), "Identities")
    cards = [m.value.strip() for m in at.markdown if m.value.startswith("**#")]
    assert cards == ["**#1**", "**#2**", "**#3**", "**#4**", "**#5**"]
    assert len(at.image) == 5  # one strip of crops (a crop a camera) per card
    at.selectbox(key="g_camera").set_value("cam3").run()
    at.selectbox(key="g_sort").set_value("num_cameras").run()
    at.checkbox(key="g_desc").check().run()
    cards = [m.value.strip() for m in at.markdown if m.value.startswith("**#")]
    assert cards == ["**#2**", "**#3**", "**#5**"]
    assert "3 identities match" in texts(at.caption)
    at.button(key="open_3").click().run()
    assert at.radio(key="page").value == "Identity detail"
    assert texts(at.header) == "Identity 3"


def test_identity_detail(monkeypatch, run_dir):
    at = start(monkeypatch, run_dir)
    at.session_state["identity"] = 2
    show(at, "Identity detail")
    assert texts(at.header) == "Identity 2"
    assert len(at.get("vega_lite_chart")) == 1
    assert "cam1 / track 2" in texts(at.markdown) and "cam3 / track 3" in texts(at.markdown)
    evidence = [m.value for m in at.markdown if "track 2 and" in m.value or "track 3 and" in m.value]
    assert len(evidence) == 2 and all(e.endswith("appearance and transit time") for e in evidence)
    assert not at.dataframe  # the reasons are text in full, not a table cell that cuts them
    at.number_input(key="identity").set_value(42).run()
    assert "no identity 42" in texts(at.warning)


def test_cameras_time_and_steps(monkeypatch, run_dir):
    at = start(monkeypatch, run_dir)
    at.session_state["cam_time"] = 1.0
    show(at, "Cameras")
    imgs = at.image
    assert len(imgs) == 3
    cap = [i.captions[0] for i in imgs]
    assert cap == [
        "cam1 · frame 11 · 2 box(es)",
        "cam2 · frame 11 · 1 box(es)",
        "cam3 · not recording at 1.00 s",
    ]
    assert at.image[0].proto.imgs[0].url  # a drawn frame (blank canvas: the sources are not here)
    at.button(key="step_frame ▶").click().run()
    assert at.slider(key="cam_time").value == pytest.approx(1.1)
    at.button(key="step_1 s ▶").click().run()
    cap = [i.captions[0] for i in at.image]
    assert cap[2] == "cam3 · frame 7 · 1 box(es)"


def test_corrections_merge_export_undo(monkeypatch, run_dir):
    mot3 = run_dir / "mot" / "cam3.txt"
    before = mot3.read_text()
    at = show(start(monkeypatch, run_dir), "Corrections")
    # the defaults are a merge that can be made: identity 1 and an identity no camera sees with it
    keep, other = at.selectbox(key="c_keep").value, at.selectbox(key="c_other").value
    assert keep == 1 and other != 1
    assert len(at.image) >= 3  # each choice shows its crops
    at.selectbox(key="c_keep").set_value(4).run()
    at.selectbox(key="c_other").set_value(5).run()
    at.button(key="c_merge").click().run()
    assert "Merged identity 5 into 4. Files re-exported." in texts(at.success)
    ids = {int(line.split(",")[1]) for line in mot3.read_text().splitlines()}
    assert ids == {2, 3, 4}  # written again at once
    at.selectbox(key="c_label_id").set_value(4).run()
    at.text_input(key="c_label_text").input("courier")
    at.button(key="c_label").click().run()
    assert "Identity 4 is labelled 'courier'." in texts(at.success)
    at.button(key="c_undo").click().run()
    assert "Undid: labelled identity 4 'courier'." in texts(at.success)
    at.button(key="c_undo").click().run()
    assert "Undid: merged identity 5 into 4." in texts(at.success)
    assert mot3.read_text() == before
    log = at.dataframe[0].value
    assert list(log["state"]) == ["undone", "undone"] and "merged identity 5 into 4" in list(log["what"])
    assert all("{" not in m.value for m in at.success)  # plain words, no Python dicts
    at.selectbox(key="c_keep").set_value(1).run()
    at.selectbox(key="c_other").set_value(2).run()
    at.button(key="c_merge").click().run()
    assert "both are in camera cam1 at the same time" in texts(at.error)
    at.selectbox(key="c_split_identity").set_value(1).run()
    at.button(key="c_split_cam1_4").click().run()
    assert "cam1#4 is now identity 6." in texts(at.success)


def test_gallery_correct_opens_corrections_with_that_identity(monkeypatch, run_dir):
    at = show(start(monkeypatch, run_dir), "Identities")
    at.button(key="fix_3").click().run()
    assert at.radio(key="page").value == "Corrections"
    assert at.selectbox(key="c_keep").value == 3


@pytest.fixture
def review_run(tmp_path):
    return write_review_run(tmp_path / "review")


def test_review_page_answer_undo(monkeypatch, review_run):
    run, truth = review_run
    csv = run / "identities.csv"
    before = csv.read_text()
    at = show(start(monkeypatch, run), "Review")
    assert texts(at.header) == "Review"
    assert "Are these the same person?" in texts(at.subheader)
    assert len(at.image) == 2  # both tracklets as strips of crops
    for image in at.image:
        assert image.proto.imgs[0].url
    assert at.info and "average distance" in at.info[0].value  # the evidence in words
    caption = texts(at.caption)
    assert "0 answered" in caption and "Keys: S same person · D different · K skip" in caption
    # answer truthfully until an answer changes the identities
    changed = False
    for _ in range(8):
        a, b = [m.value for m in at.markdown if m.value.startswith(("**A: ", "**B: "))]
        ka = tuple(a[len("**A: ") :].split(" · ")[:2])
        kb = tuple(b[len("**B: ") :].split(" · ")[:2])
        ka = (ka[0], int(ka[1].split()[1].rstrip("*")))
        kb = (kb[0], int(kb[1].split()[1].rstrip("*")))
        same = truth[ka] == truth[kb]
        at.button(key="r_same" if same else "r_different").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert "Files re-exported." in texts(at.success)
        if csv.read_text() != before:
            changed = True
            break
    assert changed
    with ResultsStore.open(run / "results.sqlite", readonly=True) as store:
        answers = [e for e in store.edits() if e.action == "answer"]
    assert answers and answers[-1].params["answer"] in ("same", "different")
    assert f"{len(answers)} answered" in texts(at.caption)
    assert any(b.key == f"r_undo_{answers[-1].id}" for b in at.button)  # undo per answer
    at.button(key=f"r_undo_{answers[-1].id}").click().run()
    assert "Undid: answered" in texts(at.success)
    assert csv.read_text() == before


def test_review_page_without_association(monkeypatch, tmp_path):
    run = write_test_run(tmp_path / "run", associated=False, with_embedder=False)
    at = show(start(monkeypatch, run), "Review")
    assert "nothing to review" in texts(at.info)


def test_search_page_own_identity_first(monkeypatch, tmp_path):
    need_embedder()
    run = write_test_run(tmp_path / "run")
    at = start(monkeypatch, run)
    at.session_state["s_mode"] = "Pick a stored crop"
    at.session_state["s_identity"] = 3
    show(at, "Search")
    first = [m.value for m in at.markdown if m.value.startswith("**1. ")]
    assert first and first[0].startswith("**1. identity 3**")
    # an uploaded crop of person 5 finds identity 5
    at.radio(key="s_mode").set_value("Upload a crop").run()
    crop = person_crop(person_colours()[5], np.random.default_rng(9))
    ok, png = cv2.imencode(".png", crop)
    at.file_uploader(key="s_upload").upload("query.png", png.tobytes(), "image/png").run()
    assert not at.error, [e.value for e in at.error]
    first = [m.value for m in at.markdown if m.value.startswith("**1. ")]
    assert first[0].startswith("**1. identity 5**")
    at.file_uploader(key="s_upload").upload("notes.png", b"this is not an image", "image/png").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["notes.png: not an image (JPEG, PNG, BMP or WebP expected)"]


def test_search_without_embedder(monkeypatch, run_dir):
    at = start(monkeypatch, run_dir)
    at.radio(key="page").set_value("Search").run()
    assert not at.exception
    assert "used no appearance embedder" in texts(at.error)


@pytest.mark.parametrize("case", ["missing", "no-db", "old-schema", "not-sqlite", "empty-folder"])
def test_bad_input_is_one_error(monkeypatch, tmp_path, case):
    path = tmp_path / "run"
    if case != "missing":
        path.mkdir()
    if case == "no-db":
        (path / "run.json").write_text("{}")
    if case == "old-schema":
        write_test_run(path, with_embedder=False)
        conn = sqlite3.connect(path / "results.sqlite")
        conn.execute("PRAGMA user_version = 0")
        conn.close()
    if case == "not-sqlite":
        (path / "results.sqlite").write_text("not a database " * 100)
    at = start(monkeypatch, path)
    messages = [e.value for e in at.error]
    assert len(messages) == 1 and "\n" not in messages[0]
    want = {
        "missing": "no such run directory",
        "no-db": "no results database",
        "old-schema": "older than this multicam-tracker reads",
        "not-sqlite": "not a results database",
        "empty-folder": "not a run directory",
    }[case]
    assert want in messages[0]


def test_runs_folder_switches_runs(monkeypatch, tmp_path):
    write_test_run(tmp_path / "runs" / "a", with_embedder=False)
    write_test_run(tmp_path / "runs" / "b", associated=False, with_embedder=False)
    (tmp_path / "runs" / "not-a-run").mkdir()
    at = start(monkeypatch, tmp_path / "runs")
    assert [str(o) for o in at.selectbox(key="run").options] == ["a", "b"]
    assert at.metric[2].value == "5"
    at.selectbox(key="run").select_index(1).run()
    assert at.metric[2].value == "10"
