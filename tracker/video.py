"""Frame sources: a video file, a folder of frames, or a MOTChallenge sequence folder; decoding of images.

Every source streams frames one at a time (memory stays bounded whatever the length), skips frames by
``stride`` and stamps each frame with its time on the common clock (``(index - 1) / fps + offset``).

Untrusted pixels are sized before they are decoded: an image's header (read by Pillow, for the formats in
:data:`IMAGE_FORMATS` only) and a video's stream size must be within :data:`MAX_PIXELS`, so a small file that
claims an enormous image (a decompression bomb) is refused with one line instead of taking gigabytes. A
frame folder's images are all checked when it is opened (one format, one size). A frame that cannot be
decoded while streaming (a truncated video, a damaged image, a frame of another size) ends or skips the
stream; the pipeline compares the frames read with the count the source announced and says so.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from tracker.errors import InputError
from tracker.fsutil import check_name, inside

# FFmpeg's and OpenCV's own log lines ("moov atom not found", "Could not find decoder", "PNG input buffer is
# incomplete") would precede our one-line error or warning; we report failures ourselves (OPENCV_LOG_LEVEL,
# when set, still decides OpenCV's).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
from tracker.types import CameraInfo, Frame

if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
"""File suffixes read as images: frames of a folder, crops of a ReID data set."""
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "TIFF")
"""Image formats decoded (Pillow's names; a header is parsed by these plugins only)."""
MAX_PIXELS = 8192 * 8192
"""Largest image or video frame decoded (67 megapixels: 8K video is 33): about 200 MB as BGR."""
DEFAULT_FOLDER_FPS = 25.0
MAX_SEQUENCE_FRAMES = 10_000_000  # seqLength of a MOT sequence folder (about 4 days at 30 fps)
MAX_VIDEO_FRAMES = 1_000_000_000  # a container's frame count beyond this is taken as unknown


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
            shape = (self.info.height, self.info.width)
            for i in range(self._first_index(), last + 1, self.stride):
                path = self._images[i - 1]
                image = None if path is None else _decode_frame(path, shape)
                if path is not None and image is None:
                    continue  # damaged since it was opened: counted as not read (see the module docstring)
                yield Frame(self.camera, i, self.time_of(i), image)

    def _iter_video(self) -> Iterator[Frame]:
        cap = cv2.VideoCapture(str(self._video))
        shape = (self.info.height, self.info.width)
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
                if image.shape[:2] != shape or image.ndim != 3:
                    continue  # a frame of another size (a stream that changes resolution): not read
                yield Frame(self.camera, index, self.time_of(index), image)
        finally:
            cap.release()

    def read(self, index: int) -> np.ndarray | None:
        """Frame ``index`` (1-based) by random access; None when it is out of range, not on disk or cannot
        be decoded at the source's size."""
        shape = (self.info.height, self.info.width)
        if self._video is not None:
            cap = cv2.VideoCapture(str(self._video))
            try:
                if not _video_size_ok(cap):
                    return None
                cap.set(cv2.CAP_PROP_POS_FRAMES, index - 1)
                ok, image = cap.read()
            finally:
                cap.release()
            return image if ok and image.shape[:2] == shape else None
        images = self._images or []
        path = images[index - 1] if 1 <= index <= len(images) else None
        return None if path is None else _decode_frame(path, shape)

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


def image_header(data: bytes | Path, what: str = "image") -> tuple[str, int, int] | None:
    """``(format, width, height)`` from an image's header, without decoding its pixels; None when the bytes
    (or the regular file) are not an image of :data:`IMAGE_FORMATS`. InputError naming ``what`` when the
    header claims more pixels than :data:`MAX_PIXELS` (:func:`check_size`).

    The header is parsed by Pillow's plugins for those formats, called directly: ``PIL.Image.open`` may be
    replaced by a library (ultralytics patches it to install a HEIF plugin on an unknown file), and its own
    size check would hide the image's dimensions."""
    import io
    import warnings

    from PIL import Image

    if not isinstance(data, (bytes, bytearray, memoryview)) and not Path(data).is_file():
        return None  # not a regular file (a folder, a FIFO, a device): never opened
    Image.init()
    with io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else open(data, "rb") as fp:
        prefix = fp.read(16)
        for fmt in IMAGE_FORMATS:
            factory, accept = Image.OPEN.get(fmt, (None, None))
            accepted = accept(prefix) if accept is not None else factory is not None
            if factory is None or not accepted or isinstance(accepted, str):
                continue
            fp.seek(0)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    im = factory(fp, "")
                header = str(im.format), int(im.width), int(im.height)
                im.close()
            except (
                OSError,
                ValueError,
                SyntaxError,
                EOFError,
                IndexError,
                KeyError,
                TypeError,
                struct.error,
            ):
                return None
            check_size(header[1], header[2], what)
            return header
    return None


def _over_limit() -> str:
    return f"over the limit of {MAX_PIXELS / 1e6:.0f} megapixels an image may have (refused before decoding)"


def check_size(width: int, height: int, what: str) -> None:
    """InputError naming ``what`` when a ``width`` x ``height`` image is over :data:`MAX_PIXELS`."""
    if width * height > MAX_PIXELS:
        raise InputError(f"{what}: {width}x{height} pixels is {_over_limit()}")


def decode_image_bytes(data: bytes, what: str) -> np.ndarray:
    """``uint8 (H, W, 3)`` BGR image from encoded bytes (JPEG, PNG, BMP, WebP, TIFF), sized from its header
    first; InputError naming ``what`` when it is not an image or is over :data:`MAX_PIXELS`."""
    header = image_header(data, what)
    if header is None:
        raise InputError(f"{what}: not an image (JPEG, PNG, BMP, WebP or TIFF expected)")
    damaged = InputError(f"{what}: a damaged {header[0]} image (cannot be decoded)")
    if header[0] == "PNG" and not _png_intact(data):
        raise damaged
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise damaged
    return image


def _png_intact(data: bytes) -> bool:
    """Whether a PNG's chunks are all there up to ``IEND``, each with the right CRC. libpng writes its own
    complaint about a cut or corrupted PNG to stderr, beside the one-line error, so such data never reaches
    it (a chunk whose CRC is right but whose compressed pixels are not still would)."""
    import zlib

    view, pos = memoryview(data), 8
    while pos + 12 <= len(view):
        end = pos + 12 + int.from_bytes(view[pos : pos + 4], "big")
        if end > len(view) or zlib.crc32(view[pos + 4 : end - 4]) != int.from_bytes(
            view[end - 4 : end], "big"
        ):
            return False
        if view[pos + 4 : pos + 8] == b"IEND":
            return True
        pos = end
    return False


def _read_image(path: Path) -> np.ndarray:
    """A frame or crop file as ``uint8 (H, W, 3)`` BGR, sized from its header first; InputError naming the
    file when it is not a readable image or is too large (:func:`decode_image_bytes`)."""
    if not path.is_file():
        raise InputError(f"{path}: not a readable image (not a regular file)")
    return decode_image_bytes(path.read_bytes(), str(path))


def _decode_frame(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """A folder frame of the source's ``(height, width)``, or None when it cannot be decoded at that size."""
    try:
        image = _read_image(path)
    except (InputError, OSError):
        return None
    return image if image.shape[:2] == shape else None


def _video_size_ok(cap: cv2.VideoCapture) -> bool:
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    return w * h <= MAX_PIXELS


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _check_frames(images: list[Path | None], folder: Path) -> tuple[int, int] | None:
    """``(width, height)`` shared by every image present (None when there is none); InputError naming the
    first image that is not a readable image, is too large, or differs in size from the first."""
    first: tuple[Path, int, int] | None = None
    for path in images:
        if path is None:
            continue
        header = image_header(path, str(path))
        if header is None:
            raise InputError(f"{path}: not a readable image (JPEG, PNG, BMP, WebP or TIFF expected)")
        _, w, h = header
        if first is None:
            first = (path, w, h)
        elif (w, h) != first[1:]:
            raise InputError(
                f"{folder}: frames of different sizes ({first[0].name} is {first[1]}x{first[2]}, "
                f"{path.name} is {w}x{h}); a camera's frames must all have one size"
            )
    return None if first is None else first[1:]


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
        parser.read(folder / "seqinfo.ini", encoding="utf-8")
        return {k.lower(): v for k, v in parser["Sequence"].items()}
    except (configparser.Error, KeyError, UnicodeDecodeError):
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
        raise InputError(f"video.stride (--frame-stride): must be >= 1, got {stride}")
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if not (p.is_file() or p.is_dir()):
        raise InputError(f"{p}: not a regular file or folder")
    if name is None:
        derived = p.stem if p.is_file() else p.resolve().name
        camera = check_name(derived, f"{p}: camera name taken from the file name (set one with --names)")
    else:
        camera = check_name(name, "camera name")
    if p.is_dir():
        return _open_folder(p, camera, offset, stride)
    return _open_video(p, camera, offset, stride)


def _open_video(p: Path, camera: str, offset: float, stride: int) -> FrameSource:
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise InputError(f"{p}: not a readable video")
        check_size(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), str(p))
        ok, image = cap.read()
        if not ok or image is None:
            raise InputError(f"{p}: the video has no frames")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        total = int(count) if np.isfinite(count) and 0 < count <= MAX_VIDEO_FRAMES else None
    finally:
        cap.release()
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = DEFAULT_FOLDER_FPS
    h, w = image.shape[:2]
    info = CameraInfo(camera, str(p), w, h, float(fps), offset, total)
    return FrameSource(info, stride, _video=p)


def _open_folder(p: Path, camera: str, offset: float, stride: int) -> FrameSource:
    seq = read_seqinfo(p) if (p / "seqinfo.ini").is_file() else None
    img_dir = inside(p, seq.get("imdir", "img1"), what="the sequence folder") if seq else p
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
        if length > MAX_SEQUENCE_FRAMES:
            raise InputError(f"{p / 'seqinfo.ini'}: seqLength {length} is over {MAX_SEQUENCE_FRAMES} frames")
        if width < 0 or height < 0:
            raise InputError(f"{p / 'seqinfo.ini'}: imWidth and imHeight must not be negative")
        check_size(width, height, str(p / "seqinfo.ini"))
        if not (np.isfinite(fps) and 0 < fps <= 1000):
            raise InputError(f"{p / 'seqinfo.ini'}: frameRate must be in (0, 1000], got {fps}")
        images = _by_frame_number(images, length)
        size = _check_frames(images, img_dir)
        if size is not None and width and height and size != (width, height):
            raise InputError(
                f"{p / 'seqinfo.ini'}: says imWidth x imHeight = {width}x{height}, its frames are "
                f"{size[0]}x{size[1]}"
            )
        if size is not None:
            width, height = size
    else:
        fps, length = DEFAULT_FOLDER_FPS, len(images)
        width, height = _check_frames(images, p)
        _read_image(images[0])  # the first frame must decode, as a video's must
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
