"""The machine: where models live, what the environment asks for, cores, memory and compute devices.

Environment variables are read here and only at the edge (the command-line tools turn them into config
values): ``MULTICAM_TRACKER_HOME`` (the model cache) and ``MULTICAM_TRACKER_OFFLINE`` (no network use).
"""

from __future__ import annotations

import os
import re
import resource
from pathlib import Path

HOME_ENV = "MULTICAM_TRACKER_HOME"
OFFLINE_ENV = "MULTICAM_TRACKER_OFFLINE"
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


def default_cache_dir() -> Path:
    """The model cache when none is configured: ``$MULTICAM_TRACKER_HOME``, else
    ``~/.cache/multicam-tracker``."""
    root = os.environ.get(HOME_ENV) or os.path.join(Path.home(), ".cache", "multicam-tracker")
    return Path(root).expanduser()


def cache_dir(root: str | Path | None = None) -> Path:
    """The model cache folder ``root`` (None: :func:`default_cache_dir`), created on demand."""
    path = Path(root).expanduser() if root else default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline_requested() -> bool:
    """True when the environment asks for no network use (``MULTICAM_TRACKER_OFFLINE=1``)."""
    return os.environ.get(OFFLINE_ENV, "").lower() in ("1", "true", "yes")


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB: ``VmHWM`` of /proc/self/status on Linux, the high-water
    mark of this program's own memory (``ru_maxrss`` also keeps the parent's size from before ``exec``, which
    inflates spawned workers and benchmarked commands), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def valid_device(name: str) -> bool:
    """Whether ``name`` is a device setting: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    return bool(_DEVICE.match(name))


def resolve_device(name: str) -> str:
    """A device setting made concrete: ``auto`` -> ``cuda:0`` when a CUDA GPU is present, else ``cpu``;
    ``cuda[:N]`` is checked to exist. Raises ``ValueError`` (with a one-line reason) when it cannot be
    used."""
    if not valid_device(name):
        raise ValueError(f"{name!r} is not a device (auto, cpu, cuda, cuda:N)")
    if name == "cpu":
        return "cpu"
    import torch

    if name == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise ValueError(f"{name}: no CUDA GPU is available")
    index = int(name.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ValueError(f"{name}: only {torch.cuda.device_count()} CUDA GPU(s)")
    return f"cuda:{index}"
