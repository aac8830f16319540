"""Semi-real scenes (track-sim --crops): ground truth, real pixels, real cameras, determinism, layouts, errors.

Uses the research data in ../shared/eval-data (MARS and Market-1501 crops, the PETS09 video); every test
skips when it is absent. Scenes are tiny (320x180, 10 fps, a few seconds).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import EVAL_DATA
from tracker.errors import InputError
from tracker.synthetic.cli import main
from tracker.synthetic.composite import median_background, person_mask, read_reid_folder

W, H, FPS, SECONDS = 320, 180, 10, 6
MARS = EVAL_DATA / "reid-mini-mars"
MARKET = EVAL_DATA / "reid-mini-market1501"
PETS = EVAL_DATA / "pets09-s2l1-vtest" / "vtest.avi"

pytestmark = pytest.mark.skipif(
    not EVAL_DATA.is_dir(),
    reason="../shared/eval-data is absent (real research data is never part of the repo)",
)


def _render(
    out: Path, *extra: str, crops: Path = MARS, people: int = 5, cameras: int = 3, seconds: float = SECONDS
) -> dict:
    args = [
        "--out",
        str(out),
        "--crops",
        str(crops),
        "--background",
        str(PETS),
        "--cameras",
        str(cameras),
        "--people",
        str(people),
        "--seconds",
        str(seconds),
        "--seed",
        "4",
        "--fps",
        str(FPS),
        "--width",
        str(W),
        "--height",
        str(H),
        "--quiet",
        *extra,
    ]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 0
    return json.loads((out / "scene.json").read_text())


def _gt(path: Path) -> np.ndarray:
    """(N, 9) float64 rows of a MOT ground-truth file."""
    return np.loadtxt(path, delimiter=",", ndmin=2).reshape(-1, 9)


def _frames(video: Path) -> np.ndarray:
    """(F, H, W, 3) uint8 decoded frames."""
    cap = cv2.VideoCapture(str(video))
    out = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        out.append(image)
    cap.release()
    return np.stack(out)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[Path, dict]:
    """A 3-camera, 5-person, 6 s semi-real scene from MARS test ids on the PETS09 background."""
    out = tmp_path_factory.mktemp("composite") / "scene"
    return out, _render(out)


def test_gt_format_and_shared_ids(scene):
    out, s = scene
    assert [c["name"] for c in s["cameras"]] == ["cam1", "cam2", "cam3"]
    assert s["generator"] == "tracker.synthetic.composite" and s["crops"]["layout"] == "mars"
    assert sorted(p.name for p in out.iterdir()) == ["cam1.mp4", "cam2.mp4", "cam3.mp4", "gt", "scene.json"]
    people = {p["id"]: p for p in s["people"]}
    assert sorted(people) == [1, 2, 3, 4, 5]
    cameras_of: dict[int, set[str]] = {}
    for cam in s["cameras"]:
        gt = _gt(out / cam["gt"])
        assert len(gt), f"{cam['name']} has no ground truth"
        frames, ids = gt[:, 0].astype(int), gt[:, 1].astype(int)
        assert frames.min() >= 1 and frames.max() <= SECONDS * FPS
        assert np.all(np.diff(frames * 1000 + ids) > 0), "rows not sorted by frame then id, or duplicated"
        assert np.all(gt[:, 6:8] == 1)
        x, y, w, h, vis = gt[:, 2], gt[:, 3], gt[:, 4], gt[:, 5], gt[:, 8]
        assert np.all((x >= 0) & (y >= 0) & (w > 0) & (h > 0) & (x + w <= W) & (y + h <= H))
        assert np.all((vis > 0) & (vis <= 1))
        assert np.median(h / w) > 1.6, "boxes are not person-shaped"
        for pid in set(ids.tolist()):
            cameras_of.setdefault(pid, set()).add(cam["name"])
            assert people[pid]["frames"][cam["name"]] == [frames[ids == pid].min(), frames[ids == pid].max()]
    assert set(cameras_of) <= set(people)
    assert any(len(c) >= 2 for c in cameras_of.values()), "no person is seen by two cameras"


def test_people_pixels_come_from_their_crops(scene):
    """Inside well-visible boxes the video differs from the empty background, and the upper body there has
    the colour of the crops that camera shows of that person (the nearest of all people's, for most boxes)."""
    out, s = scene
    colour = {}  # (camera, person) -> mean BGR of the masked upper bodies of the crops shown there
    for p in s["people"]:
        for cam, shown in p["source"]["cameras"].items():
            pixels = []
            for name in shown["crops"]:
                img = cv2.imread(str(MARS / "bbox_test" / p["source"]["real_id"] / name))
                a = person_mask(img)
                band = slice(img.shape[0] // 5, img.shape[0] // 2)
                pixels.append(img[band][a[band] > 0.5])
            if pixels:
                colour[cam, p["id"]] = np.concatenate(pixels).mean(0)
    inside, outside, right, total = [], [], 0, 0
    for cam in s["cameras"]:
        name = cam["name"]
        video = _frames(out / cam["video"]).astype(np.float32)
        empty = np.median(video, axis=0)
        covered = np.zeros(video.shape[:3], bool)
        for f, pid, x, y, w, h, *_, vis in _gt(out / cam["gt"]):
            f, x, y, w, h = int(f) - 1, int(x), int(y), int(w), int(h)
            covered[f, y : y + h, x : x + w] = True
            if vis < 0.95 or h < 30:
                continue
            rows, cols = slice(y + h // 5, y + h // 2), slice(x + w // 3, x + 2 * w // 3)
            inside.append(np.abs(video[f, rows, cols] - empty[rows, cols]).mean())
            mean = video[f, rows, cols].reshape(-1, 3).mean(0)
            candidates = [q for c, q in colour if c == name]
            nearest = min(candidates, key=lambda q: float(np.linalg.norm(colour[name, q] - mean)))
            right += int(nearest == int(pid))
            total += 1
        outside.append(np.abs(video - empty)[~covered].mean())
    assert total >= 20, "too few well-visible people to check"
    assert np.median(inside) > 20 and max(outside) < 6, (np.median(inside), outside)
    assert right / total > 0.6, f"only {right}/{total} boxes have their own person's colours"


def test_one_person_shows_different_real_cameras(scene):
    """Each person's virtual cameras show their real cameras in turn: neighbours differ, crops differ."""
    _, s = scene
    for p in s["people"]:
        src = p["source"]
        assert len(src["real_cameras"]) >= 2
        shown = [src["cameras"][c["name"]]["real_camera"] for c in s["cameras"]]
        assert all(a != b for a, b in itertools.pairwise(shown)), shown
        assert set(shown) <= set(src["real_cameras"])
        by_real = {src["cameras"][c]["real_camera"]: set(src["cameras"][c]["crops"]) for c in p["frames"]}
        for a, b in itertools.combinations(by_real, 2):
            assert not by_real[a] & by_real[b], "one crop shown for two real cameras"
    seen_twice = [p for p in s["people"] if len(p["frames"]) >= 2]
    assert seen_twice
    for p in seen_twice:
        crops = [tuple(p["source"]["cameras"][c]["crops"]) for c in sorted(p["frames"])]
        assert len(set(crops)) >= 2, "one person looks the same (same crops) in every camera"


def test_same_arguments_same_files(scene, tmp_path):
    out, _ = scene
    again = tmp_path / "again"
    _render(again)
    assert (again / "scene.json").read_bytes() == (out / "scene.json").read_bytes()
    for cam in ("cam1", "cam2", "cam3"):
        assert (again / "gt" / f"{cam}.txt").read_bytes() == (out / "gt" / f"{cam}.txt").read_bytes()


def test_overlapping_and_disjoint_layouts(scene, tmp_path):
    _, s = scene
    assert {c["name"]: c["overlaps"] for c in s["cameras"]} == {
        "cam1": ["cam2"],
        "cam2": ["cam1"],
        "cam3": [],
    }
    disjoint = _render(tmp_path / "disjoint", "--overlap", "0", people=2, cameras=2, seconds=1)
    assert all(c["overlaps"] == [] for c in disjoint["cameras"])
    views = [c["background"] for c in s["cameras"]]
    assert len({json.dumps(v) for v in views}) == len(views), "two cameras share one background view"


def test_market_layout_and_splits():
    layout, test_ids = read_reid_folder(MARKET)
    assert layout == "market1501" and len(test_ids) == 16
    assert all(len(i.cameras) >= 2 and i.real_id not in ("0000", "-1") for i in test_ids)
    _, train_ids = read_reid_folder(MARKET, "train")
    assert not {i.real_id for i in test_ids} & {i.real_id for i in train_ids}
    assert len(read_reid_folder(MARKET, "all")[1]) == len(test_ids) + len(train_ids)
    layout, mars = read_reid_folder(MARS)
    assert layout == "mars"
    seq = mars[0].cameras[min(mars[0].cameras)]
    frames = [int(p.stem.split("F")[1]) for p, g in zip(seq.paths, seq.groups) if g == seq.groups[0]]
    assert frames == sorted(frames), "a MARS tracklet is not in frame order"


def test_market_scene_renders(tmp_path):
    s = _render(tmp_path / "market", crops=MARKET, people=3, cameras=2, seconds=2)
    assert s["crops"]["layout"] == "market1501"
    assert sum(len(_gt(tmp_path / "market" / c["gt"])) for c in s["cameras"]) > 0


def test_background_is_the_empty_scene():
    """The median background has no moving people: it is close to a PETS frame where people are few."""
    bg = median_background(PETS)
    assert bg.shape == (360, 480, 3) and bg.dtype == np.uint8
    cap = cv2.VideoCapture(str(PETS))
    ok, first = cap.read()
    cap.release()
    assert ok and np.abs(bg.astype(np.int16) - first).mean() < 12


def test_not_a_reid_folder_is_one_error_line(tmp_path, capsys):
    crops = tmp_path / "not-reid"
    (crops / "images").mkdir(parents=True)
    (crops / "images" / "a.jpg").write_bytes(b"x")
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "o"), "--crops", str(crops), "--background", str(PETS), "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a ReID crops folder" in err and str(crops) in err
    with pytest.raises(InputError, match="only 16 identities"):
        from tracker.synthetic.composite import render_composite

        render_composite(tmp_path / "o", MARS, PETS, people=17)
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "o"), "--crops", str(MARS), "--quiet"])
    assert exc.value.code == 2
