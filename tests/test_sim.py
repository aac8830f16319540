"""track-sim: scene files, ground truth, homographies, determinism and bad input (tiny scenes, 320x180)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.errors import InputError
from tracker.synthetic.cli import main
from tracker.synthetic.render import render_scene

W, H, FPS, SECONDS = 320, 180, 10, 3


def _load_gt(path: Path) -> np.ndarray:
    """(N, 9) float64 rows of a MOT ground-truth file (empty files give (0, 9))."""
    return np.loadtxt(path, delimiter=",", ndmin=2).reshape(-1, 9)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[Path, dict]:
    """A 3-camera, 14-person, 3 s scene rendered through the CLI."""
    out = tmp_path_factory.mktemp("sim") / "scene"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "--out",
                str(out),
                "--cameras",
                "3",
                "--people",
                "14",
                "--seconds",
                str(SECONDS),
                "--seed",
                "2",
                "--fps",
                str(FPS),
                "--width",
                str(W),
                "--height",
                str(H),
                "--quiet",
            ]
        )
    assert exc.value.code == 0
    return out, json.loads((out / "scene.json").read_text())


def test_scene_json_layout(scene):
    out, s = scene
    assert (s["seed"], s["fps"], s["seconds"], s["width"], s["height"]) == (2, FPS, SECONDS, W, H)
    names = [c["name"] for c in s["cameras"]]
    assert names == ["cam1", "cam2", "cam3"]
    for cam in s["cameras"]:
        assert (cam["width"], cam["height"], cam["fps"], cam["offset"]) == (W, H, FPS, 0.0)
        assert np.asarray(cam["homography"]).shape == (3, 3)
        assert (out / cam["video"]).is_file() and (out / cam["gt"]).is_file()
    overlaps = {c["name"]: c["overlaps"] for c in s["cameras"]}
    assert overlaps == {"cam1": ["cam2"], "cam2": ["cam1"], "cam3": []}
    assert [p["id"] for p in s["people"]] == list(range(1, 15))
    assert any(p["dressed_like"] for p in s["people"]), "no hard look-alike pair"
    assert not list(out.glob("**/*.part")), "temporary files left behind"


def test_gt_format_and_shared_ids(scene):
    out, s = scene
    cameras_of: dict[int, set[str]] = {}
    vis = []
    for cam in s["cameras"]:
        gt = _load_gt(out / cam["gt"])
        assert len(gt), f"{cam['name']} has no ground truth"
        frames, ids = gt[:, 0].astype(int), gt[:, 1].astype(int)
        assert frames.min() >= 1 and frames.max() <= SECONDS * FPS
        keys = frames * 1000 + ids
        assert np.all(np.diff(keys) > 0), "rows not sorted by frame then id, or duplicated"
        assert np.all(gt[:, 6:8] == 1)
        x, y, w, h = gt[:, 2], gt[:, 3], gt[:, 4], gt[:, 5]
        assert np.all((x >= 0) & (y >= 0) & (w > 0) & (h > 0) & (x + w <= W) & (y + h <= H))
        vis.append(gt[:, 8])
        for pid in set(ids.tolist()):
            cameras_of.setdefault(pid, set()).add(cam["name"])
            first, last = frames[ids == pid].min(), frames[ids == pid].max()
            person = next(p for p in s["people"] if p["id"] == pid)
            assert person["frames"][cam["name"]] == [first, last]
    vis = np.concatenate(vis)
    assert np.all((vis > 0) & (vis <= 1))
    assert np.any(vis < 0.9), "nobody is occluded or cut off"
    assert any(len(c) >= 2 for c in cameras_of.values()), "no person is seen by two cameras"


def test_homography_projects_path_to_box_foot(scene):
    """Each fully visible person's path position, through the homography, lands on the box's bottom centre."""
    out, s = scene
    checked = 0
    for cam in s["cameras"]:
        Hm = np.asarray(cam["homography"])
        gt = _load_gt(out / cam["gt"])
        for f, pid, x, y, w, h, *_ in gt[gt[:, 8] >= 0.999]:
            keys = np.asarray(next(p for p in s["people"] if p["id"] == int(pid))["path"])
            t = (f - 1) / s["fps"]
            g = np.array([np.interp(t, keys[:, 0], keys[:, 1]), np.interp(t, keys[:, 0], keys[:, 2]), 1.0])
            u = Hm @ g
            u = u[:2] / u[2]
            assert abs(u[0] - (x + w / 2)) <= 0.15 * h + 1, (cam["name"], f, pid)
            assert abs(u[1] - (y + h)) <= 4, (cam["name"], f, pid)
            checked += 1
    assert checked > 50


def test_videos_readable_with_frame_count_and_fps(scene):
    out, s = scene
    for cam in s["cameras"]:
        cap = cv2.VideoCapture(str(out / cam["video"]))
        assert cap.isOpened()
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == SECONDS * FPS
        n = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            assert img.shape == (H, W, 3)
            n += 1
        cap.release()
        assert n == SECONDS * FPS


def test_same_seed_same_bytes(tmp_path):
    kw = dict(cameras=2, people=6, seconds=2, seed=11, fps=10, width=W, height=H, progress=False)
    a, b = render_scene(tmp_path / "a", **kw), render_scene(tmp_path / "b", **kw)
    assert a == b
    files = ["scene.json", "gt/cam1.txt", "gt/cam2.txt", "cam1.mp4", "cam2.mp4"]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    c = render_scene(tmp_path / "c", **{**kw, "seed": 12})
    assert c["people"] != a["people"]


@pytest.mark.parametrize("cameras", [1, 7])
def test_bad_camera_count(tmp_path, cameras, capsys):
    with pytest.raises(InputError, match="--cameras"):
        render_scene(tmp_path / "x", cameras=cameras, seconds=1, progress=False)
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "y"), "--cameras", str(cameras), "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"track-sim: error: --cameras {cameras}: must be between 2 and 6"]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize(
    "kw,flag",
    [
        ({"width": 321}, "--width"),
        ({"overlap": 1.5}, "--overlap"),
        ({"seconds": 0}, "--seconds"),
        ({"people": 0}, "--people"),
    ],
)
def test_bad_arguments(tmp_path, kw, flag):
    with pytest.raises(InputError, match=flag):
        render_scene(tmp_path / "x", progress=False, **kw)


def test_out_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        render_scene(target, seconds=1, progress=False)
