"""Person search (tracker/search.py): ranking, batching, the run's embedder, track-search."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.test_store import make_cameras, make_tracklets, need_embedder, write_test_run
from tracker.search import main, run_reid_config, search
from tracker.store import ResultsStore, write_store


@pytest.fixture
def run_dir(tmp_path) -> Path:
    need_embedder()
    return write_test_run(tmp_path / "run")


def query_file(run_dir: Path, tmp_path: Path, camera: str, track_id: int) -> Path:
    """One of a tracklet's stored crops, written as a JPEG."""
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        crop = store.crops(camera, track_id)[1].image
    path = tmp_path / "query.jpg"
    cv2.imwrite(str(path), crop)
    return path


def test_search_ranks_identities_and_tracklets(tmp_path):
    tracklets = make_tracklets()
    rng = np.random.default_rng(0)
    for t in tracklets:
        v = rng.normal(size=8).astype(np.float32)
        t.embedding = v / np.linalg.norm(v)
    path = tmp_path / "r.sqlite"
    write_store(path, meta={}, cameras=make_cameras(), tracklets=tracklets)
    target = tracklets[5]  # cam2 track 2, identity 2
    with ResultsStore.open(path) as store:
        result = search(store, target.embedding, top=3)
        small_batches = search(store, target.embedding, top=3, batch=2)

    def ranking(r):
        return [(m.global_id, m.best.camera, m.best.track_id) for m in r.identities]

    assert ranking(small_batches) == ranking(result)
    np.testing.assert_allclose(
        [t.distance for t in small_batches.tracklets], [t.distance for t in result.tracklets], atol=1e-6
    )
    assert [m.global_id for m in result.identities][0] == 2
    assert result.identities[0].distance == pytest.approx(0.0, abs=1e-6)
    assert result.identities[0].best.camera == "cam2" and result.identities[0].best.track_id == 2
    assert len(result.tracklets) == 3 and len({m.global_id for m in result.identities}) == 3
    dists = [t.distance for t in result.tracklets]
    assert dists == sorted(dists)
    want = sorted(1 - float(t.embedding @ target.embedding) for t in tracklets)[:3]
    np.testing.assert_allclose(dists, want, atol=1e-6)


def test_run_reid_config_is_the_runs_resolved_config():
    meta = {
        "config": {"reid": {"embedder": "histogram", "batch_size": 8, "device": "cuda:0"}},
        "embedder": {"embedder": "histogram", "dim": 100},
    }
    cfg = run_reid_config(meta)
    assert (cfg.embedder, cfg.batch_size, cfg.download, cfg.device) == ("histogram", 8, False, "auto")
    assert run_reid_config({"config": {"reid": {"embedder": "none"}}, "embedder": None}) is None


def test_track_search_finds_own_identity(run_dir, tmp_path, capsys):
    query = query_file(run_dir, tmp_path, "cam3", 1)  # identity 3
    with pytest.raises(SystemExit) as exc:
        main([str(run_dir), "--query", str(query), "--top", "3"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    lines = out.splitlines()
    assert lines[0] == "identities:" and lines[2].split()[:2] == ["1", "3"]
    with pytest.raises(SystemExit):
        main([str(run_dir), "--query", str(query), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["identities"][0]["global_id"] == 3
    assert data["tracklets"][0]["camera"] == "cam3" and data["tracklets"][0]["track_id"] == 1
    assert len(data["identities"]) == 5 and len(data["tracklets"]) == 10


SEARCH_ERRORS = {
    "not-image": "not an image",
    "missing-query": "query image not found",
    "no-embedder": "used no appearance embedder",
    "no-run": "run directory not found",
    "top": "must be at least 1",
    "bomb-18000": "18000x18000 pixels is over the limit of 67 megapixels",
    "bomb-40000": "40000x40000 pixels is over the limit of 67 megapixels",
    "bomb-10000": "10000x10000 pixels is over the limit of 67 megapixels",
    "damaged": "a damaged PNG image",
    "huge-file": "bytes is more than a query image may have (100 bytes)",
}


@pytest.mark.parametrize("case", sorted(SEARCH_ERRORS))
def test_track_search_bad_input(tmp_path, capsys, monkeypatch, case):
    import tracker.search
    from tests.test_video import png_header

    run = write_test_run(tmp_path / "run", with_embedder=case != "no-embedder")
    query = tmp_path / "q.jpg"
    query.write_bytes(b"GIF89a not really")
    if case != "not-image":
        cv2.imwrite(str(query), np.full((40, 20, 3), 128, np.uint8))
    if case.startswith("bomb-"):  # a small file whose header claims an enormous image
        side = int(case[5:])
        query.write_bytes(png_header(side, side))
    elif case == "damaged":
        noise = np.random.default_rng(0).integers(0, 255, (40, 20, 3), dtype=np.uint8)
        data = cv2.imencode(".png", noise)[1].tobytes()
        query.write_bytes(data[: len(data) // 2])
    elif case == "huge-file":
        monkeypatch.setattr(tracker.search, "MAX_QUERY_BYTES", 100)
    args = {
        "missing-query": [str(run), "--query", str(tmp_path / "none.jpg")],
        "no-run": [str(tmp_path / "nope"), "--query", str(query)],
        "top": [str(run), "--query", str(query), "--top", "0"],
    }.get(case, [str(run), "--query", str(query)])
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err.startswith("track-search: error: ") and "\n" not in err
    assert SEARCH_ERRORS[case] in err, err
