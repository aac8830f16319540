"""The camera stage: pieces of cameras through detection, tracking and crop embedding; batching across
cameras; assembling a camera's chunks."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.camera import Piece, process_camera, process_pieces
from tracker.chunking import WHOLE
from tracker.config import PipelineConfig, override
from tracker.errors import InputError
from tracker.pipeline import resolve_config
from tracker.synthetic.render import render_scene
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
    d = tmp_path_factory.mktemp("camera-scene")
    render_scene(d, cameras=2, people=4, seconds=6, seed=1, width=320, height=180, progress=False)
    return d


def test_stateless_detector_gets_one_batch_across_cameras(scene, monkeypatch):
    from tracker.detect import HogDetector
    from tracker.types import Detections

    calls = []

    def detect(self, frames):  # one box per frame, placed by the frame's brightness: each camera its own
        calls.append(len(frames))
        return [
            Detections(np.array([[np.mean(f.image), 10, np.mean(f.image) + 20, 70]]), np.array([0.9]))
            for f in frames
        ]

    monkeypatch.setattr(HogDetector, "detect", detect)
    cfg = override(
        BASE, **{"detect.detector": "hog", "detect.batch": 6, "track.min_hits": 1, "track.min_length": 1}
    )
    pieces = [Piece(i, open_source(scene / f"cam{i + 1}.mp4").window(1, 4), WHOLE) for i in range(2)]
    together = process_pieces(pieces, cfg)
    assert calls == [6]  # 3 frames of each camera in one call
    calls.clear()
    apart = [process_pieces([p], cfg)[0] for p in pieces]
    assert calls == [3, 3]
    for a, b in zip(together, apart, strict=True):
        assert len(a.tracks.tracklets) == len(b.tracks.tracklets) == 1
        x, y = a.tracks.tracklets[0], b.tracks.tracklets[0]
        assert np.array_equal(x.frames, [1, 2, 3]) and np.array_equal(x.boxes, y.boxes)
    assert together[0].tracks.tracklets[0].boxes[0, 0] != together[1].tracks.tracklets[0].boxes[0, 0]


def test_detection_file_replaces_the_detector(scene, tmp_path):
    src = open_source(scene / "cam1.mp4").window(1, 21)
    det = tmp_path / "det.txt"
    det.write_text("".join(f"{f},-1,{10 + 2 * f},40,30,80,0.9,-1,-1,-1\n" for f in range(1, 21)))
    cfg, _ = resolve_config(override(BASE, **{"detect.detections": (str(det),), "reid.embedder": "none"}))
    result = process_camera(src, cfg, str(det))
    assert result.detector == {"detector": "file", "detections": str(det)}
    assert len(result.tracklets) == 1 and result.tracklets[0].frames.tolist() == list(range(1, 21))
    assert result.info.frames_processed == 20 and result.tracklets[0].embedding is None


def test_motion_detector_is_seeded_with_the_whole_cameras_background(scene):
    """A window of a camera (a time chunk) starts from the background of the whole video, as the whole camera
    does, so the first frames of a chunk already find the people standing there."""
    from tracker.detect import build_detector

    cfg, _ = resolve_config(BASE)
    src = open_source(scene / "cam1.mp4")
    whole = build_detector(cfg.detect, cfg.models, src)
    chunk = build_detector(cfg.detect, cfg.models, src.window(40, 80))
    seed = whole._median  # the background both models start from, applied on the first frame
    assert seed is not None and seed.shape[2] == 3 and seed.shape[0] * seed.shape[1] <= 180 * 320
    assert np.array_equal(seed, chunk._median)
    assert build_detector(cfg.detect, cfg.models, None)._median is None


class _CountingHistogram:
    """The histogram descriptor, counting the crops it is given."""

    def __init__(self) -> None:
        from tracker.reid.histogram import HistogramEmbedder

        self.inner, self.crops = HistogramEmbedder(), 0

    def embed(self, crops):
        self.crops += len(crops)
        return self.inner.embed(crops)


def test_trackers_compare_histograms_unless_told_to_use_the_runs_embedder(scene, monkeypatch):
    """``track.appearance: histogram`` embeds every detection with the cheap histogram and leaves the run's
    embedder to the tracklets' crops; ``reid`` sends every detection to the run's embedder; weight 0 neither."""
    import tracker.camera as camera

    def run(**settings):
        tracking = _CountingHistogram()
        monkeypatch.setattr(camera, "HistogramEmbedder", lambda: tracking)
        embedder = _CountingHistogram()
        piece = Piece(0, open_source(scene / "cam1.mp4").window(1, 60), WHOLE)
        (result,) = process_pieces([piece], override(BASE, **settings), embedder)
        kept = sum(len(t.crops) for t in result.tracks.tracklets)
        return result, tracking.crops, embedder.crops - kept

    by_histogram, tracking, extra = run(**{"track.appearance": "histogram"})
    assert tracking > 0 and extra == 0
    by_reid, tracking, extra = run(**{"track.appearance": "reid"})
    assert tracking == 0 and extra > 0
    # the run's embedder is the histogram here, so both routes must track alike
    assert [t.boxes.tolist() for t in by_reid.tracks.tracklets] == [
        t.boxes.tolist() for t in by_histogram.tracks.tracklets
    ]
    _, tracking, extra = run(**{"track.appearance_weight": 0.0})
    assert tracking == 0 and extra == 0
    with pytest.raises(InputError, match="track.appearance"):
        override(BASE, **{"track.appearance": "colour"})
