"""Safe file output: atomic writes (a temporary file beside the target, then a rename) and names that are
safe to use as file names.

An interrupted run therefore leaves either the previous file or none, never half of one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracker.errors import InputError

MAX_NAME = 100
_NAME = re.compile(r"^\w[\w .+@=,()\[\]-]*$")


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
