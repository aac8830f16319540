"""The per-camera stage cache that makes runs resumable.

A camera's stage result (detection + tracking + crop embeddings: a ``CameraResult``) is pickled to
``RUN_DIR/cache/<camera>-<key>.pkl`` as soon as the camera is done, written atomically (temporary file, then
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
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import pickle
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from tracker._version import __version__
from tracker.fsutil import atomic_path

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the pickled layout changes
# What unpickling a damaged, truncated or stale (classes since renamed) entry raises.
UNPICKLING_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    AttributeError,
    ImportError,
    IndexError,
    TypeError,
    ValueError,
)
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
    """Fingerprint of a camera input: a video file, or every file below a frame / MOT sequence folder."""
    p = Path(path)
    if p.is_file():
        return file_fingerprint(p)
    digest = hashlib.sha256(b"folder;")
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        rel = f.relative_to(p).as_posix()
        digest.update(f"{rel}={file_fingerprint(f, FOLDER_BLOCK, 2 * FOLDER_BLOCK)};".encode())
    return digest.hexdigest()


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


class StageCache:
    """Entries under ``RUN_DIR/cache``: ``<camera>-<key>.pkl`` per camera, and
    ``chunks/<camera>-<key>-<start>.pkl`` per finished time chunk of a camera that is not yet whole."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir) / "cache"

    def camera_path(self, camera: str, key: str) -> Path:
        return self.dir / f"{_safe(camera)}-{key}.pkl"

    def chunk_path(self, camera: str, key: str, start: int) -> Path:
        return self.dir / "chunks" / f"{_safe(camera)}-{key}-{start}.pkl"

    @staticmethod
    def load(path: Path) -> Any | None:
        """The object stored at ``path``, or None when there is none or it cannot be read back."""
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as f:
                entry = pickle.load(f)
        except UNPICKLING_ERRORS as exc:  # a foreign or damaged file is recomputed
            log.warning("cache: ignoring %s (%s: %s)", path, type(exc).__name__, exc)
            return None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            return None
        return entry["value"]

    @staticmethod
    def save(path: Path, value: Any) -> None:
        """Pickle ``value`` to ``path`` atomically: readers see the old entry, none, or the new one whole."""
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            pickle.dump({"format": FORMAT, "value": value}, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())

    def prune(self, camera: str, keep: Path) -> None:
        """Remove the camera's other entries (stale keys) and its chunk entries, keeping ``keep``."""
        pattern = re.compile(rf"^{re.escape(_safe(camera))}-[0-9a-f]{{{KEY_CHARS}}}(-\d+)?\.pkl$")
        for folder in (self.dir, self.dir / "chunks"):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if p != keep and pattern.match(p.name):
                    p.unlink(missing_ok=True)
