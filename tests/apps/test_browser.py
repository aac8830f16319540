"""The review app in a real browser: ``track-view`` serves a test run in a subprocess, headless Debian
chromium (driven through Playwright, so the test waits for Streamlit's script to finish instead of racing
it as ``--virtual-time-budget`` does) renders the Identities page; the DOM must list the identities and
the screenshot must show their crops.

The screenshot is kept as test-artifacts/track-view-identities.png (gitignored). ``.ci/run`` installs
chromium when absent.
"""

from __future__ import annotations

import os
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

from tests.test_store import person_colours, write_test_run
from tracker.export import export_run

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
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


@pytest.fixture
def server(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium; .ci/run does)")
    run = write_test_run(tmp_path / "run", with_embedder=False)
    export_run(run)
    port = free_port()
    exe = Path(sys.executable).with_name("track-view")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from tracker.view import main; main()"]
    log = open(tmp_path / "track-view.log", "w")
    proc = subprocess.Popen(
        [*cmd, str(run), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
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
