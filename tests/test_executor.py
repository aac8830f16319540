from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tracker import executor
from tracker.config import ExecConfig, PipelineConfig, from_dict, override
from tracker.errors import InputError
from tracker.pipeline import run
from tracker.synthetic.render import render_scene

BASE = override(
    PipelineConfig(),
    **{
        "detect.detector": "motion",
        "reid.embedder": "histogram",
        "output.annotated_video": False,
        "execution.workers": 1,
    },
)
OUTPUTS = ("mot/cam1.txt", "mot/cam2.txt", "identities.csv", "mtmc.txt")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("exec-scene")
    render_scene(d, cameras=2, people=4, seconds=6, seed=1, width=320, height=180, progress=False)
    return d


def _run(scene, out, **changes):
    cfg = override(BASE, **{"associate.calibration": str(scene / "scene.json"), **changes})
    return run([scene / "cam1.mp4", scene / "cam2.mp4"], out, cfg, progress=False)


def _outputs(run_dir):
    return {name: (run_dir / name).read_bytes() for name in OUTPUTS}


@pytest.fixture(scope="module")
def sequential(scene, tmp_path_factory):
    """The reference: every camera in this process, one after the other."""
    out = tmp_path_factory.mktemp("sequential")
    meta = _run(scene, out)
    assert meta["execution"]["workers"] == 1 and meta["num_tracklets"] > 0
    return out


def test_local_workers_match_sequential(scene, sequential, tmp_path):
    meta = _run(scene, tmp_path, **{"execution.workers": 2})
    assert _outputs(tmp_path) == _outputs(sequential)
    ex = meta["execution"]
    assert ex["executor"] == "local" and ex["workers"] == 2 and ex["cached"] == []
    assert len(ex["peak_rss_workers_mb"]) == 2 and all(v > 0 for v in ex["peak_rss_workers_mb"].values())
    assert meta["peak_rss_total_mb"] > meta["peak_rss_mb"] + 2 * 50  # two worker processes of some size
    assert json.loads((tmp_path / "run.json").read_text())["execution"] == ex


def test_ray_matches_sequential(scene, sequential, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install multicam-tracker[ray])")
    meta = _run(scene, tmp_path, **{"execution.executor": "ray", "execution.workers": 2})
    assert _outputs(tmp_path) == _outputs(sequential)
    assert meta["execution"]["executor"] == "ray" and len(meta["execution"]["peak_rss_workers_mb"]) >= 1


def test_cameras_batched_in_one_worker_match_sequential(scene, sequential, tmp_path):
    meta = _run(scene, tmp_path, **{"execution.batch_cameras": 2})
    assert meta["execution"]["units"] == 1
    assert _outputs(tmp_path) == _outputs(sequential)


def test_batched_appearance_features_match_per_camera_ones(scene, tmp_path):
    appearance = {"track.appearance_weight": 0.5}
    _run(scene, tmp_path / "apart", **appearance)
    _run(scene, tmp_path / "together", **appearance, **{"execution.batch_cameras": 2})
    assert _outputs(tmp_path / "together") == _outputs(tmp_path / "apart")


def test_rerun_takes_cameras_from_the_cache_and_force_redoes_them(scene, sequential, tmp_path):
    shutil.copytree(sequential, tmp_path, dirs_exist_ok=True)
    meta = _run(scene, tmp_path)
    assert [c["cached"] for c in meta["cameras"]] == [True, True]
    assert meta["execution"]["cached"] == ["cam1", "cam2"]
    assert _outputs(tmp_path) == _outputs(sequential)
    meta = _run(scene, tmp_path, **{"execution.force": True})
    assert [c["cached"] for c in meta["cameras"]] == [False, False]
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2


def test_killed_run_resumes_and_matches_an_uninterrupted_run(scene, sequential, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-c",
        "from tracker.cli import track_cameras; track_cameras()",
        "--videos",
        str(scene / "cam1.mp4"),
        str(scene / "cam2.mp4"),
        "--out",
        str(out),
        "--calibration",
        str(scene / "scene.json"),
        "--detector",
        "motion",
        "--reid",
        "histogram",
        "--no-video",
        "--offline",
        "--quiet",
        "--workers",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if list((out / "cache").glob("cam1-*.safetensors")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the run ended before its first camera was cached"
    assert not list((out / "cache").glob("cam2-*.safetensors")) and not (out / "run.json").exists()

    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    meta = json.loads((out / "run.json").read_text())
    assert [(c["name"], c["cached"]) for c in meta["cameras"]] == [("cam1", True), ("cam2", False)]
    assert _outputs(out) == _outputs(sequential)


def test_dead_worker_fails_the_run_instead_of_hanging_it(scene, tmp_path):
    script = tmp_path / "unguarded.py"  # no `if __name__ == "__main__":`: each spawned worker dies at start
    script.write_text(
        "from tracker.config import PipelineConfig, override\n"
        "from tracker.pipeline import run\n"
        "cfg = override(PipelineConfig(), **{'detect.detector': 'motion', 'reid.embedder': 'histogram',\n"
        "               'output.annotated_video': False, 'execution.workers': 2})\n"
        f"run([{str(scene / 'cam1.mp4')!r}, {str(scene / 'cam2.mp4')!r}],\n"
        f"    {str(tmp_path / 'run')!r}, cfg, progress=False)\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=False,
    )
    assert proc.returncode != 0 and "a worker process died" in proc.stderr


def test_ray_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(InputError, match=r"pip install multicam-tracker\[ray\]"):
        executor.import_ray()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"executor": "spark"}, "execution.executor: must be one of local, ray, got 'spark'"),
        ({"workers": -1}, "execution.workers: must be >= 0"),
        ({"chunk_seconds": 5.0, "chunk_overlap": 5.0}, "execution.chunk_overlap: must be > 0 and < 5.0"),
        ({"batch_cameras": 0}, "execution.batch_cameras: must be >= 1"),
        ({"gpus_per_task": 2.0}, "execution.gpus_per_task: must be >= 0 and <= 1"),
    ],
)
def test_bad_execution_settings_are_input_errors(changes, message):
    with pytest.raises(InputError, match=message):
        ExecConfig(**changes)


def test_execution_section_reads_from_yaml_data():
    data = {"execution": {"executor": "ray", "workers": 4, "chunk_seconds": 600}}
    cfg = from_dict(PipelineConfig, data, "x.yaml")
    assert cfg.execution == ExecConfig(executor="ray", workers=4, chunk_seconds=600.0)
    with pytest.raises(InputError, match="unknown key 'threads'"):
        from_dict(PipelineConfig, {"execution": {"threads": 2}}, "x.yaml")
