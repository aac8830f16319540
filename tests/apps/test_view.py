"""track-view (tracker/view.py): finding runs, staying inside the run directory, reading camera frames,
the Streamlit command line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import tracker.view
from tests.test_store import write_test_run
from tracker.errors import InputError
from tracker.view import (
    allowed_hosts,
    find_runs,
    main,
    read_frame,
    run_file,
    source_problem,
    streamlit_command,
    viewer_script,
)


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


def _sources(tmp_path):
    """A video, a folder of frames and a MOT sequence (frame 3 on disk only) of the same three frames."""
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
    return frames, video, folder, seq


def _recording_run(run_dir, sources):
    """A run directory whose store records ``sources`` as a pipeline run does (path and fingerprint)."""
    from tracker.cache import source_fingerprint
    from tracker.store import write_store

    cameras = [
        {
            "name": f"cam{i}",
            "source": str(s),
            "width": 64,
            "height": 48,
            "source_path": str(s.resolve()),
            "source_fingerprint": source_fingerprint(s),
        }
        for i, s in enumerate(sources)
    ]
    run_dir.mkdir(parents=True)
    write_store(
        run_dir / "results.sqlite", meta={"run_id": "r", "cameras": cameras}, cameras=[], tracklets=[]
    )
    return run_dir


def test_read_frame_video_folder_and_mot(tmp_path, monkeypatch):
    frames, video, folder, seq = _sources(tmp_path)
    run = _recording_run(tmp_path / "runs" / "r", [video, folder, seq])
    for source in (video, folder):
        got = read_frame(str(source), 2, run)
        assert got.shape == (48, 64, 3) and np.abs(got.astype(int) - frames[1]).mean() < 10
    assert np.abs(read_frame(str(seq), 3, run).astype(int) - frames[2]).mean() < 10
    assert read_frame(str(seq), 1, run) is None  # not on disk
    assert read_frame(str(folder), 9, run) is None and read_frame(str(tmp_path / "nope.mp4"), 1, run) is None
    monkeypatch.delenv(tracker.view.PATH_ENV, raising=False)
    assert read_frame(str(video), 2) is None  # no run given, none served: nothing is opened
    monkeypatch.setenv(tracker.view.PATH_ENV, str(tmp_path / "runs"))  # what track-view sets for the app
    assert read_frame(str(video), 2).shape == (48, 64, 3)


def test_only_recorded_unchanged_sources_are_opened(tmp_path, monkeypatch):
    from tests.test_cache import _rewrite_same_size_and_mtime

    frames, video, folder, seq = _sources(tmp_path)
    run = _recording_run(tmp_path / "run", [video, folder])
    other = tmp_path / "other.avi"
    other.write_bytes(video.read_bytes())  # the same bytes, but no run recorded this path
    assert "not a camera source that a run here recorded" in source_problem(str(other), run)
    assert "not a camera source" in source_problem("/etc/passwd", run)
    assert source_problem(str(video), run) is None
    monkeypatch.setattr(tracker.view, "RECHECK_SECONDS", 0.0)
    _rewrite_same_size_and_mtime(video, video.stat().st_size // 2)  # replaced in place since the run
    assert source_problem(str(video), run) == f"{video}: changed since the run read it (its content differs)"
    assert read_frame(str(video), 2, run) is None
    cv2.imwrite(str(folder / "000002.png"), np.zeros((48, 64, 3), np.uint8))
    assert "changed since the run read it" in source_problem(str(folder), run)
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    assert "no longer there" in source_problem(str(folder), run)


def test_streamlit_command_is_local_and_quiet():
    cmd = streamlit_command(viewer_script(), 8765, "127.0.0.1")
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert cmd[2:5] == ["streamlit", "run", str(viewer_script())]
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8765"
    assert flags["--browser.gatherUsageStats"] == "false" and flags["--server.headless"] == "true"
    assert flags["--server.enableCORS"] == "true" and flags["--server.enableXsrfProtection"] == "true"
    hosts = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--server.allowedHosts"]
    assert hosts == ["localhost", "127.0.0.1", "::1"]
    assert allowed_hosts("0.0.0.0") == ["localhost", "127.0.0.1", "::1"]
    assert allowed_hosts("192.168.1.5", ["cams.example.org"]) == [
        "localhost",
        "127.0.0.1",
        "::1",
        "192.168.1.5",
        "cams.example.org",
    ]


def test_the_server_refuses_a_foreign_host_name(tmp_path):
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 sends Host: evil.example;
    the server (started as track-view starts it) refuses its WebSocket, and accepts the loopback names."""
    import socket
    import subprocess
    import time

    app = tmp_path / "app.py"
    app.write_text("import streamlit as st\nst.write('hi')\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        streamlit_command(app, port, "127.0.0.1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def handshake(host: str) -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(
                f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: streamlit\r\n\r\n".encode()
            )
            return c.recv(200).decode(errors="replace").split("\r\n")[0]

    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            assert handshake(host) == "HTTP/1.1 101 Switching Protocols", host
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
            assert handshake(host) == "HTTP/1.1 403 Forbidden", host
    finally:
        server.terminate()
        server.wait(timeout=30)


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


def test_track_view_warns_of_an_incomplete_run_and_passes_allowed_hosts(tmp_path, capsys, monkeypatch):
    from tracker.store import write_store

    run = tmp_path / "run"
    run.mkdir()
    write_store(run / "results.sqlite", meta={"run_id": "r1"}, cameras=[], tracklets=[])  # no manifest
    started = {}

    def execve(path, cmd, env):
        started.update(cmd=cmd, env=env)
        raise SystemExit(0)

    monkeypatch.setattr(tracker.view.os, "execve", execve)
    with pytest.raises(SystemExit):
        main([str(run), "--address", "0.0.0.0", "--allow-host", "cams.example.org"])
    out = capsys.readouterr().out
    assert f"track-view: warning: {run}: incomplete: no manifest.json" in out
    assert "add --allow-host NAME" not in out  # given
    hosts = [started["cmd"][i + 1] for i, a in enumerate(started["cmd"]) if a == "--server.allowedHosts"]
    assert hosts == ["localhost", "127.0.0.1", "::1", "cams.example.org"]
    assert started["env"][tracker.view.PATH_ENV] == str(run.resolve())
    with pytest.raises(SystemExit):
        main([str(run), "--address", "0.0.0.0"])
    assert "add --allow-host NAME for the name (or address) other machines use" in capsys.readouterr().out
