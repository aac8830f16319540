"""Safe file output: names safe as file names, atomic writes, and the run directory (:class:`RunDir`), the
one way anything is written into a run.

* Names: :func:`check_name` admits a camera name as a file name once, wherever it came from (``--names``, a
  config file, a file stem, a results store read back).
* Paths: :func:`inside` joins parts onto a root and refuses anything that would leave it (``..``, an
  absolute part, a symlink pointing out), so no name or store value can point a read or write elsewhere;
  :func:`entry` (what writers use) does not follow the last name either, so a planted link is replaced,
  never written through.
* Atomic writes: :func:`atomic_path` writes a hidden ``.<name>.<random>.part`` file beside the target and
  renames it, so an interrupted write leaves the previous file or none, never half of one.
* The run directory: one writer at a time (:meth:`RunDir.lock`, an ``flock`` that dies with its process),
  stale partial files of an interrupted writer removed at start (:meth:`RunDir.remove_stale`), and outputs
  written into a staging folder and committed in one step (:meth:`RunDir.commit`): the previous manifest is
  removed, the staged files are renamed into place, superseded outputs are removed, and a new
  ``manifest.json`` listing every output with its size and sha256 is written last. A directory with a
  manifest is consistent; one whose results store says it was written by this version but that has no
  manifest was interrupted while its outputs were being replaced (:meth:`RunDir.verify`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import fnmatch
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tracker.errors import InputError

MAX_NAME = 100
_NAME = re.compile(r"^\w[\w .+@=,()\[\]-]*$")

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
LOCK = ".lock"
STAGING = ".staging"
# What atomic_path leaves when its process is killed: ``.<name>.<8 random characters>.part[<suffix>]``.
PART = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.part(\.[^./]*)?$")
PROBE = ".write-test"  # prefix of the probe file that checks a run directory is writable
# Folders of a run directory that hold outputs or cache entries (stale partial files are looked for there).
RUN_FOLDERS = ("", "cache", "cache/chunks", "mot", "videos")
MUTABLE = frozenset({"results.sqlite"})  # changed in place by corrections: listed, not hashed


def check_name(name: str, what: str) -> str:
    """``name`` when it is safe as a file name (camera names become ``mot/<name>.txt``), else InputError.

    Safe: 1-100 characters, starting with a letter, digit or ``_``, then letters, digits and ``_ .+@=,()[]-``
    only: no path separators, no ``..`` (a leading dot), no control characters.
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not _NAME.match(name) or ".." in name:
        raise InputError(
            f"{what}: {name!r} is not a safe camera name (1-{MAX_NAME} letters, digits, spaces and "
            "._-+@=,()[], starting with a letter or digit; no '/' or '..')"
        )
    return name


def inside(root: str | Path, *parts: str, what: str = "the run directory") -> Path:
    """``root / parts...`` resolved (symlinks followed), or InputError when that is not inside ``root``.

    The one check that keeps reads and writes of a run directory inside it, whatever the parts (camera names
    read from a store, paths listed in a manifest); ``what`` names ``root`` in the message.
    """
    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and not path.is_relative_to(base):
        raise InputError(f"{'/'.join(parts)}: outside {what} {base}")
    return path


def entry(root: str | Path, *parts: str) -> Path:
    """The path to write or remove ``root / parts``: its folder resolved and checked by :func:`inside`, its
    own name not followed, so writing replaces (and removing removes) a symlink there instead of the file it
    points to. InputError when it would leave ``root``."""
    rel = Path(*parts)
    if rel.name in ("", ".", "..") or rel.is_absolute():
        raise InputError(f"{rel}: not a file name in the run directory")
    return inside(root, *rel.parent.parts) / rel.name


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success rename it onto ``target``.

    The temporary name is ``.<name>.<random>.part<suffix>``: hidden, marked as partial, and ending in
    ``suffix`` (default: the target's own), so libraries that choose a format by extension keep working.
    On error the temporary file is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.",
        suffix=".part" + (target.suffix if suffix is None else suffix),
        dir=target.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def atomic_write_json(target: str | Path, data: Any) -> None:
    atomic_write_text(target, json.dumps(data, indent=2, sort_keys=False, default=json_default) + "\n")


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for numpy values, paths and dataclasses."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a whole file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_HASHES: dict[tuple, str] = {}  # (path, inode, size, mtime_ns, ctime_ns) -> sha256


def _cached_sha256(path: Path) -> str:
    """:func:`file_sha256`, remembered for a file whose inode, size, modification and change times are
    unchanged (the review UI checks a run on every page; a write changes the change time)."""
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _HASHES:
        _HASHES[key] = file_sha256(path)
    return _HASHES[key]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class RunDir:
    """A run directory ``root``: confined paths, the writer's lock, staging and the one-step commit.

    ``path(*parts)`` is the only way to name a file in it (see :func:`inside`). Writers (``track-cameras``,
    ``track-export``, the review UI's re-export) hold :meth:`lock` while they write, remove what an
    interrupted writer left (:meth:`remove_stale`), write their outputs into :meth:`staging` and
    :meth:`commit` them. Readers check :meth:`verify`.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, *parts: str) -> Path:
        """``root / parts`` to write or remove (see :func:`entry`), refused (InputError) when it would leave
        the run directory."""
        return entry(self.root, *parts)

    def check_writable(self) -> None:
        """Create the run directory if needed and check a file can be created in it; InputError otherwise."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=PROBE + ".", dir=self.root)  # a new name: follows no link
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise InputError(f"{self.root}: cannot write the run there ({exc.strerror or exc})") from None

    # ------------------------------------------------------------------------------------------ lock

    @contextlib.contextmanager
    def lock(self, holder: str) -> Iterator[None]:
        """Hold the run directory's writer lock (``RUN_DIR/.lock``) for the ``with`` block.

        A second writer gets an InputError naming the holder (``holder``, its pid, host and start time). The
        lock is an ``flock`` on the file, so a killed writer never leaves the directory locked; the file is
        removed on release.
        """
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(LOCK)
        while True:
            if (
                path.is_symlink()
            ):  # planted: a lock file is never a link (nor followed to truncate its target)
                path.unlink()
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = _read_holder(fd)
                os.close(fd)
                raise InputError(
                    f"{self.root}: {other} is writing this run directory; wait for it to finish or use "
                    "another --out"
                ) from None
            try:  # the previous holder may have removed the file between our open and our lock
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        info = {
            "holder": holder,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": sys.argv,
        }
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode())
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)

    # ------------------------------------------------------------------------------- stale, staging

    def remove_stale(self) -> list[Path]:
        """Remove what an interrupted writer left: ``.part`` files of atomic writes (in the run's own folders
        only), the write probe and the staging folder. Call it holding :meth:`lock`. Returns what was
        removed."""
        removed = []
        for sub in RUN_FOLDERS:
            folder = self.root / sub
            if not folder.is_dir() or folder.is_symlink():
                continue
            for p in folder.iterdir():
                if (PART.match(p.name) or p.name.startswith(PROBE)) and (p.is_file() or p.is_symlink()):
                    p.unlink(missing_ok=True)
                    removed.append(p)
        staging = self.root / STAGING
        if staging.is_symlink():
            staging.unlink()
            removed.append(staging)
        elif staging.exists():
            shutil.rmtree(staging)
            removed.append(staging)
        return removed

    @contextlib.contextmanager
    def staging(self) -> Iterator[RunDir]:
        """A new, empty staging folder (``RUN_DIR/.staging``) to write outputs into and :meth:`commit`;
        removed when the ``with`` block fails (a killed process leaves it to :meth:`remove_stale`)."""
        path = self.root / STAGING
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        try:
            yield RunDir(path)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise

    # -------------------------------------------------------------------------------------- manifest

    def manifest(self) -> dict | None:
        """The run's manifest (``{"format", "run_id", "written", "files": {relpath: {"size", "sha256"}}}``),
        or None when there is none or it cannot be read."""
        path = self.root / MANIFEST
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            return None
        return data

    def commit(
        self,
        stage: RunDir,
        owned: Iterable[str],
        run_id: str | None,
        manifest: bool = True,
    ) -> dict | None:
        """Move every file of ``stage`` into the run directory in one step and write the manifest last.

        ``owned``: glob patterns (relative paths) of the outputs this writer produces; files matching them
        that ``stage`` does not hold are superseded and removed (listed in the old manifest, or on disk in a
        directory that already holds a run), files matching none are left alone. ``run_id``: the run the
        outputs belong to (the results store records the same id); entries of the old manifest outside
        ``owned`` are kept when it is of the same run. ``manifest`` False (a run written before manifests
        existed): the files are moved, no manifest is written. Returns the new manifest.

        A kill during the commit leaves no manifest, so readers see the directory as incomplete and the next
        run completes it.
        """
        owned = tuple(owned)
        staged = sorted(p.relative_to(stage.root).as_posix() for p in stage.root.rglob("*") if p.is_file())
        entries = {}
        for rel in staged:
            src = stage.root / rel
            with open(src, "rb") as f:
                os.fsync(f.fileno())
            entry: dict[str, Any] = {"size": src.stat().st_size}
            if rel not in MUTABLE:
                entry["sha256"] = file_sha256(src)
            entries[rel] = entry
        old = self.manifest()
        keep = {}
        if old is not None and old.get("run_id") == run_id:
            keep = {k: v for k, v in old["files"].items() if isinstance(k, str) and not _owned(k, owned)}
        superseded = self._owned_files(owned, old) - set(staged)
        targets = {rel: self.path(rel) for rel in staged}  # every target checked before anything changes
        (self.root / MANIFEST).unlink(missing_ok=True)
        _fsync_dir(self.root)
        for rel, target in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage.root / rel, target)
        for rel in sorted(superseded):
            with contextlib.suppress(InputError, OSError):
                target = self.path(rel)
                if target.is_file() or target.is_symlink():
                    target.unlink()
                if target.parent != self.root.resolve():
                    target.parent.rmdir()  # an output folder left empty (videos/ after --no-video)
        for sub in {str(Path(rel).parent) for rel in staged}:
            _fsync_dir(self.root / sub)
        shutil.rmtree(stage.root, ignore_errors=True)
        if not manifest:
            return None
        data = {
            "format": MANIFEST_FORMAT,
            "tool": "multicam-tracker",
            "run_id": run_id,
            "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "files": dict(sorted({**keep, **entries}.items())),
        }
        with atomic_path(self.path(MANIFEST)) as tmp:
            with open(tmp, "w") as f:
                f.write(json.dumps(data, indent=2) + "\n")
                f.flush()
                os.fsync(f.fileno())
        _fsync_dir(self.root)
        return data

    def _owned_files(self, owned: tuple[str, ...], old: dict | None) -> set[str]:
        """Outputs matching ``owned`` that exist now: those the old manifest lists and the owned plain names
        (no wildcard: ``metrics.json``, which another command writes after the manifest) on disk; without a
        manifest (a run written before manifests, or one interrupted mid-commit), in a directory that holds a
        run (a results store or run.json), every file on disk matching them."""
        if old is not None:
            listed = {k for k in old["files"] if isinstance(k, str) and _owned(k, owned)}
            plain = {p for p in owned if not any(c in p for c in "*?[") and (self.root / p).is_file()}
            return listed | plain
        found: set[str] = set()
        if not ((self.root / "results.sqlite").is_file() or (self.root / "run.json").is_file()):
            return found
        for pattern in owned:
            folder, _, name = pattern.rpartition("/")
            base = self.root / folder
            if base.is_dir() and not base.is_symlink():
                found.update(
                    f"{folder}/{p.name}" if folder else p.name
                    for p in base.iterdir()
                    if p.is_file() and fnmatch.fnmatchcase(p.name, name)
                )
        return found

    def incomplete(self, store_run_id: str | None) -> str | None:
        """Why the run directory is incomplete, in one line, or None.

        ``store_run_id``: the run id its results store records (None: written before run ids existed; such a
        run has no manifest and counts as complete). Incomplete: the store has a run id but there is no
        manifest (a run was interrupted while replacing its outputs), or the manifest is of another run.
        """
        data = self.manifest()
        if data is None:
            if store_run_id is None:
                return None
            return (
                f"{self.root}: incomplete: no {MANIFEST} (a run was interrupted while writing its outputs); "
                "run the same track-cameras command again to complete it"
            )
        if data.get("run_id") != store_run_id:
            return (
                f"{self.root}: inconsistent: {MANIFEST} is of run {data.get('run_id')}, results.sqlite of "
                f"run {store_run_id}; run track-cameras again to complete it"
            )
        return None

    def verify(self, store_run_id: str | None, hashes: bool = True) -> list[str]:
        """Why the run directory is not consistent, one line a problem; [] when it is.

        :meth:`incomplete`, then every file the manifest lists must be there with its size (and, with
        ``hashes``, its sha256; results.sqlite, which corrections change in place, only needs to be there).
        """
        problem = self.incomplete(store_run_id)
        data = self.manifest()
        if problem or data is None:
            return [problem] if problem else []
        problems = []
        for rel, entry in data["files"].items():
            try:
                path = self.path(rel)
            except InputError as exc:
                problems.append(f"{MANIFEST}: {exc}")
                continue
            if not path.is_file():
                problems.append(f"{rel}: missing (listed in {MANIFEST})")
            elif rel in MUTABLE or not isinstance(entry, dict):
                continue
            elif path.stat().st_size != entry.get("size"):
                problems.append(f"{rel}: changed since the run wrote it (size differs from {MANIFEST})")
            elif hashes and _cached_sha256(path) != entry.get("sha256"):
                problems.append(f"{rel}: changed since the run wrote it (content differs from {MANIFEST})")
        return problems


def _owned(rel: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(rel, p) for p in patterns)


def _read_holder(fd: int) -> str:
    """Who holds a lock, in words, from the lock file's JSON (or 'another process')."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 65536).decode() or "{}")
        return (
            f"another {info.get('holder', 'process')} (pid {info.get('pid')} on {info.get('host')}, "
            f"since {info.get('since')})"
        )
    except (OSError, ValueError, AttributeError):
        return "another process"
