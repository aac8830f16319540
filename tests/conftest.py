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
