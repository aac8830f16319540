"""Annotated videos' labels: large enough to read on a small video, legible on every id colour, inside the
frame."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.annotate import LABEL_HEIGHT, draw_boxes, id_colour, text_colour


def label_rows(before: np.ndarray, after: np.ndarray, box_top: int) -> int:
    """How many pixel rows above the box top the drawing changed (the label's height)."""
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2).max(axis=1) > 0
    return int(changed[:box_top].sum())


@pytest.mark.parametrize("height", [360, 720, 1080])
def test_label_is_readable_at_every_video_size(height):
    frame = np.full((height, height * 16 // 9, 3), 90, np.uint8)
    top = height // 2
    out = draw_boxes(frame, np.array([[100, top, 160, top + 120]], np.float32), [7])
    rows = label_rows(frame, out, top)
    assert rows >= LABEL_HEIGHT + 6  # text with its padding, above the box
    assert rows >= height * 0.025  # and it grows with the video


def test_label_colour_contrasts_and_stays_inside():
    for ident in range(1, 40):
        bg = np.array(id_colour(ident), float)
        fg = np.array(text_colour(id_colour(ident)), float)
        luma = np.array([0.114, 0.587, 0.299])
        assert abs(bg @ luma - fg @ luma) > 90  # black on light colours, white on dark ones
    frame = np.zeros((360, 640, 3), np.uint8)
    out = draw_boxes(frame, np.array([[600, 0, 660, 100]], np.float32), [12345])  # box at the top right
    cols = np.flatnonzero(np.abs(out.astype(int)).max(axis=2).max(axis=0) > 0)
    rows = np.flatnonzero(np.abs(out.astype(int)).max(axis=2).max(axis=1) > 0)
    assert cols.max() < 640 and rows.min() == 0
    label = out[:20, 560:640]
    assert (
        np.abs(label.astype(int) - np.array(id_colour(12345))).max(axis=2) < 3
    ).sum() > 200  # all of it shows
