"""Box and ground-plane geometry, the assignment solver and track interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.geometry import (
    crop_box,
    cxcywh_to_xyxy,
    foot_points,
    interpolate_gaps,
    iou_matrix,
    linear_assignment,
    nms,
    to_ground,
    visibility,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)


def test_box_conventions_round_trip():
    xyxy = np.array([[10, 20, 40, 80], [0.5, 1.5, 2.5, 9.5]], np.float32)
    xywh = xyxy_to_xywh(xyxy)
    assert xywh.dtype == np.float32 and xywh.tolist() == [[10, 20, 30, 60], [0.5, 1.5, 2.0, 8.0]]
    np.testing.assert_array_equal(xywh_to_xyxy(xywh), xyxy)
    assert xyxy_to_xywh(np.array([[1, 2, 3, 5]])).dtype == np.float32  # integers become float32
    assert xywh_to_xyxy(np.zeros((0, 4))).shape == (0, 4)
    c = xyxy_to_cxcywh(xyxy)
    assert c.dtype == np.float64 and c[0].tolist() == [25, 50, 30, 60]
    np.testing.assert_allclose(cxcywh_to_xyxy(c), xyxy)
    assert cxcywh_to_xyxy(np.array([[5.0, 5.0, 0.1, -3.0]]))[0].tolist() == [4.5, 4.5, 5.5, 5.5]  # min size 1


def test_foot_points_and_ground_with_horizon():
    boxes = np.array([[10, 20, 30, 100]], np.float32)
    assert foot_points(boxes).tolist() == [[20, 100]]
    h = np.array([[50.0, 0.0, 320.0], [0.0, 20.0, 100.0], [0.0, 0.05, 1.0]])  # ground -> image
    ground = np.array([[1.0, 2.0], [-3.0, 10.0]])
    q = np.c_[ground, np.ones(2)] @ h.T
    image = q[:, :2] / q[:, 2:]
    np.testing.assert_allclose(to_ground(np.linalg.inv(h), image), ground, atol=1e-9)
    # an image point whose ray meets the ground behind the camera (homogeneous w < 0) or at infinity (w = 0)
    # lies on or above the horizon: it maps to no ground point
    behind = h @ np.array([1.0, 30.0, -1.0])
    assert behind[2] > 0
    horizon = h @ np.array([0.0, 1.0, 0.0])
    points = np.array([behind[:2] / behind[2], horizon[:2] / horizon[2]])
    assert np.isnan(to_ground(np.linalg.inv(h), points)).all()


def test_nms_keeps_best_of_overlaps():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.5).tolist() == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_crop_box_clips_and_is_never_empty():
    image = np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3)
    assert crop_box(image, np.array([2, 3, 6, 8])).shape == (5, 4, 3)
    assert crop_box(image, np.array([-5, -5, 3, 4])).shape == (4, 3, 3)
    assert crop_box(image, np.array([30, 30, 40, 40])).shape == (1, 1, 3)
    view = crop_box(image, np.array([0, 0, 2, 2]))
    assert np.shares_memory(view, image)


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
