"""multicam-tracker: turn several camera videos into one consistent set of person identities.

The public API for scripts (names load on first use, so ``import tracker`` stays light: no stage, OpenCV,
torch or ultralytics until a name is used)::

    import tracker

    cfg = tracker.load_config("configs/default.yaml")            # or tracker.PipelineConfig()
    meta = tracker.run(["cam1.mp4", "cam2.mp4"], "runs/x", cfg)   # the whole job, as track-cameras does
    with tracker.ResultsStore.open("runs/x/results.sqlite") as store:
        for ident in store.identities():
            print(ident.global_id, ident.cameras)

and the stages on their own: :func:`open_source` (frames), :func:`build_detector` (-> :class:`Detections`),
:class:`CameraTracker` (-> :class:`Tracklet`), :func:`build_embedder`, :func:`associate` (global ids, with a
:class:`Calibration` from :func:`load_calibration`), :func:`evaluate_run` (TrackEval metrics).
"""

from __future__ import annotations

import importlib
from typing import Any

from tracker._version import __version__

_EXPORTS = {
    "run": "tracker.pipeline",
    "resolve_config": "tracker.pipeline",
    "PipelineConfig": "tracker.config",
    "load_config": "tracker.config",
    "override": "tracker.config",
    "InputError": "tracker.errors",
    "Detections": "tracker.types",
    "Frame": "tracker.types",
    "Tracklet": "tracker.types",
    "open_source": "tracker.video",
    "build_detector": "tracker.detect",
    "CameraTracker": "tracker.track",
    "build_embedder": "tracker.reid",
    "Calibration": "tracker.calibration",
    "load_calibration": "tracker.calibration",
    "associate": "tracker.association",
    "Association": "tracker.association",
    "ResultsStore": "tracker.store",
    "evaluate_run": "tracker.evaluate",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tracker' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
