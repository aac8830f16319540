"""Calibration files: scene.json and plain homography mappings, read once into a Calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import SAMPLE
from tracker.calibration import Calibration, load_calibration
from tracker.errors import InputError


def test_load_calibration_scene_json_and_plain_mapping(tmp_path):
    h = np.array([[50.0, 0, 10], [0, 30, 100], [0, 0.02, 1]])
    scene = tmp_path / "scene.json"
    scene.write_text(
        json.dumps(
            {"cameras": [{"name": "cam1", "homography": h.tolist()}, {"name": "cam2", "homography": None}]}
        )
    )
    got = load_calibration(scene)
    assert list(got.homographies) == ["cam1"] and got.overlaps is None and got.source == str(scene)
    assert got.homographies["cam1"].dtype == np.float64 and np.allclose(got.homographies["cam1"], h)
    plain = tmp_path / "calib.yaml"
    plain.write_text("cam1: " + json.dumps(h.tolist()) + "\ncam2: " + json.dumps((2 * h).tolist()) + "\n")
    got = load_calibration(plain).homographies
    assert set(got) == {"cam1", "cam2"} and np.allclose(got["cam2"], 2 * h)


def test_load_calibration_of_the_sample_scene():
    got = load_calibration(SAMPLE / "scene.json")
    assert set(got.homographies) == {"cam1", "cam2", "cam3"}
    assert all(m.shape == (3, 3) for m in got.homographies.values())
    assert got.overlaps == {"cam1": {"cam2"}, "cam2": {"cam1"}, "cam3": set()}


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        ('{"cam1": [[1, 0], [0, 1]]}', "invertible 3x3"),
        ('{"cam1": [[1, 0, 0], [0, 1, 0], [0, 0, 0]]}', "invertible 3x3"),
        ('{"cam1": [["a", 0, 0], [0, 1, 0], [0, 0, 1]]}', "invertible 3x3"),
        ("[1, 2]", "expected a scene.json or a mapping"),
        ('{"cameras": [{"homography": null}]}', "'cameras' must be a list"),
        ('{"cameras": []}', "no camera homographies"),
    ],
)
def test_load_calibration_errors(tmp_path, text, message):
    path = tmp_path / "calib.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load_calibration(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_for_cameras_keeps_the_runs_cameras_and_refuses_a_foreign_file():
    h = np.eye(3)
    calib = Calibration(
        {"a": h, "b": h},
        {"a": frozenset({"b", "x"}), "b": frozenset({"a"}), "x": frozenset({"a"})},
        "scene.json",
    )
    got = calib.for_cameras(["a", "b", "c"])
    assert set(got.homographies) == {"a", "b"} and got.overlaps == {"a": {"b"}, "b": {"a"}}
    assert calib.unknown(["a", "b", "c"]) == ["c"]
    with pytest.raises(
        InputError, match=r"scene.json: names cameras a, b, x, none of which is in this run \(c1, c2\)"
    ):
        calib.for_cameras(["c1", "c2"])
