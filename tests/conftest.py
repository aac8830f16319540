"""Shared fixtures. Real data lives in ../shared (research-licensed, never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
EVAL_DATA = SHARED / "eval-data"
SAMPLE = REPO / "sample_videos"

os.environ.setdefault("MULTICAM_TRACKER_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture
def eval_data() -> Path:
    """../shared/eval-data, or skip when this checkout has no ../shared beside it."""
    if not EVAL_DATA.is_dir():
        pytest.skip("../shared/eval-data is absent (real research data is never part of the repo)")
    return EVAL_DATA


@pytest.fixture(autouse=True)
def _model_cache(tmp_path_factory, monkeypatch):
    """Keep every test's model cache and ultralytics settings out of the user's home."""
    home = tmp_path_factory.getbasetemp() / "model-cache"
    monkeypatch.setenv("MULTICAM_TRACKER_HOME", str(home))


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> Path:
    """The committed sample scene through the whole CLI, offline (motion detector, histogram embedder).

    Run once per test session and shared: several test modules read its outputs.
    """
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("sample-run") / "run"
    env = {**os.environ, "MULTICAM_TRACKER_HOME": str(tmp_path_factory.mktemp("home"))}
    cmd = [
        sys.executable,
        "-m",
        "tracker",
        "--videos",
        *(str(SAMPLE / f"cam{i}.mp4") for i in (1, 2, 3)),
        "--out",
        str(out),
        "--calibration",
        str(SAMPLE / "scene.json"),
        "--offline",
        "--quiet",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def sample_run_per_camera(sample_run) -> Path:
    """The same run without cross-camera association (per-camera track ids), from its stage cache."""
    import shutil
    import subprocess
    import sys

    out = sample_run.parent / "per-camera"
    shutil.copytree(sample_run / "cache", out / "cache")
    cmd = [
        sys.executable,
        "-m",
        "tracker",
        "--videos",
        *(str(SAMPLE / f"cam{i}.mp4") for i in (1, 2, 3)),
        "--out",
        str(out),
        "--offline",
        "--quiet",
        "--no-associate",
        "--no-video",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
