"""Where models live and whether we may use the network."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The model cache: ``$MULTICAM_TRACKER_HOME`` or ``~/.cache/multicam-tracker`` (created on demand)."""
    root = os.environ.get("MULTICAM_TRACKER_HOME") or os.path.join(Path.home(), ".cache", "multicam-tracker")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """True when the user asked for no network use (``--offline`` sets ``MULTICAM_TRACKER_OFFLINE=1``)."""
    return os.environ.get("MULTICAM_TRACKER_OFFLINE", "").lower() in ("1", "true", "yes")


def set_offline(value: bool = True) -> None:
    os.environ["MULTICAM_TRACKER_OFFLINE"] = "1" if value else "0"
