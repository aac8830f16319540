from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from tracker.cache import StageCache, camera_key
from tracker.chunking import WHOLE, Chunk, ChunkTracks, plan_chunks, stitch
from tracker.config import PipelineConfig, override
from tracker.evaluate import evaluate_run
from tracker.pipeline import resolve_config, run
from tracker.synthetic.render import render_scene
from tracker.types import Crop, Tracklet
from tracker.video import open_source

BASE = override(
    PipelineConfig(),
    **{
        "detect.detector": "motion",
        "reid.embedder": "histogram",
        "output.annotated_video": False,
        "execution.workers": 1,
    },
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("chunk-scene")
    render_scene(d, cameras=2, people=4, seconds=6, seed=1, width=320, height=180, progress=False)
    return d


def _run(scene, out, cfg):
    cfg = override(cfg, **{"associate.calibration": str(scene / "scene.json")})
    return run([scene / "cam1.mp4", scene / "cam2.mp4"], out, cfg, progress=False)


# ------------------------------------------------------------------------------------------- planning


def test_plan_chunks_cover_every_frame_once_with_lead_in():
    chunks = plan_chunks(1000, 25.0, chunk_seconds=10, overlap_seconds=2)
    assert len(chunks) == 4
    assert chunks[0] == Chunk(1, 1, 251) and chunks[-1].stop is None
    for a, b in itertools.pairwise(chunks):
        assert a.stop == b.own_start  # owned ranges tile the video
        assert b.start == b.own_start - 50  # 2 s of lead-in at 25 fps


@pytest.mark.parametrize(
    "total, fps, seconds", [(1000, 25.0, 0), (None, 25.0, 10), (300, 25.0, 10), (0, 25.0, 1)]
)
def test_plan_chunks_whole_video_when_not_worth_cutting(total, fps, seconds):
    assert plan_chunks(total, fps, seconds, 2) == [WHOLE]


def test_window_yields_exactly_the_frames_of_the_whole_source_in_range(scene, tmp_path):
    whole = open_source(scene / "cam1.mp4", stride=2)
    frames = {f.index: f for f in whole}
    part = list(whole.window(30, 45))
    assert [f.index for f in part] == [i for i in sorted(frames) if 30 <= i < 45]
    for f in part:
        assert np.array_equal(f.image, frames[f.index].image) and f.time == frames[f.index].time
    assert len(whole.window(30, 45)) == len(part)

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(7):
        cv2.imwrite(str(folder / f"{i:06d}.png"), np.full((8, 8, 3), i * 30, np.uint8))
    src = open_source(folder, stride=3).window(2, 7)
    assert [f.index for f in src] == [4] and len(src) == 1
    assert [f.index for f in open_source(folder, stride=3).window(4)] == [4, 7]


# ------------------------------------------------------------------------------------------ stitching


def _track(tid: int, first: int, last: int, x0: float, step: float = 1.0, camera: str = "cam") -> Tracklet:
    frames = np.arange(first, last + 1)
    x = x0 + step * (frames - first)
    boxes = np.c_[x, np.full_like(x, 10.0), x + 20, np.full_like(x, 70.0)]
    crops = [
        Crop(int(f), boxes[i], 0.9, 0.1 + 0.01 * i, np.zeros((60, 20, 3), np.uint8))
        for i, f in enumerate(frames)
        if i % 5 == 0
    ]
    return Tracklet(camera, tid, frames, frames / 10.0, boxes, np.full(len(frames), 0.9), crops=crops)


def _feats(t: Tracklet, value: float) -> np.ndarray:
    return np.full((len(t.crops), 4), value, np.float32)


def _parts():
    a = Chunk(1, 1, 50)
    b = Chunk(40, 50, None)
    x_a, z_a = _track(1, 10, 49, 100.0), _track(2, 1, 20, 300.0)
    x_b = _track(3, 42, 80, 132.0)  # the same walker as x_a, found again in the lead-in
    ghost = _track(1, 40, 47, 500.0)  # seen only in the lead-in: the earlier chunk speaks for those frames
    y_b = _track(2, 60, 90, 10.0)
    part_a = ChunkTracks(a, [x_a, z_a], [_feats(x_a, 1.0), _feats(z_a, 2.0)])
    part_b = ChunkTracks(b, [ghost, y_b, x_b], [_feats(ghost, 3.0), _feats(y_b, 4.0), _feats(x_b, 5.0)])
    return part_a, part_b


def test_stitch_joins_tracks_across_the_border_and_renumbers():
    part_a, part_b = _parts()
    out = stitch([part_b, part_a], max_crops=4, min_length=5, max_gap=10)  # any order
    assert out.chunk == WHOLE
    spans = [(t.track_id, int(t.frames[0]), int(t.frames[-1])) for t in out.tracklets]
    assert spans == [(1, 1, 20), (2, 10, 80), (3, 60, 90)]
    walker = out.tracklets[1]
    assert np.array_equal(walker.frames, np.arange(10, 81))
    assert np.allclose(walker.boxes[:, 0], 100.0 + np.arange(71))  # one straight walk, no jump at the border
    assert len(walker.crops) == 4 and [c.frame for c in walker.crops] == sorted(c.frame for c in walker.crops)
    feats = out.features[1]
    assert feats.shape == (4, 4)
    assert all((f[0] == 1.0) == (c.frame < 50) for f, c in zip(feats, walker.crops))  # features follow crops
    again = stitch([part_a, part_b], max_crops=4, min_length=5, max_gap=10)
    assert [t.frames.tolist() for t in again.tracklets] == [t.frames.tolist() for t in out.tracklets]


def test_stitch_keeps_different_people_apart_and_leaves_a_whole_chunk_alone():
    part_a, part_b = _parts()
    far = ChunkTracks(part_b.chunk, [_track(1, 42, 80, 600.0)], [None])
    out = stitch([part_a, far], max_crops=8, min_length=5, max_gap=10)
    assert [(int(t.frames[0]), int(t.frames[-1])) for t in out.tracklets] == [(1, 20), (10, 49), (50, 80)]
    whole = ChunkTracks(WHOLE, part_a.tracklets, part_a.features)
    assert stitch([whole], max_crops=8, min_length=5, max_gap=10) is whole


# --------------------------------------------------------------------------------------- end to end


def test_chunked_run_scores_like_the_whole_video(scene, tmp_path):
    whole = _run(scene, tmp_path / "whole", BASE)
    chunked = _run(
        scene,
        tmp_path / "chunked",
        override(
            BASE, **{"execution.chunk_seconds": 2.0, "execution.chunk_overlap": 1.0, "execution.workers": 2}
        ),
    )
    assert chunked["execution"]["chunks"] == {"cam1": 3, "cam2": 3}
    frames = [c["frames_processed"] for c in whole["cameras"]]
    assert [c["frames_processed"] for c in chunked["cameras"]] == frames
    assert not list((tmp_path / "chunked" / "cache" / "chunks").glob("*.safetensors"))  # assembled cameras
    idf1 = {name: evaluate_run(tmp_path / name, scene / "gt")["ALL"]["IDF1"] for name in ("whole", "chunked")}
    assert idf1["whole"] > 0.4
    assert abs(idf1["chunked"] - idf1["whole"]) <= 0.02, idf1


def test_finished_chunks_are_not_redone(scene, tmp_path, monkeypatch):
    from tracker import camera, executor

    cfg = override(BASE, **{"execution.chunk_seconds": 2.0, "execution.chunk_overlap": 1.0})
    reference = _run(scene, tmp_path / "ref", cfg)
    cfg, _ = resolve_config(override(cfg, **{"associate.calibration": str(scene / "scene.json")}))
    # A run killed after two chunks of cam1: their entries are in the cache, nothing else is.
    src = open_source(scene / "cam1.mp4")
    plan = plan_chunks(src.info.frames_total, src.info.fps, 2.0, 1.0)
    cache = StageCache(tmp_path / "resumed")
    key = camera_key(src, None, cfg, plan)
    pieces = [camera.Piece(0, src.window(c.start, c.stop), c) for c in plan[:2]]
    for r in camera.process_unit(pieces, cfg, with_embedder=True):
        cache.save(cache.chunk_path("cam1", key, r.tracks.chunk.start), r)

    computed = []
    real = executor.process_pieces

    def recording(ps, *args, **kwargs):
        computed.extend(ps)
        return real(ps, *args, **kwargs)

    monkeypatch.setattr(executor, "process_pieces", recording)
    resumed = _run(scene, tmp_path / "resumed", cfg)
    expected = [(0, plan[2].start)] + [(1, c.start) for c in plan]
    assert sorted((p.camera, p.chunk.start) for p in computed) == expected
    assert resumed["execution"]["chunks_cached"] == {"cam1": 2}
    for name in ("mot/cam1.txt", "mot/cam2.txt", "identities.csv"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    assert [c["tracklets"] for c in resumed["cameras"]] == [c["tracklets"] for c in reference["cameras"]]
