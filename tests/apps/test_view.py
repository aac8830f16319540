"""track-view (tracker/view.py): finding runs, staying inside the run directory, reading camera frames,
the Streamlit command line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import tracker.view
from tests.test_store import write_test_run
from tracker.errors import InputError
from tracker.view import find_runs, main, read_frame, run_file, streamlit_command, viewer_script


def test_find_runs(tmp_path):
    run = write_test_run(tmp_path / "runs" / "b", with_embedder=False)
    (tmp_path / "runs" / "a").mkdir()
    (tmp_path / "runs" / "a" / "run.json").write_text("{}")
    (tmp_path / "runs" / "empty").mkdir()
    assert find_runs(run) == [run]
    assert [p.name for p in find_runs(tmp_path / "runs")] == ["a", "b"]
    with pytest.raises(InputError, match="no such run directory"):
        find_runs(tmp_path / "missing")
    with pytest.raises(InputError, match="not a run directory"):
        find_runs(tmp_path / "runs" / "empty")


def test_run_file_stays_inside(tmp_path):
    assert run_file(tmp_path, "videos", "cam1.mp4") == tmp_path.resolve() / "videos" / "cam1.mp4"
    for parts in [("..", "secret"), ("videos", "../../etc/passwd"), ("/etc/passwd",)]:
        with pytest.raises(InputError, match="outside the run directory"):
            run_file(tmp_path, *parts)


def test_read_frame_video_folder_and_mot(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [np.full((48, 64, 3), c, np.uint8) for c in colours]
    video = tmp_path / "cam.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for f in frames:
        writer.write(f)
    writer.release()
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames, 1):
        cv2.imwrite(str(folder / f"{i:06d}.png"), f)
    seq = tmp_path / "seq"
    (seq / "img1").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=seq\nimDir=img1\nframeRate=10\nseqLength=3\nimWidth=64\nimHeight=48\nimExt=.jpg\n"
    )
    cv2.imwrite(str(seq / "img1" / "000003.jpg"), frames[2])
    for source in (video, folder):
        got = read_frame(str(source), 2)
        assert got.shape == (48, 64, 3) and np.abs(got.astype(int) - frames[1]).mean() < 10
    assert np.abs(read_frame(str(seq), 3).astype(int) - frames[2]).mean() < 10
    assert read_frame(str(seq), 1) is None  # not on disk
    assert read_frame(str(folder), 9) is None and read_frame(str(tmp_path / "nope.mp4"), 1) is None


def test_streamlit_command_is_local_and_quiet():
    cmd = streamlit_command(viewer_script(), 8765, "127.0.0.1")
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert cmd[2:5] == ["streamlit", "run", str(viewer_script())]
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8765"
    assert flags["--browser.gatherUsageStats"] == "false" and flags["--server.headless"] == "true"


def test_track_view_errors(tmp_path, capsys, monkeypatch):
    for args, msg in [
        ([str(tmp_path / "nope")], "no such run directory"),
        ([str(tmp_path), "--port", "0"], "not a TCP port"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(args)
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and err.startswith("track-view: error: ") and msg in err
    monkeypatch.setattr(tracker.view, "__file__", str(tmp_path / "site" / "tracker" / "view.py"))
    with pytest.raises(InputError, match="the review app is missing"):
        viewer_script()
