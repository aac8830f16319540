"""The per-camera tracker alone, on synthetic boxes with known identities."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.config import TrackConfig
from tracker.track import CameraTracker, interpolate_gaps, iou_matrix, linear_assignment, visibility
from tracker.types import Detections


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], np.float32)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0], atol=1e-6)
    assert iou[1].max() == 0
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_linear_assignment_respects_max_cost():
    cost = np.array([[0.1, 0.9], [0.8, 0.95]])
    matches, un_rows, un_cols = linear_assignment(cost, 0.5)
    assert matches.tolist() == [[0, 0]]
    assert un_rows.tolist() == [1] and un_cols.tolist() == [1]
    m, r, c = linear_assignment(np.zeros((0, 3)), 0.5)
    assert len(m) == 0 and len(r) == 0 and c.tolist() == [0, 1, 2]


def test_visibility_counts_nearer_boxes_only():
    boxes = np.array([[0, 0, 10, 20], [0, 10, 10, 30]], np.float32)  # second is lower: nearer
    vis = visibility(boxes)
    assert vis[0] == pytest.approx(0.5) and vis[1] == pytest.approx(1.0)


def test_interpolate_fills_short_gaps_only():
    frames = np.array([1, 2, 5, 20])
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [4, 0, 14, 10], [19, 0, 29, 10]], np.float32)
    f, t, b, s = interpolate_gaps(frames, frames / 10.0, boxes, np.ones(4, np.float32), max_gap=5)
    assert f.tolist() == [1, 2, 3, 4, 5, 20]
    np.testing.assert_allclose(b[2], [2, 0, 12, 10])
    assert s.tolist() == [1, 1, 0, 0, 1, 1]


def synthetic_walkers(n_people=8, n_frames=200, seed=0):
    """People crossing a 640x360 image on straight lines: {frame: (ids, boxes)} ground truth."""
    rng = np.random.default_rng(seed)
    gt = {}
    starts = rng.uniform([0, 120], [600, 240], (n_people, 2))
    vel = rng.uniform(-2.5, 2.5, (n_people, 2)) * [1, 0.3]
    size = rng.uniform(40, 90, n_people)
    for f in range(1, n_frames + 1):
        pos = starts + vel * f
        h = size
        w = h * 0.4
        boxes = np.c_[pos[:, 0] - w / 2, pos[:, 1] - h, pos[:, 0] + w / 2, pos[:, 1]]
        inside = (boxes[:, 0] > -w / 2) & (boxes[:, 2] < 640 + w / 2)
        gt[f] = (np.flatnonzero(inside) + 1, boxes[inside])
    return gt


def track_noisy(gt, drop=0.1, noise=2.0, seed=1, cfg=None):
    rng = np.random.default_rng(seed)
    tracker = CameraTracker(cfg or TrackConfig(), fps=25.0, camera="c")
    for f in sorted(gt):
        ids, boxes = gt[f]
        keep = rng.random(len(ids)) > drop
        b = boxes[keep] + rng.normal(0, noise, (keep.sum(), 4))
        conf = rng.uniform(0.3, 0.95, keep.sum())
        tracker.update(f, f / 25.0, Detections(b, conf))
    return tracker.finish()


def _write_mot(path, rows):
    with open(path, "w") as fh:
        for r in rows:
            fh.write(",".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + "\n")


def test_tracker_on_noisy_gt_boxes_keeps_identities(tmp_path):
    from tracker.evaluate import evaluate_sequences

    gt = synthetic_walkers()
    tracklets = track_noisy(gt)
    gt_rows = [(f, int(i), *map(float, b[:2]), float(b[2] - b[0]), float(b[3] - b[1]), 1, 1, 1.0)
               for f, (ids, boxes) in gt.items() for i, b in zip(ids, boxes)]
    res_rows = [(f, t.track_id, *map(float, b[:2]), float(b[2] - b[0]), float(b[3] - b[1]), 1.0, -1, -1, -1)
                for t in tracklets for f, b, _ in t.iter_rows()]
    _write_mot(tmp_path / "gt.txt", gt_rows)
    _write_mot(tmp_path / "res.txt", sorted(res_rows))
    m = evaluate_sequences({"synthetic": (tmp_path / "gt.txt", tmp_path / "res.txt")})["sequences"]["synthetic"]
    assert m["IDF1"] >= 0.95, m
    assert m["MOTA"] >= 0.90, m


def test_tracker_ids_are_per_instance_and_tentative_tracks_hidden():
    box = np.array([[100, 100, 140, 200]], np.float32)
    a = CameraTracker(TrackConfig(min_hits=3), fps=10, camera="a")
    b = CameraTracker(TrackConfig(min_hits=3), fps=10, camera="b")
    outs = [a.update(f, f / 10, Detections(box + f, [0.9])) for f in range(1, 6)]
    assert [len(o) for o in outs] == [0, 0, 1, 1, 1]
    b.update(1, 0.1, Detections(box, [0.9]))
    ta, tb = a.finish(), b.finish()
    assert [t.track_id for t in ta] == [1]
    assert tb == []  # one hit only: never confirmed
    assert ta[0].frames.tolist() == [1, 2, 3, 4, 5]  # rows from before confirmation are kept


def test_low_score_detections_extend_but_do_not_start_tracks():
    cfg = TrackConfig(min_hits=1, min_length=1)
    t = CameraTracker(cfg, fps=10)
    box = np.array([[100, 100, 140, 200]], np.float32)
    t.update(1, 0.1, Detections(box, [0.9]))
    t.update(2, 0.2, Detections(box + 1, [0.3]))  # low: continues track 1
    t.update(3, 0.3, Detections(box + 300, [0.3]))  # low and far away: no new track
    (only,) = t.finish()
    assert only.frames.tolist()[:2] == [1, 2]


def test_crops_are_bounded_and_sampled(tmp_path):
    cfg = TrackConfig(min_hits=1, max_crops=3)
    t = CameraTracker(cfg, fps=10)
    image = np.zeros((360, 640, 3), np.uint8)
    for f in range(1, 60):
        x = 100 + f
        t.update(f, f / 10, Detections(np.array([[x, 100, x + 40, 200]], np.float32), [0.9]), image)
    (tr,) = t.finish()
    assert 1 <= len(tr.crops) <= 3
    assert all(c.image.shape[0] >= cfg.min_crop_height for c in tr.crops)
