"""The stage cache (tracker/cache.py): keys, fingerprints, the entry format (data only, hashed), pruning."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.cache import (
    FULL_HASH_BELOW,
    StageCache,
    camera_key,
    code_version,
    encode_entry,
    file_fingerprint,
    source_fingerprint,
)
from tracker.camera import CameraResult, PieceResult
from tracker.chunking import Chunk, ChunkTracks, plan_chunks
from tracker.config import PipelineConfig, override
from tracker.types import CameraInfo, Crop, Tracklet
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


def _tracklet(camera: str, track_id: int, rng, crops: int = 2, dim: int | None = 16) -> Tracklet:
    n = int(rng.integers(3, 9))
    frames = np.arange(1, n + 1) * 2
    boxes = np.c_[rng.uniform(0, 50, (n, 2)), rng.uniform(60, 120, (n, 2))].astype(np.float32)
    tr = Tracklet(
        camera, track_id, frames, frames / 10.0, boxes, rng.uniform(0, 1, n), global_id=track_id + 7
    )
    for k in range(crops):
        image = rng.integers(0, 255, (int(rng.integers(5, 30)), int(rng.integers(3, 20)), 3), dtype=np.uint8)
        box = rng.uniform(0, 100, 4).astype(np.float32)
        tr.crops.append(Crop(int(frames[k]), box, float(rng.uniform()), float(rng.uniform()), image))
    if dim:
        v = rng.normal(size=dim).astype(np.float32)
        tr.embedding = v / np.linalg.norm(v)
    return tr


def _camera_result(seed: int = 0) -> CameraResult:
    rng = np.random.default_rng(seed)
    tracklets = [
        _tracklet("cam 1", 1, rng),
        _tracklet("cam 1", 2, rng, crops=0, dim=None),
        _tracklet("cam 1", 5, rng),
    ]
    info = CameraInfo("cam 1", "/videos/cam 1.mp4", 640, 360, 12.5, -1.5, 300, 299)
    return CameraResult(info, tracklets, {"detector": "motion", "x": [1, 2]}, {"detect": 1.25, "track": 0.5})


def _assert_same_tracklets(a: list[Tracklet], b: list[Tracklet]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.camera, x.track_id, x.global_id) == (y.camera, y.track_id, y.global_id)
        for name in ("frames", "times", "boxes", "scores"):
            got, want = getattr(y, name), getattr(x, name)
            assert got.dtype == want.dtype and np.array_equal(got, want), name
        assert (x.embedding is None) == (y.embedding is None)
        if x.embedding is not None:
            assert y.embedding.dtype == np.float32 and np.array_equal(x.embedding, y.embedding)
        assert len(x.crops) == len(y.crops)
        for c, d in zip(x.crops, y.crops):
            assert (c.frame, c.score, c.quality) == (d.frame, d.score, d.quality)
            assert np.array_equal(c.box, d.box) and np.array_equal(c.image, d.image)


def test_camera_results_round_trip_exactly(tmp_path):
    cache = StageCache(tmp_path)
    path = cache.camera_path("cam 1/a", "0" * 20)
    assert path.parent == tmp_path / "cache" and path.name == f"cam_1_a-{'0' * 20}.safetensors"
    value = _camera_result()
    assert cache.load(path) is None
    cache.save(path, value)
    back = cache.load(path)
    assert isinstance(back, CameraResult) and back.info == value.info
    assert back.detector == value.detector and back.timings == value.timings and not back.cached
    _assert_same_tracklets(value.tracklets, back.tracklets)


def test_piece_results_round_trip_with_features(tmp_path):
    rng = np.random.default_rng(3)
    tracklets = [_tracklet("c", 1, rng, crops=3, dim=None), _tracklet("c", 2, rng, crops=0, dim=None)]
    features = [rng.normal(size=(3, 8)).astype(np.float32), None]
    piece = PieceResult(
        2, ChunkTracks(Chunk(41, 51, 101), tracklets, features), {"d": 1}, {"decode": 0.1}, 50
    )
    piece.pid, piece.peak_rss_mb = 4321, 123.5
    cache = StageCache(tmp_path)
    path = cache.chunk_path("c", "1" * 20, 41)
    cache.save(path, piece)
    back = cache.load(path)
    assert isinstance(back, PieceResult)
    assert (back.camera, back.frames_owned, back.pid, back.peak_rss_mb) == (2, 50, 4321, 123.5)
    assert back.tracks.chunk == Chunk(41, 51, 101) and back.detector == {"d": 1}
    _assert_same_tracklets(tracklets, back.tracks.tracklets)
    assert np.array_equal(back.tracks.features[0], features[0]) and back.tracks.features[1] is None
    whole = PieceResult(0, ChunkTracks(Chunk(1, 1, None), []), {}, {}, 0)
    cache.save(path, whole)
    assert cache.load(path).tracks.chunk.stop is None and cache.load(path).tracks.tracklets == []


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize(
    "damage", ["flip-pixel", "flip-header", "truncate", "empty", "text", "foreign", "old"]
)
def test_damaged_or_foreign_entries_are_recomputed_with_one_warning(tmp_path, caplog, damage):
    cache = StageCache(tmp_path)
    path = cache.camera_path("cam", "2" * 20)
    cache.save(path, _camera_result())
    data = bytearray(path.read_bytes())
    if damage == "flip-pixel":
        data[-5] ^= 0x01  # the last bytes are array data: crop pixels or embeddings
    elif damage == "flip-header":
        at = data.index(b"299", data.index(b"frames_processed"))  # in the JSON header: 299 -> 298
        data[at + 2] = ord("8")
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    elif damage == "text":
        data = bytearray(b"not a cache entry\n" * 10)
    elif damage == "foreign":  # a whole, valid entry of another key copied over this one
        other = cache.camera_path("cam", "3" * 20)
        cache.save(other, _camera_result(seed=1))
        data = bytearray(other.read_bytes())
    elif damage == "old":  # the layout of an older format
        assert b'format\\": 2' in data
        data = bytearray(bytes(data).replace(b'format\\": 2', b'format\\": 1'))
    path.write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        assert cache.load(path) is None
    (line,) = _warnings(caplog)
    assert str(path) in line and "recomputing" in line and "\n" not in line


class _Boom:
    """Unpickling this runs a command: what a planted cache entry would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_does_not_run(tmp_path, caplog):
    marker = tmp_path / "pwned"
    cache = StageCache(tmp_path)
    planted = pickle.dumps({"format": 1, "value": _Boom(marker)})
    new = cache.camera_path("cam", "4" * 20)
    old = new.with_suffix(".pkl")  # the former entry name
    for p in (new, old):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(planted)
    with caplog.at_level("WARNING"):
        assert cache.load(new) is None
    assert len(_warnings(caplog)) == 1
    assert not marker.exists()
    cache.prune("cam", keep=new)  # the old-format entry is removed unread
    assert not old.exists() and new.exists() and not marker.exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_bytes_load_as_none_never_raise(tmp_path, data):
    """Random bytes, and valid entries with random bytes changed, never raise and never decode as valid."""
    valid = encode_entry(_camera_result(), "x.safetensors")
    kind = data.draw(st.sampled_from(["random", "mutated", "spliced"]))
    if kind == "random":
        blob = data.draw(st.binary(max_size=2000))
    elif kind == "mutated":
        blob = bytearray(valid)
        for at in data.draw(st.lists(st.integers(0, len(valid) - 1), min_size=1, max_size=8)):
            blob[at] = (blob[at] + data.draw(st.integers(1, 255))) % 256
        blob = bytes(blob)
    else:
        cut = data.draw(st.integers(0, len(valid)))
        blob = valid[:cut] + data.draw(st.binary(max_size=64))
    if blob == valid:
        return
    path = tmp_path / "cache" / "x.safetensors"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(blob)
    assert StageCache.load(path) is None


def test_failed_write_leaves_no_entry(tmp_path):
    cache = StageCache(tmp_path)
    path = cache.camera_path("cam", "1" * 20)
    with pytest.raises(TypeError):
        cache.save(path, {"not": "a result"})
    assert not path.exists() and (not path.parent.exists() or list(path.parent.iterdir()) == [])


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
        cache.save(p, _camera_result())
    cache.prune("cam1", keep)
    assert keep.exists() and not stale.exists() and not chunk.exists()
    assert all(p.exists() for p in other)
