"""The per-camera stage cache that makes runs resumable.

A camera's stage result (detection + tracking + crop embeddings: a ``CameraResult``) is written to
``RUN_DIR/cache/<camera>-<key>.safetensors`` as soon as the camera is done, atomically (temporary file, fsync,
rename), so a run killed at any moment leaves only whole entries. Re-running the same command finds the entry
and skips the camera; anything that could change the result changes ``key``:

* the input's content fingerprint (:func:`source_fingerprint`: size plus a hash of the head and tail blocks of
  a video, the whole file when small; every file of a frame folder). Size and mtime alone are not enough: a
  re-encoded or copied-over file keeps both often enough;
* the MOT detection file given instead of a detector, and the detector / MGN weights files used;
* the config sections the camera stage reads: ``detect``, ``track``, ``reid``, the stride, the camera's name
  and time offset, and the time-chunk plan (``execution.chunk_seconds`` / ``chunk_overlap``);
* the code version: the package version, a hash of the stage's source files and the versions of the
  libraries whose numerics it depends on.

Settings that cannot change a camera's result (annotated video, association, executor, workers) are not in
the key. Long videos cut into time chunks also keep each finished chunk under ``cache/chunks/`` until the
camera is whole, so a killed run loses at most the chunks in flight.

An entry is data only, never code: a safetensors file (a JSON header and raw arrays of fixed dtypes) holding
the result's arrays (tracklet rows, crop pixels, embeddings, features) and, in the header's metadata, its
scalars as JSON, the entry's own file name (an entry copied under another key is foreign) and a sha256 over
all of it. A run directory may come from someone else, so an entry that is damaged, foreign, of another
format or inconsistent is not used: the camera is recomputed, with one warning line.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from tracker._version import __version__
from tracker.camera import CameraResult, PieceResult
from tracker.chunking import Chunk, ChunkTracks
from tracker.fsutil import atomic_path, entry
from tracker.types import CameraInfo, Crop, Tracklet

log = logging.getLogger(__name__)

FORMAT = 2  # 1: pickles (never read: unpickling runs code); 2: safetensors + JSON, hashed
SUFFIX = ".safetensors"
MAX_HEADER = 64 << 20  # bytes of an entry's JSON header
KEY_CHARS = 20  # hex characters of the sha256 kept in file names
BLOCK = 1 << 20  # head / tail block hashed for large files
FULL_HASH_BELOW = 4 << 20  # files up to this size are hashed whole
FOLDER_BLOCK = 1 << 13  # head / tail block per file of a frame folder (thousands of files)
# Modules whose code decides a camera's stage result; a change to any of them invalidates the cache.
STAGE_MODULES = (
    "types",
    "config",
    "geometry",
    "video",
    "mot",
    "detect",
    "track",
    "camera",
    "chunking",
    "cache",
)
NUMERIC_PACKAGES = ("numpy", "opencv-python", "torch", "torchvision", "ultralytics", "filterpy", "lap")


def file_fingerprint(path: str | Path, block: int = BLOCK, full_below: int = FULL_HASH_BELOW) -> str:
    """Hex sha256 of a file's size and content: the whole file up to ``full_below`` bytes, else its first and
    last ``block`` bytes (a change confined to the middle of a large file goes unseen; re-encodes, truncation,
    appended footage and replaced files do not)."""
    p = Path(path)
    size = p.stat().st_size
    digest = hashlib.sha256(f"size={size};".encode())
    with open(p, "rb") as f:
        if size <= full_below:
            for chunk in iter(lambda: f.read(BLOCK), b""):
                digest.update(chunk)
        else:
            digest.update(f.read(block))
            f.seek(size - block)
            digest.update(f.read(block))
    return digest.hexdigest()


def source_fingerprint(path: str | Path) -> str:
    """Fingerprint of a camera input: a video file, or every file below a frame / MOT sequence folder.

    Remembered in this process for files whose path, inode, size, modification and change times are unchanged
    (the cache key, run.json and the review UI's source check each ask; writing a file changes its change
    time, which, unlike the modification time, cannot be set back)."""
    p = Path(path)
    if p.is_file():
        return _memo(p, lambda: file_fingerprint(p))
    files = sorted(q for q in p.rglob("*") if q.is_file())

    def compute() -> str:
        digest = hashlib.sha256(b"folder;")
        for f in files:
            rel = f.relative_to(p).as_posix()
            digest.update(f"{rel}={file_fingerprint(f, FOLDER_BLOCK, 2 * FOLDER_BLOCK)};".encode())
        return digest.hexdigest()

    return _memo(p, compute, files)


_FINGERPRINTS: dict[tuple, str] = {}


def _memo(path: Path, compute, files: list[Path] | None = None) -> str:
    def sig(f: Path) -> tuple:
        st = f.stat()
        return (str(f), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    key = (str(path.resolve()), tuple(sig(f) for f in (files if files is not None else [path])))
    if key not in _FINGERPRINTS:
        if len(_FINGERPRINTS) > 256:
            _FINGERPRINTS.clear()
        _FINGERPRINTS[key] = compute()
    return _FINGERPRINTS[key]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version + hash of the camera stage's source files + versions of numeric libraries."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"multicam-tracker={__version__};".encode())
    files = [root / f"{m}.py" for m in STAGE_MODULES] + sorted((root / "reid").glob("*.py"))
    for f in files:
        if f.is_file():
            digest.update(f.name.encode() + b"=" + hashlib.sha256(f.read_bytes()).digest())
    for name in NUMERIC_PACKAGES:
        try:
            digest.update(f"{name}={metadata.version(name)};".encode())
        except metadata.PackageNotFoundError:
            continue
    return f"{__version__}+{digest.hexdigest()[:12]}"


def _weights_fingerprints(cfg: Any, detections: str | None) -> dict[str, str | None]:
    """Fingerprints of the model files a resolved config uses (None where the file is not on disk)."""
    out: dict[str, str | None] = {}
    if detections is None and cfg.detect.detector == "yolo":
        out["detector"] = _fingerprint_if_there(cfg.detect.weights)
    if cfg.reid.embedder not in ("none", "histogram"):
        out["reid"] = _fingerprint_if_there(cfg.reid.weights)
    return out


def _fingerprint_if_there(path: str | None) -> str | None:
    return source_fingerprint(path) if path and Path(path).exists() else None


def camera_key(source: Any, detections: str | None, cfg: Any, chunk_plan: list | None = None) -> str:
    """The cache key of one camera's stage result (``KEY_CHARS`` hex characters).

    ``source``: the camera's ``FrameSource``; ``detections``: its MOT detection file or None; ``cfg``: the
    resolved ``PipelineConfig`` (concrete detector and embedder, see :func:`tracker.pipeline.resolve_config`);
    ``chunk_plan``: the ``Chunk`` list the camera is processed in (None or one chunk:
    whole).
    """
    info = source.info
    plan = [dataclasses.astuple(c) for c in chunk_plan] if chunk_plan and len(chunk_plan) > 1 else None
    parts = {
        "format": FORMAT,
        "code": code_version(),
        "source": source_fingerprint(info.source),
        "detections": file_fingerprint(detections) if detections else None,
        "weights": _weights_fingerprints(cfg, detections),
        "camera": info.name,
        "offset": info.offset,
        "stride": source.stride,
        "detect": {k: v for k, v in dataclasses.asdict(cfg.detect).items() if k != "detections"},
        "track": dataclasses.asdict(cfg.track),
        "reid": dataclasses.asdict(cfg.reid),
        "chunks": plan,
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_CHARS]


def _safe(name: str) -> str:
    """A camera name made safe for a file name (the key, which includes the real name, keeps names apart)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


class DamagedEntry(ValueError):
    """A cache entry that cannot be used: damaged, foreign, of another format or inconsistent."""


class StageCache:
    """Entries under ``RUN_DIR/cache``: ``<camera>-<key>.safetensors`` per camera (a ``CameraResult``), and
    ``chunks/<camera>-<key>-<start>.safetensors`` per finished time chunk of a camera that is not yet whole
    (a ``PieceResult``)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / "cache"

    def camera_path(self, camera: str, key: str) -> Path:
        return entry(self.run_dir, "cache", f"{_safe(camera)}-{key}{SUFFIX}")

    def chunk_path(self, camera: str, key: str, start: int) -> Path:
        return entry(self.run_dir, "cache", "chunks", f"{_safe(camera)}-{key}-{start}{SUFFIX}")

    @staticmethod
    def load(path: Path) -> CameraResult | PieceResult | None:
        """The result stored at ``path``; None when there is none, or (with one warning line) when it cannot
        be used and must be recomputed."""
        if not path.is_file():
            return None
        try:
            if path.is_symlink():  # an entry is a file the run wrote, never a link to something else
                raise DamagedEntry("a symbolic link")
            return decode_entry(path.read_bytes(), path.name)
        except (DamagedEntry, OSError) as exc:
            log.warning("cache: %s is not usable (%s); recomputing it", path, exc)
            return None

    @staticmethod
    def save(path: Path, value: CameraResult | PieceResult) -> None:
        """Write ``value`` to ``path`` atomically and durably: readers see the old entry, none, or the new one
        whole."""
        data = encode_entry(value, path.name)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def prune(self, camera: str, keep: Path) -> None:
        """Remove the camera's other entries (stale keys, the old pickle format) and its chunk entries,
        keeping ``keep``."""
        pattern = re.compile(
            rf"^{re.escape(_safe(camera))}-[0-9a-f]{{{KEY_CHARS}}}(-\d+)?(\.pkl|{re.escape(SUFFIX)})$"
        )
        for folder in (self.dir, self.dir / "chunks"):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if p != keep and pattern.match(p.name):
                    p.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------- entry format


def encode_entry(value: CameraResult | PieceResult, name: str) -> bytes:
    """The safetensors bytes of a camera or chunk result, stored as file ``name``."""
    from safetensors.numpy import save

    if isinstance(value, CameraResult):
        tracklets, features = value.tracklets, None
        head: dict[str, Any] = {
            "kind": "camera",
            "info": _info_fields(value.info),
            "detector": value.detector,
            "timings": value.timings,
        }
    elif isinstance(value, PieceResult):
        tracklets, features = value.tracks.tracklets, value.tracks.features
        head = {
            "kind": "piece",
            "camera": value.camera,
            "chunk": dataclasses.astuple(value.tracks.chunk),
            "detector": value.detector,
            "timings": value.timings,
            "frames_owned": value.frames_owned,
            "pid": value.pid,
            "peak_rss_mb": value.peak_rss_mb,
        }
    else:
        raise TypeError(f"cannot cache a {type(value).__name__}")
    arrays, head["tracklets"] = _tracklet_arrays(tracklets, features)
    head.update(format=FORMAT, name=name)
    text = json.dumps(head, sort_keys=True)
    return save(arrays, metadata={"entry": text, "sha256": _content_hash(text, arrays)})


def decode_entry(data: bytes, name: str) -> CameraResult | PieceResult:
    """The result in safetensors ``data`` that was stored as file ``name``; DamagedEntry when it cannot be
    used (not a safetensors file, another format, another entry's, a hash mismatch, inconsistent arrays)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    if len(data) < 8 or int.from_bytes(data[:8], "little") > min(MAX_HEADER, len(data) - 8):
        raise DamagedEntry("not a safetensors file")
    try:
        meta = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")]).get("__metadata__") or {}
        arrays = load(data)
        text, digest = meta["entry"], meta["sha256"]
        head = json.loads(text)
    except (SafetensorError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DamagedEntry(f"not a cache entry: {type(exc).__name__}") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise DamagedEntry(f"format {head.get('format') if isinstance(head, dict) else '?'}, not {FORMAT}")
    if head.get("name") != name:
        raise DamagedEntry(f"it is the entry {head.get('name')!r}, copied here")
    if _content_hash(text, arrays) != digest:
        raise DamagedEntry("content hash mismatch")
    try:
        tracklets, features = _tracklets_from(arrays, head["tracklets"])
        if head["kind"] == "camera":
            return CameraResult(
                _info(head["info"]), tracklets, _dict(head["detector"]), _floats(head["timings"])
            )
        if head["kind"] == "piece":
            chunk = Chunk(*(_int_or_none(v) for v in head["chunk"]))
            return PieceResult(
                _int(head["camera"]),
                ChunkTracks(chunk, tracklets, features),
                _dict(head["detector"]),
                _floats(head["timings"]),
                _int(head["frames_owned"]),
                _int(head["pid"]),
                float(head["peak_rss_mb"]),
            )
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        raise DamagedEntry(f"inconsistent entry ({type(exc).__name__}: {exc})") from None
    raise DamagedEntry(f"unknown kind {head.get('kind')!r}")


def _content_hash(text: str, arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the JSON header and every array's name, dtype, shape and bytes (in name order)."""
    digest = hashlib.sha256(text.encode())
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        digest.update(f";{key}:{a.dtype.str}:{a.shape};".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


# Every array of an entry with its dtype and trailing shape; row counts are checked against the header.
_ARRAYS = {
    "track_id": (np.int64, ()),
    "global_id": (np.int64, ()),
    "rows": (np.int64, ()),  # per tracklet: its number of frames
    "frames": (np.int64, ()),
    "times": (np.float64, ()),
    "boxes": (np.float32, (4,)),
    "scores": (np.float32, ()),
    "embedding_dim": (np.int64, ()),  # per tracklet: 0 when it has no embedding
    "embedding": (np.float32, ()),
    "crop_count": (np.int64, ()),
    "crop_frame": (np.int64, ()),
    "crop_box": (np.float32, (4,)),
    "crop_score": (np.float64, ()),
    "crop_quality": (np.float64, ()),
    "crop_shape": (np.int64, (3,)),
    "crop_pixels": (np.uint8, ()),
    "feature_rows": (np.int64, ()),  # per tracklet: -1 when it has no features
    "features": (np.float32, None),  # (R, D)
}


def _tracklet_arrays(
    tracklets: list[Tracklet], features: list[np.ndarray | None] | None
) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of a tracklet list (and per-tracklet crop features), and the header fields they need."""
    crops = [c for t in tracklets for c in t.crops]
    for c in crops:
        if c.image.dtype != np.uint8 or c.image.ndim != 3:
            raise ValueError(f"a crop must be a uint8 (h, w, c) image, got {c.image.dtype} {c.image.shape}")
    feats = features if features is not None else [None] * len(tracklets)
    present = [np.asarray(f, np.float32) for f in feats if f is not None]
    dim = int(present[0].shape[1]) if present else 0
    arrays = {
        "track_id": np.array([t.track_id for t in tracklets], np.int64),
        "global_id": np.array([t.global_id for t in tracklets], np.int64),
        "rows": np.array([len(t) for t in tracklets], np.int64),
        "frames": _cat([t.frames for t in tracklets], np.int64, ()),
        "times": _cat([t.times for t in tracklets], np.float64, ()),
        "boxes": _cat([t.boxes for t in tracklets], np.float32, (4,)),
        "scores": _cat([t.scores for t in tracklets], np.float32, ()),
        "embedding_dim": np.array(
            [0 if t.embedding is None else t.embedding.size for t in tracklets], np.int64
        ),
        "embedding": _cat(
            [t.embedding.ravel() for t in tracklets if t.embedding is not None], np.float32, ()
        ),
        "crop_count": np.array([len(t.crops) for t in tracklets], np.int64),
        "crop_frame": np.array([c.frame for c in crops], np.int64),
        "crop_box": np.array([np.asarray(c.box, np.float32) for c in crops], np.float32).reshape(-1, 4),
        "crop_score": np.array([c.score for c in crops], np.float64),
        "crop_quality": np.array([c.quality for c in crops], np.float64),
        "crop_shape": np.array([c.image.shape for c in crops], np.int64).reshape(-1, 3),
        "crop_pixels": _cat([c.image.ravel() for c in crops], np.uint8, ()),
        "feature_rows": np.array([-1 if f is None else len(f) for f in feats], np.int64),
        "features": np.concatenate(present).astype(np.float32) if present else np.zeros((0, 0), np.float32),
    }
    return arrays, {"cameras": [t.camera for t in tracklets], "feature_dim": dim}


def _cat(parts: list[np.ndarray], dtype, tail: tuple[int, ...]) -> np.ndarray:
    if not parts:
        return np.zeros((0, *tail), dtype)
    return np.concatenate([np.asarray(p, dtype).reshape(-1, *tail) for p in parts]).astype(dtype, copy=False)


def _tracklets_from(arrays: dict[str, np.ndarray], head: dict) -> tuple[list[Tracklet], list]:
    """Tracklets (and per-tracklet features) back from their arrays; ValueError when they do not fit."""
    if set(arrays) != set(_ARRAYS):
        raise ValueError(f"arrays {sorted(set(arrays) ^ set(_ARRAYS))} missing or unexpected")
    for key, (dtype, tail) in _ARRAYS.items():
        a = arrays[key]
        if a.dtype != dtype or (tail is not None and a.shape[1:] != tail) or (tail is None and a.ndim != 2):
            raise ValueError(f"array {key} is {a.dtype} {a.shape}")
    cameras = head["cameras"]
    n = len(cameras)
    if not all(isinstance(c, str) for c in cameras):
        raise ValueError("camera names must be text")
    per = ("track_id", "global_id", "rows", "embedding_dim", "crop_count", "feature_rows")
    if any(len(arrays[k]) != n for k in per):
        raise ValueError("per-tracklet arrays of different lengths")
    rows, dims, counts = arrays["rows"], arrays["embedding_dim"], arrays["crop_count"]
    feat_rows, shapes = arrays["feature_rows"], arrays["crop_shape"]
    if (
        (rows < 0).any()
        or (dims < 0).any()
        or (counts < 0).any()
        or (feat_rows < -1).any()
        or (shapes < 0).any()
    ):
        raise ValueError("negative counts")
    total = int(rows.sum())
    if any(len(arrays[k]) != total for k in ("frames", "times", "boxes", "scores")):
        raise ValueError("row arrays do not match the tracklets' lengths")
    ncrops = int(counts.sum())
    if any(
        len(arrays[k]) != ncrops
        for k in ("crop_frame", "crop_box", "crop_score", "crop_quality", "crop_shape")
    ):
        raise ValueError("crop arrays do not match the crop counts")
    if int(shapes.prod(axis=1).sum()) != len(arrays["crop_pixels"]) or int(dims.sum()) != len(
        arrays["embedding"]
    ):
        raise ValueError("crop pixels or embeddings do not match their sizes")
    feats = arrays["features"]
    if int(feat_rows[feat_rows > 0].sum()) != len(feats) or (
        len(feats) and feats.shape[1] != head["feature_dim"]
    ):
        raise ValueError("features do not match their rows")
    row_at = np.r_[0, np.cumsum(rows)]
    crop_at = np.r_[0, np.cumsum(counts)]
    emb_at = np.r_[0, np.cumsum(dims)]
    pix_at = np.r_[0, np.cumsum(shapes.prod(axis=1))]
    feat_at = np.r_[0, np.cumsum(np.maximum(feat_rows, 0))]
    tracklets, features = [], []
    for i in range(n):
        r = slice(row_at[i], row_at[i + 1])
        crops = [
            Crop(
                int(arrays["crop_frame"][j]),
                arrays["crop_box"][j].copy(),
                float(arrays["crop_score"][j]),
                float(arrays["crop_quality"][j]),
                arrays["crop_pixels"][pix_at[j] : pix_at[j + 1]].reshape(shapes[j]).copy(),
            )
            for j in range(crop_at[i], crop_at[i + 1])
        ]
        embedding = arrays["embedding"][emb_at[i] : emb_at[i + 1]].copy() if dims[i] else None
        tracklets.append(
            Tracklet(
                cameras[i],
                int(arrays["track_id"][i]),
                arrays["frames"][r].copy(),
                arrays["times"][r].copy(),
                arrays["boxes"][r].copy(),
                arrays["scores"][r].copy(),
                crops,
                embedding,
                int(arrays["global_id"][i]),
            )
        )
        features.append(None if feat_rows[i] < 0 else feats[feat_at[i] : feat_at[i + 1]].copy())
    return tracklets, features


def _info_fields(info: CameraInfo) -> dict:
    out = dataclasses.asdict(info)
    out.pop("homography")  # set by the pipeline from the run's calibration, never cached
    return out


def _info(d: dict) -> CameraInfo:
    if set(d) != {f.name for f in dataclasses.fields(CameraInfo)} - {"homography"}:
        raise ValueError(f"camera info fields {sorted(d)}")
    return CameraInfo(
        str(d["name"]),
        str(d["source"]),
        _int(d["width"]),
        _int(d["height"]),
        float(d["fps"]),
        float(d["offset"]),
        _int_or_none(d["frames_total"]),
        _int(d["frames_processed"]),
    )


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"expected an integer, got {v!r}")
    return v


def _int_or_none(v: Any) -> int | None:
    return None if v is None else _int(v)


def _floats(d: Any) -> dict[str, float]:
    if not isinstance(d, dict):
        raise TypeError("timings must be a mapping")
    return {str(k): float(v) for k, v in d.items()}


def _dict(d: Any) -> dict:
    if not isinstance(d, dict):
        raise TypeError("detector info must be a mapping")
    return d
