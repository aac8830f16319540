from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from tracker.cache import (
    FULL_HASH_BELOW,
    StageCache,
    camera_key,
    code_version,
    file_fingerprint,
    source_fingerprint,
)
from tracker.chunking import plan_chunks
from tracker.config import PipelineConfig, override
from tracker.video import H264Writer, open_source

BASE = override(PipelineConfig(), **{"detect.detector": "motion", "reid.embedder": "histogram"})


def _video(path, shade: int = 0, n: int = 8):
    with H264Writer(path, 64, 48, 10.0, crf=18) as w:
        for i in range(n):
            w.write(np.full((48, 64, 3), (i * 20 + shade) % 255, np.uint8))
    return path


def _rewrite_same_size_and_mtime(path, offset: int) -> None:
    """Flip one byte in place and put the modification time back: what size + mtime checks cannot see."""
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns


def test_fingerprint_sees_content_not_just_size_and_mtime(tmp_path):
    small = tmp_path / "small.bin"
    small.write_bytes(bytes(range(256)) * 100)
    before = file_fingerprint(small)
    _rewrite_same_size_and_mtime(small, 12_000)
    assert file_fingerprint(small) != before

    big = tmp_path / "big.bin"
    big.write_bytes(np.random.default_rng(0).integers(0, 255, FULL_HASH_BELOW + 100_000, np.uint8).tobytes())
    first = file_fingerprint(big)
    for offset in (10, big.stat().st_size - 10):  # head and tail blocks
        _rewrite_same_size_and_mtime(big, offset)
        assert file_fingerprint(big) != first
        _rewrite_same_size_and_mtime(big, offset)
        assert file_fingerprint(big) == first
    with open(big, "ab") as f:
        f.write(b"more footage")
    assert file_fingerprint(big) != first


def test_folder_fingerprint_covers_every_file(tmp_path):
    folder = tmp_path / "seq"
    (folder / "img1").mkdir(parents=True)
    for i in range(3):
        (folder / "img1" / f"{i + 1:06d}.jpg").write_bytes(bytes([i]) * 50)
    before = source_fingerprint(folder)
    _rewrite_same_size_and_mtime(folder / "img1" / "000002.jpg", 20)
    assert source_fingerprint(folder) != before
    (folder / "img1" / "000003.jpg").rename(folder / "img1" / "000004.jpg")
    assert source_fingerprint(folder) != before


@pytest.fixture
def video(tmp_path):
    return _video(tmp_path / "cam.mp4")


def test_key_follows_what_changes_a_cameras_result(video, tmp_path):
    src = open_source(video)
    key = camera_key(src, None, BASE)
    assert key == camera_key(open_source(video), None, BASE) and len(key) == 20
    relevant = [
        {"detect.motion.var_threshold": 30.0},
        {"detect.detector": "hog"},
        {"track.min_hits": 4},
        {"track.max_crops": 4},
        {"reid.embedder": "none"},
    ]
    for change in relevant:
        assert camera_key(src, None, override(BASE, **change)) != key, change
    irrelevant = [
        {"output.annotated_video": False},
        {"associate.enabled": False},
        {"execution.workers": 7},
        {"execution.executor": "ray"},
        {"execution.force": True},
        {"execution.batch_cameras": 4},
    ]
    for change in irrelevant:
        assert camera_key(src, None, override(BASE, **change)) == key, change
    assert camera_key(open_source(video, stride=2), None, BASE) != key
    assert camera_key(open_source(video, name="other"), None, BASE) != key
    assert camera_key(open_source(video, offset=1.5), None, BASE) != key
    chunks = plan_chunks(1000, 10.0, 20, 2)
    assert camera_key(src, None, BASE, chunks) != key
    assert camera_key(src, None, BASE, plan_chunks(8, 10.0, 20, 2)) == key  # one whole chunk: as unchunked

    dets = tmp_path / "det.txt"
    dets.write_text("1,-1,1,1,5,9,0.9\n")
    with_dets = camera_key(src, str(dets), BASE)
    assert with_dets != key
    dets.write_text("1,-1,1,1,5,9,0.8\n")
    assert camera_key(src, str(dets), BASE) != with_dets


def test_key_changes_when_the_video_is_replaced_in_place(video):
    key = camera_key(open_source(video), None, BASE)
    _rewrite_same_size_and_mtime(video, video.stat().st_size // 2)
    assert camera_key(open_source(video), None, BASE) != key


def test_code_version_names_the_package_version():
    assert code_version().startswith("0.") and code_version() == code_version()


def test_entries_round_trip_and_damaged_ones_are_ignored(tmp_path):
    cache = StageCache(tmp_path)
    path = cache.camera_path("cam 1/a", "0" * 20)
    assert path.parent == tmp_path / "cache" and path.name == f"cam_1_a-{'0' * 20}.pkl"
    value = {"boxes": np.arange(8, dtype=np.float32).reshape(2, 4), "name": "x"}
    assert cache.load(path) is None
    cache.save(path, value)
    back = cache.load(path)
    assert back["name"] == "x" and np.array_equal(back["boxes"], value["boxes"])
    path.write_bytes(b"not a pickle")
    assert cache.load(path) is None


def test_failed_write_leaves_no_entry(tmp_path):
    cache = StageCache(tmp_path)
    path = cache.camera_path("cam", "1" * 20)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        cache.save(path, lambda: None)  # cannot be pickled
    assert not path.exists() and list(path.parent.iterdir()) == []


def test_prune_keeps_the_current_entry_and_other_cameras(tmp_path):
    cache = StageCache(tmp_path)
    keep = cache.camera_path("cam1", "a" * 20)
    stale = cache.camera_path("cam1", "b" * 20)
    chunk = cache.chunk_path("cam1", "a" * 20, 51)
    other = [
        cache.camera_path("cam10", "c" * 20),
        cache.camera_path("cam1-2", "d" * 20),
        cache.chunk_path("cam10", "c" * 20, 1),
    ]
    for p in [keep, stale, chunk, *other]:
        cache.save(p, 1)
    cache.prune("cam1", keep)
    assert keep.exists() and not stale.exists() and not chunk.exists()
    assert all(p.exists() for p in other)
