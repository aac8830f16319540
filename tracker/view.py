"""``track-view RUN_DIR_or_RUNS_DIR [--port 8501]``: start the Streamlit review UI (``apps/viewer.py``).

The server binds to 127.0.0.1 unless ``--address`` says otherwise, runs headless and sends no usage
statistics. It accepts connections only for the loopback host names (``server.allowedHosts``: localhost,
127.0.0.1, ::1, plus the ``--address`` it binds when that is one address), so a web page that rebinds its
own name to 127.0.0.1 (DNS rebinding) cannot reach it; ``--allow-host NAME`` adds a name (``*``: any). The
app is told which folder to show through the ``TRACK_VIEW_PATH`` environment variable.

Also the helpers the app uses to find runs and to read files, so that it only ever reads files inside a run
directory and the camera sources a run recorded, after checking they still are the files the run read
(their content fingerprint), never a path typed by a user.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np

from tracker.errors import InputError, cli_entry
from tracker.export import check_run
from tracker.fsutil import check_name, inside

PATH_ENV = "TRACK_VIEW_PATH"
DB_NAME = "results.sqlite"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Host names the server accepts without ``--allow-host``."""
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
RECHECK_SECONDS = 10.0  # a verified camera source is checked again after this long

__all__ = ["check_run"]  # re-exported for the app: is a run directory consistent


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
    the store (camera names) can never point elsewhere (:func:`tracker.fsutil.inside`)."""
    return inside(run_dir, *parts)


def recorded_sources(run_dir: str | Path) -> dict[str, dict]:
    """The camera sources a run recorded: ``{absolute source path: its run.json camera entry}`` (entries with
    ``name``, ``width``, ``height``, ``source_path`` and ``source_fingerprint``), from the results store's run
    metadata. Runs written before fingerprints were recorded list none."""
    path = run_file(run_dir, DB_NAME)
    if not path.is_file():
        return {}
    st = path.stat()
    return _recorded(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _recorded(path: str, mtime_ns: int, size: int) -> dict[str, dict]:
    from tracker.store import ResultsStore

    with ResultsStore.open(path, readonly=True) as store:
        cameras = store.meta().get("cameras") or []
    out = {}
    for cam in cameras if isinstance(cameras, list) else []:
        if isinstance(cam, dict) and all(
            isinstance(cam.get(k), str) for k in ("name", "source_path", "source_fingerprint")
        ):
            out[cam["source_path"]] = cam
    return out


def camera_source(source: str, run_dir: str | Path | None = None):
    """The camera source ``source`` opened (a ``FrameSource``), when a run recorded it and it still is the
    file (or folder) that run read; InputError saying why not otherwise.

    ``run_dir``: the run that must have recorded it (None: any run under ``$TRACK_VIEW_PATH``, the folder
    track-view serves; no run, no source). The check (path, content fingerprint, frame size) is repeated at
    most every :data:`RECHECK_SECONDS`.
    """
    path = Path(source).resolve()
    runs = [Path(run_dir)] if run_dir is not None else _served_runs()
    entries = [e for r in runs if (e := recorded_sources(r).get(str(path)))]
    if not entries:
        raise InputError(f"{source}: not a camera source that a run here recorded (with its fingerprint)")
    checked = _CHECKED.get(str(path))
    if checked is None or time.monotonic() - checked[0] > RECHECK_SECONDS:
        from tracker.cache import source_fingerprint

        if not (path.is_file() or path.is_dir()):
            raise InputError(f"{source}: no longer there (or not a regular file or folder)")
        checked = _CHECKED[str(path)] = (time.monotonic(), source_fingerprint(path))
    entry = next((e for e in entries if e["source_fingerprint"] == checked[1]), None)
    if entry is None:
        raise InputError(f"{source}: changed since the run read it (its content differs)")
    opened = _opened(str(path), check_name(entry["name"], f"{source}: recorded camera name"))
    if (opened.info.width, opened.info.height) != (entry.get("width"), entry.get("height")):
        raise InputError(f"{source}: frames are {opened.info.width}x{opened.info.height}, the run's were not")
    return opened


_CHECKED: dict[str, tuple[float, str]] = {}  # source path -> (when fingerprinted, its fingerprint)


def _served_runs() -> list[Path]:
    root = os.environ.get(PATH_ENV)
    if not root:
        return []
    try:
        return find_runs(root)
    except InputError:
        return []


def read_frame(source: str, index: int, run_dir: str | Path | None = None) -> np.ndarray | None:
    """Frame ``index`` (1-based) of a camera source a run recorded (a video file, a folder of frames or a MOT
    sequence), ``uint8 (H, W, 3)`` BGR; None when the source may not be opened (see :func:`camera_source`,
    which says why) or that frame cannot be read."""
    try:
        return camera_source(source, run_dir).read(index)
    except InputError:
        return None


def source_problem(source: str, run_dir: str | Path | None = None) -> str | None:
    """Why :func:`read_frame` gives no frames of ``source`` (one line), or None when it can read it."""
    try:
        camera_source(source, run_dir)
    except InputError as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=32)
def _opened(source: str, name: str):
    """Open (and check) each camera source once per process; every frame read after that is one seek."""
    from tracker.video import open_source

    return open_source(source, name)


def allowed_hosts(address: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The Host names the server accepts: the loopback names, the bound ``address`` when it is one address,
    and ``extra`` (``--allow-host``)."""
    hosts = list(LOOPBACK_HOSTS)
    if address not in WILDCARD_ADDRESSES:
        hosts.append(address.strip("[]"))
    hosts.extend(extra)
    return list(dict.fromkeys(hosts))


def streamlit_command(script: Path, port: int, address: str, hosts: list[str] | None = None) -> list[str]:
    """The ``streamlit run`` command line: headless, bound to ``address``, accepting only ``hosts`` as the
    Host header (default :func:`allowed_hosts`), CORS and XSRF protection on, no usage statistics, no file
    watcher, no static file serving, no deploy button."""
    hosts = allowed_hosts(address) if hosts is None else hosts
    allow = [arg for host in hosts for arg in ("--server.allowedHosts", host)]
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
        "--server.enableCORS",
        "true",
        "--server.enableXsrfProtection",
        "true",
        *allow,
    ]


@cli_entry("track-view")
def main(argv: list[str] | None = None) -> int:
    """``track-view RUN_DIR_or_RUNS_DIR [--port 8501] [--address 127.0.0.1] [--allow-host NAME]``."""
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
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept this host name in requests (repeatable; '*.example.org' for subdomains, '*' for "
        "any); by default only localhost, 127.0.0.1, ::1 and --address are, against DNS rebinding",
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
    for run in runs:  # sizes only here (the app checks contents); one line a run
        try:
            problems = check_run(run, hashes=False)
        except InputError as exc:
            problems = [str(exc)]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            print(f"track-view: warning: {problems[0]}{more}", flush=True)
    if args.address in WILDCARD_ADDRESSES and not args.allow_host:
        print(
            f"track-view: serving on every address, but only to the names {', '.join(LOOPBACK_HOSTS)}; "
            "add --allow-host NAME for the name (or address) other machines use",
            flush=True,
        )
    cmd = streamlit_command(script, args.port, args.address, allowed_hosts(args.address, args.allow_host))
    # Become the Streamlit server (no child left behind when this process is stopped).
    os.execve(cmd[0], cmd, env)
