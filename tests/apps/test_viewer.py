"""The review app (apps/viewer.py) under Streamlit's AppTest: every page renders from a small run the
tests write through ResultsStore, corrections change the exports, bad input is one st.error line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.test_store import LAYOUT, need_embedder, person_colours, person_crop, write_test_run
from tracker.export import export_run
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
    assert "Detector: cam1: test" in texts(at.markdown)
    assert "source not readable here" in texts(at.caption)  # the recorded sources do not exist here


def test_gallery_filter_sort_and_open(monkeypatch, run_dir):
    at = show(start(monkeypatch, run_dir), "Identities")
    cards = [m.value.strip() for m in at.markdown if m.value.startswith("**#")]
    assert cards == ["**#1**", "**#2**", "**#3**", "**#4**", "**#5**"]
    assert len(at.image) == 5
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
    evidence = at.dataframe[0].value
    assert list(evidence["reason"]) == ["appearance and transit time"] * 2
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
    at.number_input(key="c_keep").set_value(4)
    at.number_input(key="c_other").set_value(5)
    at.button(key="c_merge").click().run()
    assert "Merged identity 5 into 4" in texts(at.success)
    assert "older than the last change" in texts(at.warning)
    at.button(key="c_export").click().run()
    assert "Wrote 5 files" in texts(at.success)
    ids = {int(line.split(",")[1]) for line in mot3.read_text().splitlines()}
    assert ids == {2, 3, 4}
    at.number_input(key="c_label_id").set_value(4)
    at.text_input(key="c_label_text").input("courier")
    at.button(key="c_label").click().run()
    at.button(key="c_undo").click().run()
    assert "Undid label" in texts(at.success)
    at.button(key="c_undo").click().run()
    at.button(key="c_export").click().run()
    assert mot3.read_text() == before
    assert list(at.dataframe[0].value["undone"]) == [True, True]
    at.number_input(key="c_keep").set_value(1)
    at.number_input(key="c_other").set_value(2)
    at.button(key="c_merge").click().run()
    assert "both are in camera cam1 at the same time" in texts(at.error)
    at.selectbox(key="c_split_camera").set_value("cam1")
    at.number_input(key="c_split_track").set_value(4)
    at.button(key="c_split").click().run()
    assert "Tracklet cam1/4 is now identity 6" in texts(at.success)


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
