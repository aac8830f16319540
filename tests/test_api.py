"""The public Python API: a script that uses only the names ``tracker`` exports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import tracker


def test_import_tracker_is_light():
    """``import tracker`` loads no OpenCV, torch, ultralytics or Streamlit, and no stage but association,
    until a name is used."""
    heavy = (
        "cv2",
        "torch",
        "ultralytics",
        "streamlit",
        "tracker.video",
        "tracker.detect",
        "tracker.pipeline",
    )
    code = f"import sys, tracker; print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert set(tracker.__all__) <= set(dir(tracker))


def test_a_script_with_the_public_names(tmp_path):
    from tracker.synthetic.render import (
        render_scene,
    )  # test data only; the script below uses `tracker.` names

    scene = tmp_path / "scene"
    render_scene(scene, cameras=2, people=3, seconds=4, seed=3, width=320, height=180, progress=False)

    cfg = tracker.override(
        tracker.PipelineConfig(),
        **{
            "detect.detector": "motion",
            "reid.embedder": "histogram",
            "models.offline": True,
            "output.annotated_video": False,
            "associate.calibration": str(scene / "scene.json"),
        },
    )
    meta = tracker.run([scene / "cam1.mp4", scene / "cam2.mp4"], tmp_path / "run", cfg, progress=False)
    assert [c["name"] for c in meta["cameras"]] == ["cam1", "cam2"]
    with tracker.ResultsStore.open(tmp_path / "run" / "results.sqlite", readonly=True) as store:
        identities = store.identities()
        tracklets = store.tracklets()
    assert identities and len(tracklets) == meta["num_tracklets"]
    assert all(isinstance(t, tracker.Tracklet) for t in tracklets)
    metrics = tracker.evaluate_run(tmp_path / "run", scene / "gt")
    assert metrics["ALL"]["IDF1"] > 0.3

    # the stages on their own: frames -> detections -> tracks -> global ids
    source = tracker.open_source(scene / "cam1.mp4")
    detector = tracker.build_detector(cfg.detect, cfg.models, source)
    per_camera = tracker.CameraTracker(cfg.track, fps=source.info.fps, camera="cam1")
    for frame in source:
        (dets,) = detector.detect([frame])
        assert isinstance(dets, tracker.Detections)
        per_camera.update(frame.index, frame.time, dets, frame.image)
    mine = per_camera.finish()
    assert mine and all(t.camera == "cam1" for t in mine)
    calibration = tracker.load_calibration(scene / "scene.json")
    result = tracker.associate(tracklets, cfg.associate, calibration)
    assert isinstance(result, tracker.Association) and len(result.global_ids) == len(tracklets)
    assert np.all(result.global_ids >= 1)
