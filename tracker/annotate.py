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


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    ids: list[int],
    labels: list[str] | None = None,
    size: float | None = None,
) -> np.ndarray:
    """Draw ``boxes`` (N, 4) xyxy with filled id labels on a copy of ``image``.

    ``size`` scales lines and text (default: with the frame height, 1.0 at 720 rows); labels stay inside
    the image when a box touches its top edge.
    """
    out = image.copy()
    size = max(image.shape[0] / 720.0, 0.4) if size is None else size
    line, text_px, pad = max(1, round(2 * size)), max(1, round(size)), max(2, round(4 * size))
    for i, (box, ident) in enumerate(zip(boxes, ids)):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        colour = id_colour(ident)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, line)
        text = labels[i] if labels else str(ident)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * size, text_px)
        top = max(y1, th + pad)
        cv2.rectangle(out, (x1, top - th - pad), (x1 + tw + pad, top), colour, -1)
        cv2.putText(
            out,
            text,
            (x1 + pad // 2, top - pad // 2 - 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5 * size,
            (0, 0, 0),
            text_px,
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
