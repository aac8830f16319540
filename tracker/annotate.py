"""Annotated videos: each camera's frames with boxes coloured and labelled by identity (H.264 MP4)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from tracker.fsutil import inside
from tracker.types import Tracklet
from tracker.video import FrameSource, open_video


def id_colour(identity: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for an id (golden-ratio hue steps)."""
    hue = int((identity * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 200, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


LABEL_HEIGHT = 13  # pixels of label text at the smallest size, readable on a 360-row video


def text_colour(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on a BGR background colour (Rec. 601 luma)."""
    b, g, r = colour
    return (0, 0, 0) if 0.114 * b + 0.587 * g + 0.299 * r > 140 else (255, 255, 255)


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    ids: list[int],
    labels: list[str] | None = None,
    size: float | None = None,
) -> np.ndarray:
    """Draw ``boxes`` (N, 4) xyxy with filled id labels on a copy of ``image``.

    ``size`` scales lines and text (default: with the frame height, 1.0 up to 540 rows, so that a label is
    at least :data:`LABEL_HEIGHT` pixels tall, bold, in black or white on the id's colour); a label sits above
    its box, inside the image when the box touches an edge.
    """
    out = image.copy()
    h_img, w_img = image.shape[:2]
    size = max(h_img / 540.0, 1.0) if size is None else size
    line = max(2, round(2 * size))
    scale = 0.55 * size
    thick = max(2, round(1.6 * size))
    pad = max(3, round(4 * size))
    for i, (box, ident) in enumerate(zip(boxes, ids)):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        colour = id_colour(ident)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, line)
        text = labels[i] if labels else str(ident)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        left = min(max(x1, 0), max(w_img - tw - 2 * pad, 0))
        top = max(y1 - th - base - 2 * pad, 0)  # above the box, or inside it at the top edge
        cv2.rectangle(out, (left, top), (left + tw + 2 * pad, top + th + base + 2 * pad), colour, -1)
        cv2.putText(
            out,
            text,
            (left + pad, top + pad + th),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            text_colour(colour),
            thick,
            cv2.LINE_AA,
        )
    return out


def write_annotated_videos(
    sources: list[FrameSource], tracklets: list[Tracklet], out_dir: Path, progress: bool = True
) -> list[Path]:
    """Write ``out_dir/<camera>.mp4`` for every source with pixels; ids are global ids when assigned."""
    from tqdm import tqdm

    rows: dict[str, dict[int, list[tuple[np.ndarray, int]]]] = defaultdict(lambda: defaultdict(list))
    for t in tracklets:
        ident = t.global_id if t.global_id > 0 else t.track_id
        for f, box, _ in t.iter_rows():
            rows[t.camera][f].append((box, ident))
    written = []
    for src in sources:
        if not src.has_images:
            continue
        per_frame = rows.get(src.camera, {})
        target = inside(out_dir, f"{src.camera}.mp4")
        with open_video(target, src.info.width, src.info.height, src.info.fps / src.stride) as writer:
            for frame in tqdm(
                src, total=len(src), desc=f"video {src.camera}", unit="frame", disable=not progress
            ):
                items = per_frame.get(frame.index, [])
                boxes = np.array([b for b, _ in items], np.float32).reshape(-1, 4)
                writer.write(draw_boxes(frame.image, boxes, [i for _, i in items]))
        written.append(target)
    return written
