"""``track-view RUN_DIR_or_RUNS_DIR [--port 8501]``: start the Streamlit review UI (``apps/viewer.py``).

The server binds to 127.0.0.1 unless ``--address`` says otherwise, runs headless and sends no usage
statistics. The app is told which folder to show through the ``TRACK_VIEW_PATH`` environment variable.

Also the helpers the app uses to find runs and to read files, so that it only ever reads files inside
a run directory (and the camera sources the run recorded), never a path typed by a user.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

import numpy as np

from tracker.errors import InputError, cli_entry

PATH_ENV = "TRACK_VIEW_PATH"
DB_NAME = "results.sqlite"


def viewer_script() -> Path:
    """``apps/viewer.py`` of the repository the package is installed from (editable install)."""
    script = Path(__file__).resolve().parents[1] / "apps" / "viewer.py"
    if not script.is_file():
        raise InputError(
            f"{script}: the review app is missing (track-view needs the multicam-tracker "
            "source checkout, installed with pip install -e)"
        )
    return script


def find_runs(path: str | Path) -> list[Path]:
    """The run directories at ``path``: itself when it holds a run (results.sqlite or run.json), else its
    sub-folders that do, sorted by name. InputError when there is none."""
    p = Path(path)
    if not p.is_dir():
        raise InputError(f"{p}: no such run directory")
    if _is_run(p):
        return [p]
    runs = sorted(d for d in p.iterdir() if d.is_dir() and _is_run(d))
    if not runs:
        raise InputError(f"{p}: not a run directory (no {DB_NAME}) and holds none")
    return runs


def _is_run(p: Path) -> bool:
    return (p / DB_NAME).is_file() or (p / "run.json").is_file()


def run_file(run_dir: str | Path, *parts: str) -> Path:
    """``run_dir / parts...``, refused (InputError) when it would leave the run directory, so names from
    the store (camera names) can never point elsewhere."""
    root = Path(run_dir).resolve()
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root):
        raise InputError(f"{'/'.join(parts)}: outside the run directory {root}")
    return path


def read_frame(source: str, index: int) -> np.ndarray | None:
    """Frame ``index`` (1-based) of a camera source recorded in the store (a video file, a folder of frames
    or a MOT sequence), ``uint8 (H, W, 3)`` BGR; None when the source or that frame cannot be read."""
    try:
        return _opened(source).read(index)
    except InputError:
        return None


@functools.lru_cache(maxsize=32)
def _opened(source: str):
    """Open (and check) each camera source once per process; every frame read after that is one seek."""
    from tracker.video import open_source

    return open_source(source)


def streamlit_command(script: Path, port: int, address: str) -> list[str]:
    """The ``streamlit run`` command line: headless, bound to ``address``, no usage statistics, no file
    watcher, no static file serving, no deploy button."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.enableStaticServing",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


@cli_entry("track-view")
def main(argv: list[str] | None = None) -> int:
    """``track-view RUN_DIR_or_RUNS_DIR [--port 8501] [--address 127.0.0.1]``."""
    parser = argparse.ArgumentParser(
        prog="track-view",
        description="Review a run in the browser: identities, cameras, search and corrections "
        "(a Streamlit app on http://ADDRESS:PORT).",
    )
    parser.add_argument("path", type=Path, help="a run directory, or a folder of run directories")
    parser.add_argument("--port", type=int, default=8501, help="port to serve on (8501)")
    parser.add_argument(
        "--address",
        default="127.0.0.1",
        help="address to bind (127.0.0.1: this machine only; 0.0.0.0 exposes the runs)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: not a TCP port")
    runs = find_runs(args.path)
    script = viewer_script()
    env = dict(
        os.environ, **{PATH_ENV: str(args.path.resolve()), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    )
    print(
        f"track-view: {len(runs)} run(s) under {args.path} at http://{args.address}:{args.port}", flush=True
    )
    cmd = streamlit_command(script, args.port, args.address)
    # Become the Streamlit server (no child left behind when this process is stopped).
    os.execve(cmd[0], cmd, env)
