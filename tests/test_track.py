"""The per-camera tracker alone, on synthetic boxes with known identities."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_batched_kalman_matches_filterpy_step_by_step():
    """kalman_predict / kalman_update on stacked tracks give filterpy's predict / update of each track
    (Joseph-form covariance) to 1e-6, over many steps with random boxes, noise scales and missed frames."""
    from filterpy.kalman import predict as fp_predict
    from filterpy.kalman import update as fp_update

    from tracker.track import F, H, kalman_predict, kalman_update, new_states

    rng = np.random.default_rng(3)
    n = 12
    z0 = np.c_[rng.uniform(50, 600, (n, 2)), rng.uniform(10, 80, (n, 1)), rng.uniform(30, 200, (n, 1))]
    x, P = new_states(z0)
    ref = [(x[i].copy(), P[i].copy()) for i in range(n)]
    for step in range(60):
        q_std = rng.uniform(0.1, 5.0, (n, 8))
        x, P = kalman_predict(x, P, q_std)
        ref = [fp_predict(xi, Pi, F, np.diag(q_std[i] ** 2)) for i, (xi, Pi) in enumerate(ref)]
        seen = np.flatnonzero(rng.random(n) > 0.3)  # the others miss this frame
        z = x[seen, :4] + rng.normal(0, 3, (len(seen), 4))
        r_std = rng.uniform(0.5, 6.0, (len(seen), 4))
        x[seen], P[seen] = kalman_update(x[seen], P[seen], z, r_std)
        for k, i in enumerate(seen):
            ref[i] = fp_update(ref[i][0], ref[i][1], z[k], np.diag(r_std[k] ** 2), H)
        for i, (xi, Pi) in enumerate(ref):
            np.testing.assert_allclose(x[i], xi, rtol=1e-6, atol=1e-6, err_msg=f"state, step {step}")
            np.testing.assert_allclose(P[i], Pi, rtol=1e-6, atol=1e-6, err_msg=f"covariance, step {step}")


def test_assignment_shortcut_gives_the_optimal_matching():
    """Pairs that are each other's only candidate are matched directly; the result equals the full
    Jonker-Volgenant solution on random sparse cost matrices (including rectangular and empty ones)."""
    from tracker.geometry import linear_assignment
    from tracker.track import _assign

    rng = np.random.default_rng(0)
    for trial in range(300):
        n, m = rng.integers(0, 9, 2)
        cost = rng.uniform(0, 1, (n, m))
        cost[rng.random((n, m)) < 0.7] = 1.0  # mostly infeasible, as IoU costs are
        rows, cols, rest = _assign(cost, 0.8)
        ref, ref_rest, _ = linear_assignment(cost, 0.8)
        assert sorted(zip(rows.tolist(), cols.tolist())) == sorted(map(tuple, ref.tolist())), trial
        assert sorted(rest.tolist()) == sorted(ref_rest.tolist())
        assert np.isclose(cost[rows, cols].sum(), cost[ref[:, 0], ref[:, 1]].sum())


def test_scaled_iou_is_frame_rate_aware():
    from tracker.track import scaled_iou

    assert scaled_iou(0.6, 30.0) == pytest.approx(0.6)
    assert scaled_iou(0.6, 60.0) == pytest.approx(0.6)  # never stricter than given
    assert scaled_iou(0.6, 15.0) == pytest.approx(1 - 0.4 * 2**0.5)
    assert scaled_iou(0.6, 10.0) < scaled_iou(0.6, 15.0) < 0.6
    assert scaled_iou(0.6, 1.0) == 0.0


def _walkers_with_clutter(scale, offset, seed=2):
    """Noisy true boxes (scores 0.55-0.95) and, in every frame, the same three static false boxes (scores
    0.05-0.4), with every score mapped to ``scale * s + offset`` (a detector on another score scale)."""
    rng = np.random.default_rng(seed)
    clutter = np.array([[20, 20, 40, 70], [560, 30, 590, 100], [300, 5, 320, 50]], np.float32)
    frames = []
    for f, (_, boxes) in sorted(synthetic_walkers(n_frames=150).items()):
        b = np.r_[boxes + rng.normal(0, 1.5, boxes.shape), clutter + rng.normal(0, 0.5, clutter.shape)]
        s = np.r_[rng.uniform(0.55, 0.95, len(boxes)), rng.uniform(0.05, 0.4, len(clutter))]
        frames.append((f, Detections(b, scale * s + offset)))
    return frames, clutter


def test_auto_thresholds_follow_the_detector_score_scale():
    """Raw scores far outside [0, 1] (as public ACF detections have): ``auto`` applies the thresholds as
    quantiles of the run's scores, so the static low-score clutter never becomes a track, as with scores in
    [0, 1]; ``fixed`` thresholds on the raw scale track the clutter."""

    def clutter_tracks(cfg, scale, offset):
        frames, clutter = _walkers_with_clutter(scale, offset)
        t = CameraTracker(cfg, fps=25.0)
        for f, d in frames:
            t.update(f, f / 25, d)
        tracks = t.finish()
        return sum(iou_matrix(tr.boxes.mean(0)[None], clutter).max() > 0.5 for tr in tracks), len(tracks)

    from tracker.geometry import iou_matrix

    auto_raw, n_raw = clutter_tracks(TrackConfig(), 100.0, -20.0)
    auto_unit, n_unit = clutter_tracks(TrackConfig(), 1.0, 0.0)
    fixed_raw, _ = clutter_tracks(TrackConfig(thresholds="fixed"), 100.0, -20.0)
    assert auto_raw == auto_unit == 0
    assert n_raw >= 8 and abs(n_raw - n_unit) <= 1  # the walkers are tracked on either scale
    assert fixed_raw == 3


def test_score_calibration_finds_where_detections_start_being_tracked():
    """Detections tracked with probability 0.1 below score 0.6 and 0.95 above it (and scores bunched at 1,
    as FRCNN's are): the learned threshold for a tracked rate of 0.7 sits at 0.6 within a bin, on any score
    scale; the fitted rates never decrease with the score."""
    from tracker.track import ScoreCalibration

    rng = np.random.default_rng(1)
    s = np.r_[rng.uniform(0, 1, 6000), np.ones(2000)]
    tracked = rng.random(len(s)) < np.where(s >= 0.6, 0.95, 0.1)
    for scale, offset in ((1.0, 0.0), (140.0, -0.5)):
        cal = ScoreCalibration(window=8192, bins=20)
        for k in range(0, len(s), 100):
            cal.add((scale * s[k : k + 100] + offset).astype(np.float32), tracked[k : k + 100])
        cal.fit()
        assert np.all(np.diff(cal._rates) >= 0)
        assert (cal.threshold(0.7) - offset) / scale == pytest.approx(0.6, abs=0.06)
        assert cal.out_of_range == (scale != 1.0)


def test_a_detection_overlapping_another_track_does_not_change_its_tracks_appearance():
    """Two people side by side (boxes at IoU 0.33) whose crops show each other for 19 frames: neither track
    takes the other's look (``CROWDED_IOU``), so a detection halfway between them that looks like the first
    goes to the first. Blending those crops in would have given the first track the second one's look."""
    fa, fb = np.eye(4, dtype=np.float32)[:2]
    left = np.array([80, 0, 120, 100], np.float32)
    right = np.array([100, 0, 140, 100], np.float32)
    t = CameraTracker(TrackConfig(min_hits=1, appearance_weight=0.3), fps=10)
    t.update(1, 0.1, Detections(np.stack([left, right]), [0.9, 0.9]), features=np.stack([fa, fb]))
    ids = []
    for f in range(2, 21):
        out = t.update(
            f, f / 10, Detections(np.stack([left, right]), [0.9, 0.9]), features=np.stack([fb, fa])
        )
        ids.append(out.tracker_id.tolist())
    assert ids == [ids[0]] * 19 and len(set(ids[0])) == 2  # each track keeps its own box throughout
    between = t.update(
        21, 2.1, Detections(np.array([[90, 0, 130, 100]], np.float32), [0.9]), features=fa[None]
    )
    assert between.tracker_id.tolist() == [ids[0][0]]
