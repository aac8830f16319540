"""The results store: round trip, transactions, schema versions, corrections with undo.

``write_test_run`` builds the small synthetic run every store, export and app test uses: three cameras,
five people with their own colour, written straight through ``write_store`` (no pipeline).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tracker.errors import InputError
from tracker.fsutil import atomic_path
from tracker.store import ResultsStore, write_store
from tracker.types import CameraInfo, Crop, Tracklet

FPS = 10.0
# (person, camera, track_id, first_frame, last_frame); person p is global id p after association.
LAYOUT = [
    (1, "cam1", 1, 1, 20),
    (2, "cam1", 2, 5, 30),
    (3, "cam1", 3, 40, 60),
    (1, "cam1", 4, 70, 90),
    (1, "cam2", 1, 25, 45),
    (2, "cam2", 2, 35, 55),
    (4, "cam2", 3, 10, 30),
    (3, "cam3", 1, 1, 20),
    (5, "cam3", 2, 20, 40),
    (2, "cam3", 3, 60, 80),
]
OFFSETS = {"cam1": 0.0, "cam2": 0.0, "cam3": 1.5}
# cam2 is calibrated: ground metres (x, y) -> pixels (20 x + 100, 10 y + 50).
HOMOGRAPHY = np.array([[20.0, 0.0, 100.0], [0.0, 10.0, 50.0], [0.0, 0.0, 1.0]])


@dataclass
class Ev:
    """Stands in for tracker.association's evidence record (the store reads it by field name)."""

    global_id: int
    a: tuple[str, int]
    b: tuple[str, int]
    distance: float
    terms: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def person_colours(seed: int = 3) -> dict[int, np.ndarray]:
    """A distinct random BGR colour per person."""
    rng = np.random.default_rng(seed)
    hues = rng.permutation(np.linspace(0, 170, 5).astype(np.uint8))
    import cv2

    return {
        p: cv2.cvtColor(np.uint8([[[h, 220, 230]]]), cv2.COLOR_HSV2BGR)[0, 0].astype(np.int16)
        for p, h in zip(range(1, 6), hues)
    }


def person_crop(colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 48 x 24 crop of one colour with a little noise, ``uint8 (48, 24, 3)`` BGR."""
    img = np.clip(colour + rng.integers(-12, 13, (48, 24, 3)), 0, 255).astype(np.uint8)
    img[:6] = 40  # a dark "head" so the crop is not a flat colour
    return img


def offline_embedder():
    """The offline histogram embedder, built as a run would build it (None while tracker.reid lacks it)."""
    try:
        from tracker.config import ReidConfig
        from tracker.reid import build_embedder
    except ImportError:
        return None
    return build_embedder(ReidConfig(embedder="histogram"))


def need_embedder():
    """Skip a test that searches when tracker.reid cannot build the histogram embedder yet."""
    embedder = offline_embedder()
    if embedder is None:
        pytest.skip("tracker.reid.build_embedder is not available")
    return embedder


def make_tracklets(associated: bool = True, seed: int = 0, embedder=None) -> list[Tracklet]:
    """The tracklets of :data:`LAYOUT` with crops and (when ``embedder``) quality-weighted embeddings."""
    rng = np.random.default_rng(seed)
    colours = person_colours()
    out = []
    for person, cam, tid, f0, f1 in LAYOUT:
        frames = np.arange(f0, f1 + 1)
        x = 50.0 + 4 * (frames - f0) + 30 * person
        boxes = np.c_[x, np.full_like(x, 60.0 + tid), x + 40, np.full_like(x, 180.0 + tid)]
        times = (frames - 1) / FPS + OFFSETS[cam]
        crops = [
            Crop(
                int(f),
                boxes[f - f0].astype(np.float32),
                0.9,
                0.5 + 0.1 * k,
                person_crop(colours[person], rng),
            )
            for k, f in enumerate(frames[::6])
        ]
        emb = None
        if embedder is not None:
            feats = embedder.embed([c.image for c in crops])
            w = np.array([c.quality for c in crops])
            emb = (w @ feats).astype(np.float32)
            emb /= np.linalg.norm(emb)
        out.append(
            Tracklet(
                cam,
                tid,
                frames,
                times,
                boxes,
                np.full(len(frames), 0.8),
                crops,
                emb,
                person if associated else -1,
            )
        )
    return out


def make_cameras() -> list[CameraInfo]:
    return [
        CameraInfo(
            c,
            f"/nonexistent/{c}.mp4",
            640,
            360,
            FPS,
            OFFSETS[c],
            100,
            100,
            HOMOGRAPHY if c == "cam2" else None,
        )
        for c in ("cam1", "cam2", "cam3")
    ]


def make_evidence(tracklets: list[Tracklet]) -> list[Ev]:
    """Chain evidence between consecutive tracklets of each identity (by start time)."""
    out = []
    by_id: dict[int, list[Tracklet]] = {}
    for t in sorted(tracklets, key=lambda t: t.start_time):
        by_id.setdefault(t.global_id, []).append(t)
    for gid, ts in by_id.items():
        for a, b in zip(ts, ts[1:]):
            d = 0.1 if a.embedding is None else float(1 - a.embedding @ b.embedding)
            out.append(
                Ev(
                    gid,
                    a.key,
                    b.key,
                    d,
                    {"appearance": d, "gap": b.start_time - a.end_time},
                    "appearance and transit time",
                )
            )
    return out


def write_test_run(run_dir: Path, associated: bool = True, with_embedder: bool = True) -> Path:
    """Write ``run_dir/results.sqlite`` (and run.json) for the synthetic run; returns ``run_dir``."""
    import json

    embedder = offline_embedder() if with_embedder else None
    tracklets = make_tracklets(associated, embedder=embedder)
    evidence = make_evidence(tracklets) if associated else []
    meta = {
        "tool": "multicam-tracker",
        "config": {"video": {"stride": 1}, "reid": {"embedder": "histogram" if embedder else "none"}},
        "embedder": embedder.info() if embedder is not None else None,
        "detectors": {"cam1": "test", "cam2": "test", "cam3": "test"},
        "num_tracklets": len(tracklets),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir / "results.sqlite") as tmp:
        write_store(tmp, meta=meta, cameras=make_cameras(), tracklets=tracklets, evidence=evidence)
    (run_dir / "run.json").write_text(json.dumps(meta))
    return run_dir


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return write_test_run(tmp_path / "run", with_embedder=False)


def test_round_trip(tmp_path):
    tracklets = make_tracklets()
    for t in tracklets:  # a fixed embedding per tracklet, to check the blob round trip
        t.embedding = np.random.default_rng(t.track_id).normal(size=16).astype(np.float32)
    evidence = make_evidence(tracklets)
    path = tmp_path / "results.sqlite"
    write_store(
        path,
        meta={"config": {"reid": {"embedder": "none"}}, "x": np.float32(1.5)},
        cameras=make_cameras(),
        tracklets=tracklets,
        evidence=evidence,
    )
    with ResultsStore.open(path, readonly=True) as store:
        assert store.meta() == {"config": {"reid": {"embedder": "none"}}, "x": 1.5}
        cams = store.cameras()
        assert [c.name for c in cams] == ["cam1", "cam2", "cam3"]
        assert cams[2].offset == 1.5 and cams[0].homography is None
        np.testing.assert_allclose(cams[1].homography, HOMOGRAPHY)
        back = store.tracklets()
        assert store.counts() == {
            "cameras": 3,
            "tracklets": 10,
            "identities": 5,
            "boxes": sum(len(t) for t in tracklets),
            "crops": sum(len(t.crops) for t in tracklets),
            "evidence": len(evidence),
        }
        assert store.associated() and store.uses_global_ids()
        assert [len(e) for e in (store.evidence(1), store.evidence(2), store.evidence(4))] == [2, 2, 0]
        ev = store.evidence(3)[0]
        assert (ev.a, ev.b, ev.reason) == (("cam3", 1), ("cam1", 3), "appearance and transit time")
        assert set(ev.terms) == {"appearance", "gap"}
    want = {t.key: t for t in tracklets}
    assert len(back) == len(tracklets)
    for t in back:
        w = want[t.key]
        np.testing.assert_array_equal(t.frames, w.frames)
        np.testing.assert_allclose(t.times, w.times)
        np.testing.assert_allclose(t.boxes, w.boxes, atol=1e-4)
        np.testing.assert_allclose(t.scores, w.scores, atol=1e-6)
        np.testing.assert_array_equal(t.embedding, w.embedding)
        assert t.global_id == w.global_id
        assert [c.frame for c in t.crops] == [c.frame for c in w.crops]
        for c, wc in zip(t.crops, w.crops):
            assert c.image.shape == wc.image.shape and c.image.dtype == np.uint8
            assert np.abs(c.image.astype(int) - wc.image).mean() < 8  # JPEG is lossy
            assert c.quality == pytest.approx(wc.quality)


def test_identities_page_sort_filter(run_dir):
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        assert [i.global_id for i in store.identities()] == [1, 2, 3, 4, 5]
        two = store.identity(2)
        assert two.cameras == ("cam1", "cam2", "cam3") and two.num_tracklets == 3
        assert two.first_time == pytest.approx(0.4) and two.last_time == pytest.approx(9.4)
        by_cams = store.identities(sort="num_cameras", descending=True, limit=2)
        assert [i.global_id for i in by_cams] == [2, 1]
        assert [i.global_id for i in store.identities(limit=2, offset=2)] == [3, 4]
        assert [i.global_id for i in store.identities(camera="cam3")] == [2, 3, 5]
        assert store.count_identities(camera="cam3", min_cameras=2) == 2
        assert [i.global_id for i in store.identities(min_duration=4.0)] == [1, 2, 3]
        assert [i.global_id for i in store.identities(text="4")] == [4]
        with pytest.raises(InputError, match="sort 'x'"):
            store.identities(sort="x")


def test_boxes_at_common_clock(run_dir):
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        at = {b.camera: b for b in store.boxes_at(1.0)}
        assert at["cam1"].frame == 11 and sorted(at["cam1"].global_ids.tolist()) == [1, 2]
        assert at["cam3"].frame is None and len(at["cam3"].xywh) == 0  # offset 1.5 s: not started yet
        assert {b.camera: b.frame for b in store.boxes_at(1.5)}["cam3"] == 1
        assert at["cam2"].global_ids.tolist() == [4]
        np.testing.assert_allclose(at["cam2"].xywh[0], [50 + 4 * 1 + 120, 63, 40, 120])
        assert store.boxes_at(6.5)[0].box_frame is None  # cam1 frame 66: nobody there
        assert store.boxes_at(50.0)[0].frame is None  # after the last frame (100)


def test_failed_write_keeps_previous_db(tmp_path):
    run = write_test_run(tmp_path / "run", with_embedder=False)
    before = (run / "results.sqlite").read_bytes()
    bad = make_tracklets()
    bad.append(bad[0])  # the same tracklet twice
    with pytest.raises(ValueError, match="appears twice"):
        with atomic_path(run / "results.sqlite") as tmp:
            write_store(tmp, meta={}, cameras=make_cameras(), tracklets=bad)
    assert (run / "results.sqlite").read_bytes() == before
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []


def test_failed_transaction_rolls_back(tmp_path):
    path = tmp_path / "r.sqlite"
    tracklets = make_tracklets()
    tracklets[-1].crops[0].image = np.zeros((0, 0, 3), np.uint8)  # cannot be encoded: fails mid-write
    with pytest.raises(ValueError, match="non-empty uint8"):
        write_store(path, meta={}, cameras=make_cameras(), tracklets=tracklets)
    with ResultsStore.open(path) as store:
        assert store.counts()["boxes"] == 0 and store.counts()["cameras"] == 0


def test_unassociated_run_gets_identities_but_mot_track_ids(tmp_path):
    run = write_test_run(tmp_path / "run", associated=False, with_embedder=False)
    with ResultsStore.open(run / "results.sqlite") as store:
        assert not store.associated() and not store.uses_global_ids()
        assert store.count_identities() == 10
        assert store.mot_rows("cam2")[:, 1].max() == 3  # track ids
        assert store.tracklet_info("cam2", 1).global_id == 5  # identities numbered in camera order
        store.set_label(5, "guard")
        assert store.uses_global_ids()
        store.undo()
        assert not store.uses_global_ids()


def test_open_errors(tmp_path):
    with pytest.raises(InputError, match="no results database"):
        ResultsStore.open(tmp_path / "missing.sqlite")
    text = tmp_path / "text.sqlite"
    text.write_text("hello, this is not a database at all" * 50)
    with pytest.raises(InputError, match="not a results database"):
        ResultsStore.open(text)
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).execute("CREATE TABLE other (x)").connection.close()
    with pytest.raises(InputError, match="not a multicam-tracker results database"):
        ResultsStore.open(empty)


def _set_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()


def test_schema_versions(tmp_path, monkeypatch):
    path = write_test_run(tmp_path / "run", with_embedder=False) / "results.sqlite"
    _set_version(path, 9)
    with pytest.raises(InputError, match="version 9 is newer.*upgrade multicam-tracker"):
        ResultsStore.open(path)
    _set_version(path, 0)
    with pytest.raises(InputError, match=r"version 0 is older.*\(3\); re-create it by running track-cameras"):
        ResultsStore.open(path)
    # A registered migration is applied in place, in a transaction.
    _set_version(path, 3)
    monkeypatch.setattr("tracker.store.schema.SCHEMA_VERSION", 4)
    monkeypatch.setattr(
        "tracker.store.schema.MIGRATIONS", {3: "ALTER TABLE identities ADD COLUMN note TEXT;"}
    )
    with pytest.raises(InputError, match="open it writable once"):
        ResultsStore.open(path, readonly=True)
    with ResultsStore.open(path) as store:
        assert store.count_identities() == 5
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    assert "note" in [r[1] for r in conn.execute("PRAGMA table_info(identities)")]
    conn.close()


def test_version_1_store_is_migrated(tmp_path):
    """Schema 1 called the track boxes 'detections'; opening such a store writable renames the table."""
    path = write_test_run(tmp_path / "run", with_embedder=False) / "results.sqlite"
    with ResultsStore.open(path, readonly=True) as store:
        rows = [store.mot_rows(c.name).tolist() for c in store.cameras()]
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP INDEX track_boxes_frame; DROP INDEX track_boxes_global; DROP INDEX track_boxes_tracklet;"
        "ALTER TABLE track_boxes RENAME TO detections; PRAGMA user_version = 1;"
    )
    conn.close()
    with ResultsStore.open(path) as store:
        assert [store.mot_rows(c.name).tolist() for c in store.cameras()] == rows
    conn = sqlite3.connect(path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3 and "detections" not in names
    assert {"track_boxes", "track_boxes_frame", "track_boxes_global", "track_boxes_tracklet"} <= names
    assert "questions" in names  # and on to 3
    conn.close()


def test_version_2_store_is_migrated_with_its_edits(tmp_path):
    """Schema 2 had no review queue; opening a schema-2 store writable adds the (empty) questions table and
    keeps its edit log."""
    path = write_test_run(tmp_path / "run", with_embedder=False) / "results.sqlite"
    with ResultsStore.open(path) as store:
        store.set_label(3, "guard")
        log = [(e.id, e.action, e.params) for e in store.edits()]
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE questions; PRAGMA user_version = 2;")
    conn.close()
    with pytest.raises(InputError, match="open it writable once"):
        ResultsStore.open(path, readonly=True)
    with ResultsStore.open(path) as store:
        assert store.questions() == [] and [(e.id, e.action, e.params) for e in store.edits()] == log
        assert store.identity(3).label == "guard"


def _state(store: ResultsStore) -> tuple:
    """Everything a correction may change: memberships, identities, evidence and MOT rows."""
    return (
        [(t.key, t.global_id) for t in store.tracklet_infos()],
        store.identities(),
        sorted((e.id, e.global_id, e.a, e.b) for g in range(1, 10) for e in store.evidence(g)),
        [store.mot_rows(c.name).tolist() for c in store.cameras()],
    )


def test_merge_split_label_undo(run_dir):
    with ResultsStore.open(run_dir / "results.sqlite") as store:
        original = _state(store)
        with pytest.raises(InputError, match="both are in camera cam1 at the same time"):
            store.merge(1, 2)
        with pytest.raises(InputError, match="identity 9: no such global id"):
            store.merge(1, 9)
        store.set_label(5, "courier")
        store.merge(4, 5)
        four = store.identity(4)
        assert store.identity(5) is None and four.label == "courier"
        assert four.cameras == ("cam2", "cam3") and four.num_tracklets == 2
        assert store.tracklet_info("cam3", 2).global_id == 4
        assert (store.mot_rows("cam3")[:, 1] == 5).sum() == 0
        assert [e.reason for e in store.evidence(4)] == ["merged by user (identity 5 into 4)"]

        new = store.split("cam1", 4)
        assert new == 6 and store.tracklet_info("cam1", 4).global_id == 6
        assert store.identity(1).num_tracklets == 2 and store.identity(6).cameras == ("cam1",)
        assert all(("cam1", 4) not in (e.a, e.b) for e in store.evidence(1))
        with pytest.raises(InputError, match="already the only tracklet"):
            store.split("cam1", 4)
        assert [e.action for e in store.edits()] == ["label", "merge", "split"]

        assert store.undo().action == "split"
        assert store.identity(6) is None and store.tracklet_info("cam1", 4).global_id == 1
        assert store.undo().action == "merge"
        assert store.undo().action == "label"
        assert store.undo() is None
        assert _state(store) == original
        assert all(e.undone for e in store.edits())
        # a split after an undone merge takes a fresh id (ids only grow)
        store.merge(4, 5)
        store.undo()
        assert store.split("cam1", 1) == 7
