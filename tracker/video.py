"""Frame sources: a video file, a folder of frames, or a MOTChallenge sequence folder.

Every source streams frames one at a time (memory stays bounded whatever the length), skips frames by
``stride`` and stamps each frame with its time on the common clock (``(index - 1) / fps + offset``).
"""

from __future__ import annotations

import configparser
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from tracker.errors import InputError

# FFmpeg's own log lines ("moov atom not found") would precede our one-line error; we report failures
# ourselves.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
from tracker.types import CameraInfo, Frame

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
"""File suffixes read as images: frames of a folder, crops of a ReID data set."""
DEFAULT_FOLDER_FPS = 25.0


@dataclass
class FrameSource:
    """A camera's frames. Iterate to stream :class:`Frame` objects (``image`` is None without pixels).

    ``start`` / ``stop`` restrict the iteration to frames ``start <= index < stop`` (1-based, ``stop`` None:
    to the end); see :meth:`window`.
    """

    info: CameraInfo
    stride: int = 1
    _video: Path | None = None
    _images: list[Path | None] | None = None  # one entry per frame; None where the frame is not on disk
    start: int = 1
    stop: int | None = None

    @property
    def camera(self) -> str:
        return self.info.name

    @property
    def has_images(self) -> bool:
        """True when every frame has pixels (a detector can run on it)."""
        return self._video is not None or (bool(self._images) and all(p is not None for p in self._images))

    def __len__(self) -> int:
        """Number of frames the iteration yields (after stride); an estimate for some containers."""
        total = self.info.frames_total or 0
        end = total + 1 if self.stop is None else min(self.stop, total + 1)
        return max(0, (end - self._first_index() + self.stride - 1) // self.stride)

    def window(self, start: int = 1, stop: int | None = None) -> FrameSource:
        """This source restricted to frames ``start <= index < stop`` (1-based; ``stop`` None: to the end).

        Frame numbers, times and the stride phase stay those of the whole source, so a window yields exactly
        the frames the whole source yields in its range (time chunks of a long video). A video window starts
        with a seek (OpenCV's FFmpeg backend decodes from the preceding keyframe, frame-accurate for
        constant-frame-rate files). :meth:`sample_images` still samples the whole source.
        """
        if start < 1 or (stop is not None and stop < start):
            raise ValueError(f"invalid frame window [{start}, {stop})")
        return replace(self, start=start, stop=stop)

    def _first_index(self) -> int:
        """The first frame number at or after ``start`` that the stride keeps (``(index - 1) % stride ==
        0``)."""
        return self.start + (-(self.start - 1)) % self.stride

    def time_of(self, index: int) -> float:
        return (index - 1) / self.info.fps + self.info.offset

    def __iter__(self) -> Iterator[Frame]:
        if self._video is not None:
            yield from self._iter_video()
        else:
            last = (
                len(self._images or []) if self.stop is None else min(len(self._images or []), self.stop - 1)
            )
            for i in range(self._first_index(), last + 1, self.stride):
                path = self._images[i - 1]
                yield Frame(self.camera, i, self.time_of(i), None if path is None else _read_image(path))

    def _iter_video(self) -> Iterator[Frame]:
        cap = cv2.VideoCapture(str(self._video))
        try:
            index = self.start - 1
            if index and not cap.set(cv2.CAP_PROP_POS_FRAMES, index):
                for _ in range(index):  # a container that cannot seek: decode up to the window
                    if not cap.grab():
                        return
            while True:
                index += 1
                if self.stop is not None and index >= self.stop:
                    break
                if (index - 1) % self.stride:
                    if not cap.grab():
                        break
                    continue
                ok, image = cap.read()
                if not ok:
                    break
                yield Frame(self.camera, index, self.time_of(index), image)
        finally:
            cap.release()

    def read(self, index: int) -> np.ndarray | None:
        """Frame ``index`` (1-based) by random access; None when it is out of range or not on disk."""
        if self._video is not None:
            cap = cv2.VideoCapture(str(self._video))
            try:
                cap.set(cv2.CAP_PROP_POS_FRAMES, index - 1)
                ok, image = cap.read()
            finally:
                cap.release()
            return image if ok else None
        images = self._images or []
        path = images[index - 1] if 1 <= index <= len(images) else None
        return None if path is None else cv2.imread(str(path), cv2.IMREAD_COLOR)

    def sample_images(self, count: int, max_pixels: int | None = None) -> list[np.ndarray]:
        """Up to ``count`` frames spread evenly over the source (for background models and thumbnails),
        each shrunk (area interpolation) to at most ``max_pixels`` pixels when given, so that the sample of
        a 4K camera stays small."""
        if self._images:
            present = [p for p in self._images if p is not None]
            picks = np.linspace(0, len(present) - 1, min(count, len(present))).round().astype(int)
            return [_shrink(_read_image(present[i]), max_pixels) for i in sorted(set(picks))]
        if self._video is None:
            return []
        cap = cv2.VideoCapture(str(self._video))
        try:
            total = self.info.frames_total or int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            out = []
            for i in sorted(set(np.linspace(0, max(total - 1, 0), count).round().astype(int))):
                cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
                ok, image = cap.read()
                if ok:
                    out.append(_shrink(image, max_pixels))
            return out
        finally:
            cap.release()


def _shrink(image: np.ndarray, max_pixels: int | None) -> np.ndarray:
    """``image`` resized (area interpolation, aspect kept) to at most ``max_pixels`` pixels."""
    h, w = image.shape[:2]
    if max_pixels is None or h * w <= max_pixels:
        return image
    f = (max_pixels / float(h * w)) ** 0.5
    return cv2.resize(image, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: not a readable image")
    return image


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _by_frame_number(images: list[Path], length: int) -> list[Path | None]:
    """Place MOTChallenge frames (``000001.jpg`` ...) at their frame number; missing frames stay None."""
    slots: list[Path | None] = [None] * length
    for path in images:
        if path.stem.isdigit() and 1 <= int(path.stem) <= length:
            slots[int(path.stem) - 1] = path
    return slots


def read_seqinfo(folder: Path) -> dict[str, str]:
    """The ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini``, lower-cased keys."""
    parser = configparser.ConfigParser()
    try:
        parser.read(folder / "seqinfo.ini")
        return {k.lower(): v for k, v in parser["Sequence"].items()}
    except (configparser.Error, KeyError):
        raise InputError(
            f"{folder / 'seqinfo.ini'}: not a MOTChallenge seqinfo.ini ([Sequence] missing)"
        ) from None


def open_source(
    path: str | Path, name: str | None = None, offset: float = 0.0, stride: int = 1
) -> FrameSource:
    """Open a video file, a folder of frames or a MOT sequence folder; check it has frames.

    Raises :class:`InputError` naming ``path`` when it is missing, unreadable or has no frames.
    """
    p = Path(path)
    if stride < 1:
        raise InputError(f"--frame-stride must be at least 1, got {stride}")
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    camera = name or (p.stem if p.is_file() else p.name)
    if p.is_dir():
        return _open_folder(p, camera, offset, stride)
    return _open_video(p, camera, offset, stride)


def _open_video(p: Path, camera: str, offset: float, stride: int) -> FrameSource:
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise InputError(f"{p}: not a readable video")
        ok, image = cap.read()
        if not ok or image is None:
            raise InputError(f"{p}: the video has no frames")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    finally:
        cap.release()
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = DEFAULT_FOLDER_FPS
    h, w = image.shape[:2]
    info = CameraInfo(camera, str(p), w, h, float(fps), offset, total)
    return FrameSource(info, stride, _video=p)


def _open_folder(p: Path, camera: str, offset: float, stride: int) -> FrameSource:
    seq = read_seqinfo(p) if (p / "seqinfo.ini").is_file() else None
    img_dir = p / (seq.get("imdir", "img1") if seq else "")
    images = _list_images(img_dir) if img_dir.is_dir() else []
    if seq is None and not images:
        raise InputError(f"{p}: folder has no images and no seqinfo.ini")
    if seq is not None:
        try:
            fps = float(seq.get("framerate", DEFAULT_FOLDER_FPS))
            length = int(seq["seqlength"])
            width, height = int(seq.get("imwidth", 0)), int(seq.get("imheight", 0))
        except (KeyError, ValueError):
            raise InputError(
                f"{p / 'seqinfo.ini'}: needs numeric seqLength, frameRate, imWidth, imHeight"
            ) from None
        if length <= 0:
            raise InputError(f"{p / 'seqinfo.ini'}: seqLength is {length}, the sequence has no frames")
        images = _by_frame_number(images, length)
    else:
        fps, length = DEFAULT_FOLDER_FPS, len(images)
        height, width = _read_image(images[0]).shape[:2]
    info = CameraInfo(camera, str(p), width, height, fps, offset, length)
    return FrameSource(info, stride, _images=images)


class H264Writer:
    """Stream BGR frames into a browser-playable MP4 with PyAV: H.264 (libx264, yuv420p, CRF), or MPEG-4
    Part 2 (what OpenCV calls mp4v) when libx264 is missing.

    x264 runs on one thread and, on x86-64, with its instruction sets pinned to SSE2: left to detect the
    CPU itself it produced different bytes from run to run on a VM, while SSE2, which every x86-64 CPU has,
    gives the same bytes from the same frames and encodes about as fast. Odd frame sizes are padded by one
    pixel (yuv420p needs even sizes). Use as a context manager, or :func:`open_video` for atomic output.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float, crf: int = 23):
        import platform
        from fractions import Fraction

        import av

        self._av = av
        self.width, self.height = width + width % 2, height + height % 2
        self._container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        rate = Fraction(fps).limit_denominator(1001)
        self.codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = self._container.add_stream(self.codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.codec_context.time_base = 1 / rate
        stream.codec_context.thread_count = 1
        stream.codec_context.gop_size = max(1, int(round(5 * fps)))
        if self.codec == "libx264":
            options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
            if platform.machine().lower() in ("x86_64", "amd64"):
                options["x264-params"] = "asm=SSE2"
            stream.codec_context.options = options
        else:
            stream.codec_context.options = {"qscale": "6"}
        self._stream = stream
        self._n = 0

    def write(self, bgr: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 BGR frame."""
        if bgr.shape[0] != self.height or bgr.shape[1] != self.width:
            bgr = cv2.copyMakeBorder(
                bgr, 0, self.height - bgr.shape[0], 0, self.width - bgr.shape[1], cv2.BORDER_REPLICATE
            )
        yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # BT.601 limited range, what players assume
        frame = self._av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = self._n
        self._n += 1
        self._container.mux(self._stream.encode(frame))

    def close(self, flush: bool = True) -> None:
        if flush:
            self._container.mux(self._stream.encode(None))
        self._container.close()

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(flush=exc_type is None)


@contextlib.contextmanager
def open_video(
    target: str | Path, width: int, height: int, fps: float, crf: int = 23
) -> Iterator[H264Writer]:
    """An atomically written video: the file appears at ``target`` only once fully written."""
    from tracker.fsutil import atomic_path

    with atomic_path(target) as tmp:
        with H264Writer(tmp, width, height, fps, crf) as writer:
            yield writer
