"""Hostile input end to end: nothing outside the run directory is written, nothing untrusted runs.

A run directory may come from someone else (its cache, its results store), and inputs may be anything: the
CLI must answer every input with exit 0 or one error line and exit 2, never a traceback, and never touch a
file outside ``--out`` (its model cache aside). The property-based tests feed it random bytes as videos,
random frame folders and random MOT detection files.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import SAMPLE
from tracker.cli import track_cameras

FAST = ["--quiet", "--offline", "--detector", "motion", "--reid", "histogram", "--workers", "1"]


class _Planted:
    """Unpickling this runs a shell command: what a planted cache entry does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _scene(root: Path) -> list[Path]:
    from tracker.synthetic.render import render_scene

    render_scene(root, cameras=2, people=2, seconds=2, seed=4, width=256, height=144, progress=False)
    return [root / "cam1.mp4", root / "cam2.mp4"]


def test_a_planted_pickle_in_a_received_run_directory_does_not_run(tmp_path):
    """Replace a camera's cache entry (and plant one under the old pickle name) with a pickle that runs a
    command when loaded: the next run recomputes that camera, says so in one warning line, runs nothing."""
    videos = _scene(tmp_path / "scene")
    out = tmp_path / "run"
    args = ["--videos", *map(str, videos), "--out", str(out), *FAST, "--no-video"]
    with pytest.raises(SystemExit) as exc:
        track_cameras(args)
    assert exc.value.code == 0
    (entry,) = (out / "cache").glob("cam1-*.safetensors")
    marker = tmp_path / "pwned"
    planted = pickle.dumps({"format": 1, "value": _Planted(marker)})
    entry.write_bytes(planted)
    entry.with_suffix(".pkl").write_bytes(planted)
    with pytest.raises(SystemExit) as exc:
        track_cameras(args)
    assert exc.value.code == 0 and not marker.exists()
    meta = json.loads((out / "run.json").read_text())
    assert meta["execution"]["cached"] == ["cam2"]  # cam1 was recomputed
    (warning,) = [w for w in meta["warnings"] if w["kind"] == "cache"]
    assert str(entry) in warning["message"] and "recomputing" in warning["message"]
    assert not entry.with_suffix(".pkl").exists()  # the old-format entry was removed, never read
    assert entry.read_bytes()[:8] != planted[:8]  # a data-only entry again


def test_links_planted_in_a_received_run_directory_are_never_written_through(tmp_path):
    """Links in a run directory, to files outside it and inside it, where a run writes its probe, lock,
    outputs and cache entries: the run replaces or removes the links, and every target stays as it was."""
    from tracker.export import check_run

    videos = _scene(tmp_path / "scene")
    out = tmp_path / "run"
    args = ["--videos", *map(str, videos), "--out", str(out), *FAST, "--no-video"]
    with pytest.raises(SystemExit) as exc:
        track_cameras(args)
    assert exc.value.code == 0
    victims = {name: tmp_path / f"victim-{name}.txt" for name in ("probe", "cam1", "cam2", "cache")}
    for v in victims.values():
        v.write_text("precious")
    (entry,) = (out / "cache").glob("cam1-*.safetensors")
    planted = {
        out / ".write-test": victims["probe"],
        out / ".lock": out / "results.sqlite",
        out / "mot" / "cam1.txt": victims["cam1"],  # rewritten by the next run
        out / "mot" / "cam2.txt": victims["cam2"],  # superseded: the next run has no cam2
        entry: victims["cache"],
    }
    for link, target in planted.items():
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    store = (out / "results.sqlite").read_bytes()
    with pytest.raises(SystemExit) as exc:
        track_cameras(["--videos", str(videos[0]), "--out", str(out), *FAST, "--no-video"])
    assert exc.value.code == 0
    assert all(v.read_text() == "precious" for v in victims.values())
    assert not any(p.is_symlink() for p in out.rglob("*")), [p for p in out.rglob("*") if p.is_symlink()]
    assert (out / "results.sqlite").read_bytes() != store and check_run(out) == []  # the new run's store
    assert not (out / "mot" / "cam2.txt").exists() and (out / "mot" / "cam1.txt").read_text() != "precious"
    meta = json.loads((out / "run.json").read_text())
    assert meta["execution"]["cached"] == [] and [w["kind"] for w in meta["warnings"]] == ["cache"]


def _tree(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` but those under ``skip``: relative path -> (size, mtime_ns)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath).resolve().is_relative_to(skip.resolve()):
            dirnames[:] = []
            continue
        for name in filenames:
            p = Path(dirpath) / name
            st_ = p.lstat()
            out[p.relative_to(root).as_posix()] = (st_.st_size, st_.st_mtime_ns)
    return out


_WATCH: dict = {"allowed": None, "bad": []}


def _audit(event: str, args: tuple) -> None:
    """Record Python-level writes outside the allowed folders while a CLI call is being watched."""
    allowed = _WATCH["allowed"]
    if allowed is None:
        return
    paths: list = []
    if event == "open" and len(args) >= 3:
        path, mode, flags = args[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC)
        )
        paths = [path] if writing else []
    elif event == "os.rename" and args[2:4] == (None, None):
        paths = list(args[:2])
    elif event in ("os.remove", "os.rmdir", "os.mkdir") and args[-1] is None:  # (not relative to a dir_fd:
        paths = [args[0]]  # shutil.rmtree's own removals, audited as "shutil.rmtree" with its root)
    elif event in ("os.truncate", "shutil.rmtree"):
        paths = [args[0]]
    elif event == "sqlite3.connect":
        name = os.fsdecode(args[0])
        paths = [name[5:].split("?")[0] if name.startswith("file:") else name]
    for p in paths:
        if not isinstance(p, (str, bytes, os.PathLike)) or str(p) in (":memory:", ""):
            continue
        resolved = Path(os.fsdecode(p)).resolve()
        if not any(resolved.is_relative_to(a) for a in allowed):
            _WATCH["bad"].append((event, str(resolved)))


sys.addaudithook(_audit)


def _cli_answers_sanely(sandbox: Path, args: list[str], out: Path, capfd) -> tuple[int, list[str]]:
    """Run track-cameras in this process on ``args``; check it exits 0 (a consistent run directory) or 2
    (one error line), raised nothing else, printed nothing but its own lines (no library log or Python
    warning, at the file-descriptor level), and wrote nothing outside ``out`` and the model cache."""
    from tracker.export import check_run

    home = Path(os.environ["MULTICAM_TRACKER_HOME"]).resolve()
    before = _tree(sandbox, out)
    capfd.readouterr()
    _WATCH.update(allowed=[out.resolve(), home], bad=[])
    try:
        with pytest.raises(SystemExit) as exc:
            track_cameras(args)
    finally:
        _WATCH["allowed"] = None
    assert not _WATCH["bad"], _WATCH["bad"]
    assert _tree(sandbox, out) == before, "a file outside --out changed"
    code = exc.value.code
    printed = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    lines = [ln for ln in printed if not ln.startswith("WARNING: ")]  # our warning lines, when logged here
    assert code in (0, 2), (code, printed)
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("track-cameras: error: "), printed
        assert not (out / "manifest.json").exists()
    else:
        assert lines == [], printed
        assert check_run(out) == [] and (out / "manifest.json").is_file()
    return code, lines


@functools.lru_cache(maxsize=1)
def _video_bytes() -> bytes:
    return (SAMPLE / "cam3.mp4").read_bytes()


PROPERTY = settings(
    max_examples=int(os.environ.get("SECURITY_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: a whole CLI run per example
    print_blob=True,
)
NAMES = st.text(alphabet="abcAB019 _-.#/:é\\", min_size=1, max_size=12)


@PROPERTY
@given(data=st.data())
def test_random_bytes_as_videos(tmp_path_factory, capfd, data):
    """Random bytes, and a real video cut or corrupted at random places, under random names."""
    sandbox = tmp_path_factory.mktemp("bytes")
    video_bytes = _video_bytes()
    kind = data.draw(st.sampled_from(["random", "cut", "corrupt"]))
    if kind == "random":
        blob = data.draw(st.binary(max_size=4096))
    elif kind == "cut":
        blob = video_bytes[: data.draw(st.integers(0, len(video_bytes)))]
    else:
        blob = bytearray(video_bytes)
        for at in data.draw(st.lists(st.integers(0, len(blob) - 1), min_size=1, max_size=20)):
            blob[at] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    stem = data.draw(NAMES).replace("/", "_").strip()
    if stem.strip(".") == "":  # "", "." and ".." name no file of their own
        stem = "x" + stem
    suffix = data.draw(st.sampled_from([".mp4", ".avi", ".mkv", ".png", ""]))
    video = sandbox / "in" / f"{stem}{suffix}"
    video.parent.mkdir()
    try:
        video.write_bytes(blob)
    except OSError:  # a name this file system refuses
        return
    extra = data.draw(st.sampled_from([[], ["--no-video"], ["--frame-stride", "3"], ["--strict"]]))
    names = data.draw(st.sampled_from([[], ["--names", data.draw(NAMES)]]))
    _cli_answers_sanely(
        sandbox,
        ["--videos", str(video), "--out", str(sandbox / "out"), *FAST, *extra, *names],
        sandbox / "out",
        capfd,
    )


def _image_bytes(data, size: tuple[int, int]) -> bytes:
    kind = data.draw(st.sampled_from(["png", "jpg", "bmp", "random", "cut"]))
    if kind == "random":
        return data.draw(st.binary(max_size=300))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    image = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    encoded = cv2.imencode(".png" if kind == "cut" else f".{kind}", image)[1].tobytes()
    return encoded[: data.draw(st.integers(0, len(encoded)))] if kind == "cut" else encoded


@PROPERTY
@given(data=st.data())
def test_random_frame_folders(tmp_path_factory, capfd, data):
    """Folders of valid, damaged and foreign images of a few sizes, sometimes with a random seqinfo.ini."""
    sandbox = tmp_path_factory.mktemp("frames")
    folder = sandbox / data.draw(st.sampled_from(["frames", "SEQ-01", "cam 2"]))
    folder.mkdir()
    sizes = data.draw(
        st.lists(st.sampled_from([(32, 24), (32, 24), (40, 30), (1, 1)]), min_size=1, max_size=5)
    )
    img_dir = folder
    if data.draw(st.booleans()):  # a MOT sequence folder
        img_dir = folder / "img1"
        img_dir.mkdir()
        lines = data.draw(
            st.lists(
                st.sampled_from(
                    [
                        "imDir=img1",
                        "frameRate=10",
                        "frameRate=0",
                        "frameRate=nan",
                        "seqLength=3",
                        "seqLength=-1",
                        "seqLength=99999999999",
                        "imWidth=32",
                        "imHeight=24",
                        "imWidth=x",
                        "imDir=../..",
                        "name=SEQ",
                    ]
                ),
                max_size=6,
            )
        )
        header = data.draw(st.sampled_from(["[Sequence]\n", "", "[Other]\n"]))
        (folder / "seqinfo.ini").write_text(header + "\n".join(lines) + "\n")
    for i, size in enumerate(sizes, 1):
        ext = data.draw(st.sampled_from([".png", ".jpg", ".bmp", ".txt"]))
        (img_dir / f"{i:06d}{ext}").write_bytes(_image_bytes(data, size))
    extra = data.draw(st.sampled_from([[], ["--no-video"], ["--no-associate"]]))
    out = sandbox / "out"
    _cli_answers_sanely(sandbox, ["--videos", str(folder), "--out", str(out), *FAST, *extra], out, capfd)


MOT_VALUE = st.one_of(
    st.integers(-5, 60).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e308", "", "x", "0x10", "-0", "1e-40"]),
)


@PROPERTY
@given(data=st.data())
def test_random_mot_detection_files(tmp_path_factory, capfd, data):
    """MOT detection files of random rows (any numbers, NaN, inf, text, ragged rows) for a frame folder, and
    for a MOT sequence folder without frames."""
    sandbox = tmp_path_factory.mktemp("mot")
    folder = sandbox / "cam"
    folder.mkdir()
    with_frames = data.draw(st.booleans())
    if with_frames:
        for i in range(1, 5):
            cv2.imwrite(str(folder / f"{i:06d}.png"), np.full((36, 48, 3), 30 * i, np.uint8))
    else:
        (folder / "seqinfo.ini").write_text(
            "[Sequence]\nname=cam\nimDir=img1\nframeRate=5\nseqLength=6\nimWidth=48\nimHeight=36\n"
        )
    rows = data.draw(st.lists(st.lists(MOT_VALUE, min_size=0, max_size=10), max_size=25))
    sep = data.draw(st.sampled_from([",", " ", ", "]))
    det = sandbox / "det.txt"
    det.write_text("".join(sep.join(r) + "\n" for r in rows))
    out = sandbox / "out"
    _cli_answers_sanely(
        sandbox, ["--videos", str(folder), "--detections", str(det), "--out", str(out), *FAST], out, capfd
    )


def test_the_property_checks_catch_a_write_outside(tmp_path, monkeypatch, capfd):
    """The checker itself: a CLI that writes beside --out fails it."""
    import tests.test_security as me

    def rogue(argv):
        (tmp_path / "outside.txt").write_text("oops")
        raise SystemExit(0)

    monkeypatch.setattr(me, "track_cameras", rogue)
    with pytest.raises(AssertionError, match="outside.txt"):
        _cli_answers_sanely(tmp_path, ["--out", str(tmp_path / "out")], tmp_path / "out", capfd)
