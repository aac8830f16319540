"""Detectors: the offline ones on synthetic and real frames, YOLO with test-made random weights."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from tracker.config import DetectConfig, MotionConfig
from tracker.detect import HogDetector, MotionDetector, YoloDetector, build_detector, nms, resolve_yolo_weights
from tracker.errors import InputError
from tracker.track import iou_matrix


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
        (d,) = det.detect([img])
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
    (d,) = det.detect([noisy(img)])
    assert len(d) == 2
    assert np.all(d.xyxy[:, 2] - d.xyxy[:, 0] < 50)


def test_nms_keeps_best_of_overlaps():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.5).tolist() == [1, 2]


def test_hog_on_real_pets_frames(eval_data):
    video = eval_data / "pets09-s2l1-vtest" / "vtest.avi"
    gt = np.loadtxt(eval_data / "pets09-s2l1-vtest" / "PETS09-S2L1-480x360" / "gt" / "gt.txt", delimiter=",")
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    (d,) = HogDetector(DetectConfig()).detect([frame])
    g = gt[gt[:, 0] == 1][:, 2:6]
    g = np.c_[g[:, :2], g[:, :2] + g[:, 2:]]
    matched = (iou_matrix(g, d.xyxy).max(axis=1) > 0.3).sum() if len(d) else 0
    assert matched >= 0.4 * len(g), (matched, len(g))


def test_auto_falls_back_offline_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING):
        det = build_detector(DetectConfig(detector="auto", weights="yolov8n.pt"))
    assert det.name == "motion"
    assert "offline" in det.info()["fallback_reason"]
    assert sum("YOLO unavailable" in r.message for r in caplog.records) <= 1


def test_yolo_without_weights_offline_fails_at_once():
    with pytest.raises(InputError, match="yolov8n.pt"):
        build_detector(DetectConfig(detector="yolo", weights="yolov8n.pt"))
    path, why = resolve_yolo_weights("/no/such/weights.pt", download=True)
    assert path is None and "not found" in why


def test_unknown_detector_and_corrupt_weights(tmp_path):
    with pytest.raises(InputError, match="unknown"):
        build_detector(DetectConfig(detector="rcnn"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="bad.pt"):
        build_detector(DetectConfig(detector="yolo", weights=str(bad)))


@pytest.fixture(scope="module")
def random_yolo(tmp_path_factory):
    from tracker.detect import _prepare_ultralytics

    _prepare_ultralytics()
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("yolo") / "random-yolov8n.pt"
    YOLO("yolov8n.yaml").save(str(path))
    return path


def test_yolo_detector_with_random_weights(random_yolo):
    det = build_detector(DetectConfig(detector="yolo", weights=str(random_yolo), imgsz=160, device="cpu"))
    assert isinstance(det, YoloDetector)
    out = det.detect([np.zeros((90, 160, 3), np.uint8)] * 3)
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
