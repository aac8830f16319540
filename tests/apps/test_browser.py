"""The review app in a real browser: ``track-view`` serves a test run in a subprocess (this checkout's code),
headless Debian chromium (driven through Playwright, so the test waits for Streamlit's script to finish
instead of racing it as ``--virtual-time-budget`` does) renders the Identities page, whose DOM must list the
identities and whose screenshot must show their crops; and the Review page, where questions are answered
with the keyboard shortcuts until an answer changes identities.csv.

The screenshots are kept in test-artifacts/ (gitignored). ``.ci/run`` installs chromium when absent.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.test_review import write_review_run
from tests.test_store import person_colours, write_test_run
from tracker.export import export_run

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Rendered: Streamlit's script has finished, the cards' buttons are there and every image has loaded.
RENDERED = """() => document.querySelector('[data-test-script-state="notRunning"]')
    && document.querySelectorAll('[data-testid="stButton"] button').length >= 10
    && document.images.length >= 5
    && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"track-view exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"track-view did not answer at {url} within {seconds} s")


def shows_colour(png: Path, bgr: np.ndarray) -> bool:
    """Whether the screenshot has a patch of (nearly) this colour: a rendered crop."""
    image = cv2.imread(str(png))
    if image is None:
        return False
    close = np.abs(image.astype(int) - bgr.astype(int)).max(axis=2) < 30
    return int(close.sum()) > 500


@contextlib.contextmanager
def serve(run: Path, tmp_path: Path):
    """``track-view RUN`` of this checkout (its tracker and apps/viewer.py) on a free port; yields the URL."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium; .ci/run does)")
    port = free_port()
    cmd = [sys.executable, "-c", "from tracker.view import main; main()"]
    log = open(tmp_path / "track-view.log", "w")
    proc = subprocess.Popen(
        [*cmd, str(run), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO)),
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture
def server(tmp_path):
    run = write_test_run(tmp_path / "run", with_embedder=False)
    export_run(run)
    with serve(run, tmp_path) as url:
        yield url


def test_identities_page_in_chromium(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) drives chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "track-view-identities.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            # tall: Streamlit scrolls inside the page, so a full-page screenshot would not show more
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.goto(server + "?page=Identities")
            page.wait_for_function(RENDERED, timeout=60_000)
            page.screenshot(path=str(shot))
            dom = page.content()
        finally:
            browser.close()
    assert all(f"#{g}" in dom for g in range(1, 6)), "identities #1..#5 not in the page"
    assert "5 identities match" in dom and "Traceback" not in dom
    colours = person_colours()
    assert all(shows_colour(shot, colours[p]) for p in range(1, 6)), f"crops not visible in {shot}"


def test_labels_are_not_cut(server):
    """The sort direction's label and the cards' button labels are shown in full, not cut by their column."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) drives chromium")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server + "?page=Identities")
            page.wait_for_function(RENDERED, timeout=60_000)
            label = page.get_by_text("Descending", exact=True)
            box = label.bounding_box()
            fits = label.evaluate(
                "e => e.scrollWidth <= e.clientWidth + 1 && e.scrollHeight <= e.clientHeight + 1"
            )
        finally:
            browser.close()
    assert box is not None and box["width"] > 40 and fits


# The Review page has rendered: the script is done, the question's crops have loaded, the buttons are there.
REVIEW_RENDERED = """() => document.querySelector('[data-test-script-state="notRunning"]')
    && Array.from(document.querySelectorAll('button')).some(b => b.innerText.includes('Same person'))
    && document.images.length >= 2
    && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"""


def test_review_answer_in_chromium_changes_identities_csv(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) drives chromium")
    run, truth = write_review_run(tmp_path / "run")
    csv = run / "identities.csv"
    before = csv.read_text()
    ARTIFACTS.mkdir(exist_ok=True)
    pair = re.compile(r"([AB]): (cam\d+) · track (\d+)")
    answered = 0
    with serve(run, tmp_path) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.goto(url + "?page=Review")
            page.wait_for_function(REVIEW_RENDERED, timeout=90_000)
            page.screenshot(path=str(ARTIFACTS / "track-view-review.png"))
            for _ in range(8):
                sides = {m[0]: (m[1], int(m[2])) for m in pair.findall(page.inner_text("body"))}
                assert set(sides) == {"A", "B"}, "the question does not show both tracklets"
                key = "s" if truth[sides["A"]] == truth[sides["B"]] else "d"
                page.mouse.click(700, 8)  # focus the page, not an input
                page.keyboard.press(key)  # the Same / Different shortcut
                page.wait_for_function(
                    "() => document.body.innerText.includes('Files re-exported')", timeout=90_000
                )
                page.wait_for_function(REVIEW_RENDERED, timeout=90_000)
                answered += 1
                if csv.read_text() != before:
                    break
            dom = page.inner_text("body")
        finally:
            browser.close()
    assert csv.read_text() != before, f"{answered} answers in the browser left identities.csv as it was"
    assert f"{answered} answered" in dom and "Traceback" not in dom
