"""Detectors: the offline ones on synthetic and real frames, YOLO with test-made random weights."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import SHARED
from tracker.config import DetectConfig, ModelsConfig, MotionConfig
from tracker.detect import (
    FileDetector,
    HogDetector,
    MotionDetector,
    YoloDetector,
    build_detector,
    read_mot_detections,
    resolve_yolo_weights,
)
from tracker.errors import InputError
from tracker.geometry import iou_matrix
from tracker.types import Frame

OFFLINE = ModelsConfig(offline=True)


def frames_of(*images):
    """Frames 1..N of one camera holding ``images``."""
    return [Frame("cam", i + 1, i / 10, im) for i, im in enumerate(images)]


def scene_frames(n=40, seed=0):
    """A textured static background with one 'person' block walking right: frames and true boxes."""
    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.integers(60, 200, (180, 320, 3), dtype=np.uint8), (7, 7), 0)
    frames, boxes = [], []
    for i in range(n):
        img = bg.copy()
        x = 20 + 5 * i
        cv2.rectangle(img, (x, 60), (x + 20, 130), (30, 30, 200), -1)
        cv2.circle(img, (x + 10, 52), 8, (120, 160, 210), -1)
        img = np.clip(img.astype(np.int16) + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
        frames.append(img)
        boxes.append([x, 44, x + 21, 131])
    return frames, np.array(boxes, np.float32), bg


def test_motion_detector_finds_the_mover():
    frames, truth, bg = scene_frames()
    det = MotionDetector(MotionConfig(warmup_frames=10), background=frames[::4])
    hits = 0
    for img, box in zip(frames, truth):
        (d,) = det.detect(frames_of(img))
        if len(d) and iou_matrix(d.xyxy, box[None]).max() > 0.5:
            hits += 1
    assert hits >= 0.8 * len(frames)


def test_motion_split_of_side_by_side_people():
    rng = np.random.default_rng(0)
    _, _, bg = scene_frames()

    def noisy(im):
        return np.clip(im.astype(np.int16) + rng.integers(-3, 4, im.shape), 0, 255).astype(np.uint8)

    img = bg.copy()
    for x in (100, 135):
        cv2.rectangle(img, (x, 50), (x + 34, 140), (20, 200, 20), -1)
    det = MotionDetector(MotionConfig(), background=[noisy(bg) for _ in range(8)])
    (d,) = det.detect(frames_of(noisy(img)))
    assert len(d) == 2
    assert np.all(d.xyxy[:, 2] - d.xyxy[:, 0] < 50)


def test_hog_on_real_pets_frames(eval_data):
    video = eval_data / "pets09-s2l1-vtest" / "vtest.avi"
    gt = np.loadtxt(eval_data / "pets09-s2l1-vtest" / "PETS09-S2L1-480x360" / "gt" / "gt.txt", delimiter=",")
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    (d,) = HogDetector(DetectConfig()).detect(frames_of(frame))
    g = gt[gt[:, 0] == 1][:, 2:6]
    g = np.c_[g[:, :2], g[:, :2] + g[:, 2:]]
    matched = (iou_matrix(g, d.xyxy).max(axis=1) > 0.3).sum() if len(d) else 0
    assert matched >= 0.4 * len(g), (matched, len(g))


def test_auto_falls_back_offline_with_one_warning(caplog):
    from tracker.detect import _warn_once

    _warn_once.cache_clear()
    with caplog.at_level(logging.WARNING):
        dets = [
            build_detector(DetectConfig(detector="auto", weights="yolov8n.pt"), OFFLINE) for _ in range(3)
        ]
    assert all(d.name == "motion" for d in dets)
    assert "offline" in dets[0].info()["fallback_reason"]
    assert sum("YOLO unavailable" in r.message for r in caplog.records) == 1  # one line, however many cameras


def test_yolo_without_weights_offline_fails_at_once():
    with pytest.raises(InputError, match="yolov8n.pt"):
        build_detector(DetectConfig(detector="yolo", weights="yolov8n.pt"), OFFLINE)
    path, why = resolve_yolo_weights("/no/such/weights.pt", OFFLINE)
    assert path is None and "not found" in why


def test_unknown_detector_and_corrupt_weights(tmp_path):
    with pytest.raises(InputError, match="detect.detector: must be one of auto, yolo, motion, hog"):
        DetectConfig(detector="rcnn")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="bad.pt"):
        build_detector(DetectConfig(detector="yolo", weights=str(bad), device="cpu"), OFFLINE)


@pytest.mark.parametrize("name", ["bad.onnx", "clip.mp4", "empty_openvino_model"])
def test_broken_or_foreign_yolo_weights_are_one_line(tmp_path, name):
    """Exports load lazily in ultralytics: a broken ONNX file, a file that is no weights at all and an export
    folder without its model fail when the detector is built, with one line naming the path."""
    bad = tmp_path / name
    if name.endswith("_model"):
        bad.mkdir()
    else:
        bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match=name) as err:
        build_detector(DetectConfig(detector="yolo", weights=str(bad), device="cpu"), OFFLINE)
    assert "\n" not in str(err.value)


def test_detection_file_is_a_detector(tmp_path):
    p = tmp_path / "det.txt"
    p.write_text("2,-1,10,20,30,60,0.9,-1,-1,-1\n2,-1,50,20,30,60,0.4,-1,-1,-1\n5,-1,1,2,3,4,0.5,-1,-1,-1\n")
    det = build_detector(DetectConfig(), OFFLINE, detections=p)
    assert isinstance(det, FileDetector) and det.batch_group is None
    out = det.detect([Frame("cam", i, 0.0, None) for i in (1, 2, 5)])
    assert [len(d) for d in out] == [0, 2, 1]
    assert out[1].xyxy[0].tolist() == [10, 20, 40, 80] and out[1].confidence.tolist() == pytest.approx(
        [0.9, 0.4]
    )
    assert det.info() == {"detector": "file", "detections": str(p)}


@pytest.mark.parametrize(
    "text, problem",
    [
        ("1,-1,nan,2,3,4,0.9\n", "nan or inf"),
        ("1,2,3\n", "columns"),
        ("0,-1,1,2,3,4,0.9\n", "frame numbers"),
        ("a,b,c,d,e,f,g\n", "non-numeric"),
    ],
)
def test_bad_detection_files_are_one_line_errors(tmp_path, text, problem):
    p = tmp_path / "det.txt"
    p.write_text(text)
    with pytest.raises(InputError, match=problem):
        read_mot_detections(p)


def test_stateless_detectors_share_batches_stateful_do_not():
    assert HogDetector(DetectConfig()).batch_group == HogDetector(DetectConfig()).batch_group is not None
    assert MotionDetector(MotionConfig()).batch_group is None


@pytest.fixture(scope="module")
def random_yolo(tmp_path_factory):
    from tracker.detect import _prepare_ultralytics

    _prepare_ultralytics(OFFLINE)
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("yolo") / "random-yolov8n.pt"
    YOLO("yolov8n.yaml").save(str(path))
    return path


def test_yolo_detector_with_random_weights(random_yolo):
    det = build_detector(
        DetectConfig(detector="yolo", weights=str(random_yolo), imgsz=160, device="cpu"), OFFLINE
    )
    assert isinstance(det, YoloDetector)
    out = det.detect(frames_of(*[np.zeros((90, 160, 3), np.uint8)] * 3))
    assert len(out) == 3 and all(o.xyxy.shape[1] == 4 for o in out)
    assert det.info()["weights"] == str(random_yolo)


def test_perspective_model_learns_height_per_row_and_splits_stacked_people():
    from tracker.detect import PerspectiveModel

    model = PerspectiveModel(min_samples=10)
    rng = np.random.default_rng(0)
    for foot in rng.uniform(100, 350, 60):
        model.add(foot, 0.4 * foot - 20 + rng.normal(0, 1.5))
    model.add(200, 300)  # an outlier (two people merged) must not bend the fit
    assert model.height_at(300) == pytest.approx(100, abs=4)
    top = 300 - 100
    assert model.foot_of_top(top) == pytest.approx(300, abs=6)

    det = MotionDetector(MotionConfig(scale=1.0))
    det.perspective = model
    fg = np.zeros((360, 640), np.uint8)
    fg[200:300, 300:340] = 255  # a person (foot 300, 100 px tall) ...
    fg[140:201, 310:330] = 255  # ... with a farther, smaller one standing behind: one blob
    boxes = det._people_in_blob(fg, 300, 140, 40, 160)
    assert len(boxes) == 2
    near = max(boxes, key=lambda b: b[3])
    assert near[3] == 300 and abs((near[3] - near[1]) - 100) <= 4


def test_background_sample_is_taken_at_a_bounded_size(tmp_path):
    """sample_images(max_pixels) shrinks every sampled frame (aspect kept); the motion detector samples at
    its working size."""
    from tracker.video import open_source

    path = tmp_path / "v.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for i in range(12):
        writer.write(np.full((480, 640, 3), 20 * i, np.uint8))
    writer.release()
    source = open_source(path)
    full = source.sample_images(4)
    small = source.sample_images(4, max_pixels=160 * 120)
    assert len(full) == len(small) == 4 and full[0].shape == (480, 640, 3)
    assert all(
        im.shape[0] * im.shape[1] <= 160 * 120 and abs(im.shape[1] / im.shape[0] - 4 / 3) < 0.02
        for im in small
    )
    det = build_detector(
        DetectConfig(detector="motion", motion=MotionConfig(max_pixels=320 * 240)), OFFLINE, source
    )
    assert det._median.shape == (240, 320, 3)  # the median is computed small ...
    (d,) = det.detect(frames_of(full[0]))
    assert det.size == (320, 240) and det._reference.shape == (
        240,
        320,
        3,
    )  # ... and used at the working size


def test_motion_detector_on_4k_frames_runs_at_bounded_resolution():
    """A 4K camera is processed at most at max_pixels (1280x720 by default); boxes come back in the
    camera's own pixels."""
    frames, truth, _ = scene_frames()
    big = [cv2.resize(f, (3840, 2160), interpolation=cv2.INTER_NEAREST) for f in frames]
    det = MotionDetector(
        MotionConfig(warmup_frames=10), background=[cv2.resize(f, (1280, 720)) for f in big[::4]]
    )
    hits = 0
    for img, box in zip(big, truth * 12):
        (d,) = det.detect(frames_of(img))
        hits += bool(len(d)) and iou_matrix(d.xyxy, box[None]).max() > 0.5
    assert det.size == (1280, 720)
    assert hits >= 0.8 * len(big)


def _standing_scene(n_walk=30, n_stand=200, seed=0):
    """A person walks in for ``n_walk`` frames, then stands still (tiny jitter) for ``n_stand`` frames."""
    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.integers(60, 200, (180, 320, 3), dtype=np.uint8), (7, 7), 0)
    out = []
    for i in range(n_walk + n_stand):
        img = bg.copy()
        x = 20 + 5 * min(i, n_walk) + (i % 2 if i >= n_walk else 0)
        cv2.rectangle(img, (x, 60), (x + 20, 130), (30, 30, 200), -1)
        cv2.circle(img, (x + 10, 52), 8, (120, 160, 210), -1)
        out.append(
            (np.clip(img.astype(np.int16) + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8), x)
        )
    return out, bg


def test_motion_detector_keeps_a_person_who_stands_still():
    """MOG2 alone learns a person who stops into its background within seconds; the slow reference
    background keeps them detected for the whole 20 s stand (10 fps)."""
    scene, bg = _standing_scene()
    det = MotionDetector(MotionConfig(history=100, warmup_frames=10), background=[bg] * 5)
    found, mog_fill = [], []
    for i, (img, x) in enumerate(scene):
        (d,) = det.detect([Frame("cam", i + 1, i / 10, img)])
        box = np.array([[x, 44, x + 21, 131]], np.float32)
        found.append(bool(len(d)) and iou_matrix(d.xyxy, box).max() > 0.5)
        mog_fill.append((det.subtractor.apply(img, learningRate=0)[60:130, x : x + 20] > 200).mean())
    assert np.mean(mog_fill[-50:]) < 0.3  # MOG2 has absorbed the standing person ...
    assert np.mean(found[-150:]) > 0.95  # ... the detector still reports them


def test_a_standing_person_who_vanishes_for_two_frames_is_found_again():
    """A standing person hidden for two frames (a passer-by the colour of the background, a glitch) is not
    continued by any box, so only the remembered box (``lost_seconds``) tells the detector to look for them
    against the slow background again: without it MOG2, which has learnt them, never reports them again."""
    scene, bg = _standing_scene(n_stand=150)
    hidden = (100, 101)
    found = {}
    for lost in (1.5, 0.0):
        det = MotionDetector(
            MotionConfig(history=100, warmup_frames=10, lost_seconds=lost), background=[bg] * 5
        )
        hits = []
        for i, (img, x) in enumerate(scene):
            (d,) = det.detect([Frame("cam", i + 1, i / 10, bg if i in hidden else img)])
            box = np.array([[x, 44, x + 21, 131]], np.float32)
            hits.append(bool(len(d)) and iou_matrix(d.xyxy, box).max() > 0.5)
        found[lost] = np.mean(hits[hidden[-1] + 1 :])
    assert found[1.5] > 0.95 and found[0.0] < 0.5


def test_people_who_walk_together_stay_apart():
    """Two people seen apart, then side by side touching (one blob, too narrow for the width split): the
    previous frame's boxes split the blob into two people."""
    rng = np.random.default_rng(0)
    _, _, bg = scene_frames()

    def noisy(im):
        return np.clip(im.astype(np.int16) + rng.integers(-3, 4, im.shape), 0, 255).astype(np.uint8)

    det = MotionDetector(MotionConfig(warmup_frames=10), background=[noisy(bg) for _ in range(8)])
    counts = []
    for i, gap in enumerate([30, 24, 18, 12, 6, 0, 0, 0]):
        img = bg.copy()
        for x in (100, 122 + gap):
            cv2.rectangle(img, (x, 50), (x + 22, 140), (20, 200, 20), -1)
        (d,) = det.detect([Frame("cam", i + 1, i / 10, noisy(img))])
        counts.append(len(d))
    assert counts[0] == 2 and counts[-3:] == [2, 2, 2], counts


# ------------------------------------------------------------------ the shared YOLOv8n INT8 OpenVINO export

SHARED_YOLO = SHARED / "models" / "yolov8n_int8_openvino_model"


@pytest.fixture(scope="module")
def shared_yolo():
    """../shared/models/yolov8n_int8_openvino_model (ultralytics 8.4.30 export), or skip."""
    if not SHARED_YOLO.is_dir():
        pytest.skip("../shared/models/yolov8n_int8_openvino_model is absent (weights are never in the repo)")
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("the openvino package is not installed")
    return SHARED_YOLO


def _pets_frames(eval_data, indices):
    """PETS09-S2L1 frames (1-based ``indices``) and their ground-truth boxes (xyxy)."""
    root = eval_data / "pets09-s2l1-vtest"
    gt = np.loadtxt(root / "PETS09-S2L1-480x360" / "gt" / "gt.txt", delimiter=",")
    cap = cv2.VideoCapture(str(root / "vtest.avi"))
    frames, boxes = [], []
    for i in indices:
        cap.set(cv2.CAP_PROP_POS_FRAMES, i - 1)
        ok, image = cap.read()
        assert ok
        frames.append(Frame("pets", i, (i - 1) / 10, image))
        g = gt[gt[:, 0] == i][:, 2:6]
        boxes.append(np.c_[g[:, :2], g[:, :2] + g[:, 2:]])
    cap.release()
    return frames, boxes


def test_yolo_openvino_export_finds_the_people_of_real_frames(shared_yolo, eval_data):
    """The export folder as --detector-weights (also given as its .xml): persons on 12 PETS09 frames spread
    over the video, against ground truth at IoU 0.5 (all 795 frames at conf 0.5: P 0.94, R 0.89)."""
    from tracker.geometry import linear_assignment

    for weights in (shared_yolo, shared_yolo / "yolov8n.xml"):
        path, why = resolve_yolo_weights(str(weights), OFFLINE)
        assert path == shared_yolo, why
    det = build_detector(DetectConfig(detector="yolo", weights=str(shared_yolo), device="auto"), OFFLINE)
    assert isinstance(det, YoloDetector)
    assert det.info()["format"] == "openvino" and det.info()["device"] == "cpu"
    frames, truth = _pets_frames(eval_data, range(1, 796, 66))
    tp = n_det = n_gt = 0
    for d, g in zip(det.detect(frames), truth):
        d = d[d.confidence >= 0.5]
        n_det, n_gt = n_det + len(d), n_gt + len(g)
        if len(d) and len(g):
            tp += len(linear_assignment(1 - iou_matrix(g, d.xyxy), 0.5)[0])
    assert tp / n_gt >= 0.8 and tp / n_det >= 0.85, (tp, n_det, n_gt)


def test_yolo_batches_frames_of_several_cameras(shared_yolo, eval_data):
    """Two cameras share one detector and one batch (same batch_group); each frame's boxes are those of
    detecting it alone."""
    cfg = DetectConfig(detector="yolo", weights=str(shared_yolo), device="cpu", batch=4)
    a, b = build_detector(cfg, OFFLINE), build_detector(cfg, OFFLINE)
    assert a.batch_group == b.batch_group is not None
    frames, _ = _pets_frames(eval_data, (100, 400))
    other, _ = _pets_frames(eval_data, (250, 700))
    batch = frames + [Frame("cam2", f.index, f.time, f.image) for f in other]  # two cameras in one call
    together = a.detect(batch)
    alone = [a.detect([f])[0] for f in batch]
    for t, s in zip(together, alone):
        assert len(t) == len(s) >= 3
        np.testing.assert_allclose(t.xyxy, s.xyxy, atol=0.5)


def test_auto_finds_an_export_in_the_model_cache(shared_yolo, tmp_path):
    """``detector: auto`` with the default weights name: no yolov8n.pt in the cache, but an export of that
    model is: YOLO runs offline from it."""
    cache = tmp_path / "cache"
    (cache / "weights").mkdir(parents=True)
    (cache / "weights" / shared_yolo.name).symlink_to(shared_yolo, target_is_directory=True)
    models = ModelsConfig(offline=True, cache_dir=str(cache))
    (cfg, fallback) = __import__("tracker.detect", fromlist=["resolve_detector"]).resolve_detector(
        DetectConfig(detector="auto", weights="yolov8n.pt"), models
    )
    assert fallback is None and cfg.detector == "yolo"
    assert Path(cfg.weights) == cache / "weights" / shared_yolo.name
    other = ModelsConfig(offline=True, cache_dir=str(tmp_path / "empty"))
    assert resolve_yolo_weights("yolov8s.pt", models)[0] is None  # only exports of the named model count
    assert resolve_yolo_weights("yolov8n.pt", other)[0] is None


def test_missing_runtime_is_one_line(shared_yolo, monkeypatch):
    """An OpenVINO export without the openvino package: one line naming the package, not a traceback or an
    attempted pip install."""
    import tracker.detect as detect

    real = importlib.util.find_spec
    monkeypatch.setattr(
        detect.importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a)
    )
    detect._load_yolo.cache_clear()
    with pytest.raises(InputError, match="needs the 'openvino' package"):
        build_detector(DetectConfig(detector="yolo", weights=str(shared_yolo), device="cpu"), OFFLINE)
    assert detect.cached_export(shared_yolo.parent, "yolov8n") is None  # auto skips exports it cannot run
    detect._load_yolo.cache_clear()


def test_loading_ultralytics_leaves_the_thread_count_alone(tmp_path):
    """ultralytics sets OMP_NUM_THREADS=1 when imported; the ReID runtimes and the camera workers read it,
    so a YOLO run must not inherit it (they would run on one core)."""
    import os
    import subprocess
    import sys

    code = (
        "import os; from tracker.config import ModelsConfig; from tracker.detect import _prepare_ultralytics; "
        f"_prepare_ultralytics(ModelsConfig(cache_dir={str(tmp_path)!r}, offline=True)); "
        "import ultralytics; print(os.environ.get('OMP_NUM_THREADS'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"
