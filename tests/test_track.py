"""The per-camera tracker alone, on synthetic boxes with known identities."""

from __future__ import annotations

import numpy as np

from tracker.config import TrackConfig
from tracker.track import CameraTracker, crop_quality, max_misses
from tracker.types import Detections


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
    gt_rows = [
        (f, int(i), *map(float, b[:2]), float(b[2] - b[0]), float(b[3] - b[1]), 1, 1, 1.0)
        for f, (ids, boxes) in gt.items()
        for i, b in zip(ids, boxes)
    ]
    res_rows = [
        (f, t.track_id, *map(float, b[:2]), float(b[2] - b[0]), float(b[3] - b[1]), 1.0, -1, -1, -1)
        for t in tracklets
        for f, b, _ in t.iter_rows()
    ]
    _write_mot(tmp_path / "gt.txt", gt_rows)
    _write_mot(tmp_path / "res.txt", sorted(res_rows))
    m = evaluate_sequences({"synthetic": (tmp_path / "gt.txt", tmp_path / "res.txt")})["sequences"][
        "synthetic"
    ]
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
    """One crop every half second at most, the best ``max_crops`` kept (the bigger box wins), cut from the
    detector's box."""
    cfg = TrackConfig(min_hits=1, max_crops=3)
    t = CameraTracker(cfg, fps=10)
    image = np.tile(np.arange(640, dtype=np.uint8)[None, :, None] // 3, (360, 1, 3))  # columns tell x
    for f in range(1, 60):
        x = 100 + f
        h = 200 if f in (26, 41) else 100  # two frames where the person is seen larger
        t.update(f, f / 10, Detections(np.array([[x, 100, x + 40, 100 + h]], np.float32), [0.9]), image)
    (tr,) = t.finish()
    frames = [c.frame for c in tr.crops]
    assert len(frames) == 3 and frames == sorted(frames)
    assert all(b - a >= 5 for a, b in zip(frames, frames[1:]))  # crop_every = fps / 2 frames
    assert {26, 41} <= set(frames)  # the two large, high-quality crops are kept
    for c in tr.crops:
        assert c.image.shape[0] >= cfg.min_crop_height
        assert c.image[0, 0, 0] == image[0, int(c.box[0]), 0]  # cut at the detector's box


def test_crop_quality_range_and_monotonic():
    assert crop_quality(0, 1.0) == 0.0
    values = [crop_quality(h, 0.9) for h in (10, 24, 50, 100, 200, 400)]
    assert all(0 <= v <= 1 for v in values)
    assert values == sorted(values) and values[-1] > 0.9 * 0.9
    assert crop_quality(100, 0.9) > crop_quality(100, 0.5)
    assert crop_quality(100, 0.9, visibility=1.0) > crop_quality(100, 0.9, visibility=0.3)
    assert crop_quality(1e6, 5.0, 7.0) <= 1.0  # inputs out of range are clipped
    assert crop_quality(100, -1.0) == 0.0


def test_max_misses_is_max_age_in_processed_frames():
    assert max_misses(TrackConfig(max_age=1.5), 30.0) == 45
    assert max_misses(TrackConfig(max_age=1.5), 5.0) == 8  # a frame stride lowers the rate
    assert max_misses(TrackConfig(max_age=0.01), 10.0) == 1  # at least one frame
