"""MOTChallenge text files: the one reader (results, ground truth, detections) and the one writer.

A row is ``frame, id, x, y, w, h, conf, ...`` with 1-based frames and ``x, y, w, h`` the box's top-left corner
and size in pixels; ground truth continues ``mark, class, visibility``, results and detections ``-1, -1, -1``
(or world coordinates).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from tracker.errors import InputError
from tracker.geometry import xyxy_to_xywh

MAX_VALUE = 1e9  # no frame number, id or pixel coordinate is larger (and every value fits float32 and int64)


def read_mot(path: Path, min_cols: int) -> np.ndarray:
    """Read a MOT text file (comma- or space-separated) into an (N, C) float64 array, C >= ``min_cols``.

    Rows of unequal length (some writers add trailing commas or extra columns) are cut to the shortest. A file
    that is not one (unreadable, non-numeric, NaN, infinite or absurdly large values, frame numbers that are
    not whole numbers >= 1, too few columns) raises InputError naming the file.
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not text.strip():
        return np.zeros((0, min_cols))
    try:  # fast path: a regular table
        first = text.lstrip().split("\n", 1)[0]
        data = np.loadtxt(io.StringIO(text), delimiter="," if "," in first else None, ndmin=2)
    except ValueError:
        data = _read_ragged(path, text)
    if data.shape[1] < min_cols:
        raise InputError(f"{path}: fewer than {min_cols} columns (not a MOTChallenge file)")
    if not np.isfinite(data).all():
        raise InputError(f"{path}: not a MOTChallenge file (nan or inf values)")
    if (np.abs(data) > MAX_VALUE).any():
        raise InputError(f"{path}: not a MOTChallenge file (values beyond +-{MAX_VALUE:g})")
    frames = data[:, 0]
    if (frames < 1).any() or (frames != np.round(frames)).any():
        raise InputError(f"{path}: frame numbers must be whole numbers >= 1")
    return data


def _read_ragged(path: Path, text: str) -> np.ndarray:
    """Slow path of :func:`read_mot`: split every line, keep the columns all rows have."""
    rows = [r for r in (line.replace(",", " ").split() for line in text.splitlines()) if r]
    width = min(len(r) for r in rows)
    try:
        return np.array([r[:width] for r in rows], dtype=np.float64)
    except ValueError:
        raise InputError(f"{path}: not a MOTChallenge file (non-numeric values)") from None


def mot_text(rows: np.ndarray) -> str:
    """MOTChallenge text of (N, 7) rows ``frame, id, x, y, w, h, conf`` (already sorted)."""
    return "".join(
        f"{int(f)},{int(i)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{c:.3f},-1,-1,-1\n"
        for f, i, x, y, w, h, c in rows.tolist()
    )


def tracklet_rows(tracklets, ids=None) -> np.ndarray:
    """(N, 7) rows ``frame, id, x, y, w, h, conf`` of the tracklets' boxes and scores, sorted by frame then
    id, for :func:`mot_text`; ``ids``: one per tracklet (default: each tracklet's ``track_id``)."""
    ids = [t.track_id for t in tracklets] if ids is None else np.asarray(ids).tolist()
    parts = [
        np.c_[t.frames, np.full(len(t), g), xyxy_to_xywh(t.boxes), t.scores] for t, g in zip(tracklets, ids)
    ]
    rows = np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, 7))
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]
