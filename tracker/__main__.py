"""``python -m tracker`` is ``track-cameras``."""

from tracker.cli import track_cameras

track_cameras()
