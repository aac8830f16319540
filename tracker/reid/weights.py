"""Where model weights come from: a configured file, the model cache, or a one-time download into it.

No torch import here: the download is plain ``urllib`` with a short timeout, a progress bar, a size
check against Content-Length, an optional sha256 (prefix) check and an atomic rename, so an interrupted
download never leaves a half file under the final name. A failed name lookup fails at once.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path

from tracker import env
from tracker.errors import InputError
from tracker.fsutil import atomic_path

log = logging.getLogger(__name__)

FASTREID_MGN_FILE = "market_mgn_R50-ibn.pth"
# The MGN-MobileNetV2 that `reid-train --backbone mobilenetv2` makes from Market-1501; `reid: auto` takes
# it from the model cache before fast-reid's download (it is never downloaded: research-only data).
OWN_MGN_FILE = "mgn_mobilenetv2_market1501.safetensors"
# torchvision's ImageNet ResNet-50 (IMAGENET1K_V1, the weights MGN and fast-reid started from); the
# hex part of the file name is the start of its sha256.
RESNET50_URL = "https://download.pytorch.org/models/resnet50-0676ba61.pth"
RESNET50_FILE = "resnet50-0676ba61.pth"
RESNET50_SHA256 = "0676ba61"
CONNECT_TIMEOUT = 10.0  # seconds without data before giving up
CHUNK = 1 << 20


class DownloadError(Exception):
    """A download that did not produce a complete, verified file (network, size or checksum)."""


def reid_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``<model cache>/reid``, where the MGN checkpoint is looked for and downloaded to (``cache_dir``: the
    model cache, None: the default one)."""
    path = env.cache_dir(cache_dir) / "reid"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    timeout: float = CONNECT_TIMEOUT,
    progress: bool = True,
) -> str:
    """Download ``url`` to ``dest`` atomically; return the file's hex sha256.

    Raises :class:`DownloadError` when the server cannot be reached (at once when the name does not
    resolve), stalls for ``timeout`` seconds, sends fewer bytes than its Content-Length, or the sha256
    does not start with ``sha256``. ``dest`` is untouched on failure.
    """
    from tqdm import tqdm

    dest = Path(dest)
    request = urllib.request.Request(url, headers={"User-Agent": "multicam-tracker"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            digest = hashlib.sha256()
            received = 0
            with (
                atomic_path(dest) as tmp,
                open(tmp, "wb") as out,
                tqdm(
                    total=total or None,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=not progress,
                    leave=False,
                ) as bar,
            ):
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                out.flush()
                if total and received != total:
                    raise DownloadError(f"{url}: received {received} of {total} bytes")
                hexdigest = digest.hexdigest()
                if sha256 and not hexdigest.startswith(sha256.lower()):
                    raise DownloadError(
                        f"{url}: sha256 {hexdigest[:12]}... does not match the expected {sha256}"
                    )
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: {exc.reason}") from None
    except (TimeoutError, http.client.HTTPException, OSError) as exc:
        raise DownloadError(f"{url}: {type(exc).__name__}: {exc}") from None
    log.info("downloaded %s (%d bytes, sha256 %s)", dest, received, hexdigest[:12])
    return hexdigest


def fetch(
    url: str, dest: Path, allow_download: bool, sha256: str | None = None, offline: bool = False
) -> tuple[Path | None, str | None]:
    """``dest`` if it exists, else download it when allowed (and not ``offline``). Returns (path or None, why
    not)."""
    if dest.is_file():
        return dest, None
    if offline:
        return None, f"{dest.name} is not in the model cache and offline mode forbids downloading it"
    if not allow_download:
        return None, f"{dest.name} is not in the model cache and downloads are disabled"
    try:
        download(url, dest, sha256=sha256)
    except DownloadError as exc:
        return None, f"download failed: {exc}"
    return dest, None


def resolve_mgn_weights(
    weights: str | None,
    url: str,
    allow_download: bool,
    sha256: str | None = None,
    offline: bool = False,
    cache_dir: str | Path | None = None,
) -> tuple[Path | None, str | None]:
    """The MGN checkpoint to use, in the order of ``reid: auto``.

    1. ``weights`` (the configured file; missing is an InputError, not a silent fallback);
    2. ``<model cache>/reid/`` :data:`OWN_MGN_FILE` (the network ``reid-train`` makes, copied there);
    3. ``<model cache>/reid/<file name of url>``;
    4. a download of ``url`` there, unless offline or ``allow_download`` is False.

    Returns (path, None) or (None, the reason none could be had).
    """
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise InputError(f"reid.weights: {path}: file not found")
        return path, None
    own = reid_cache_dir(cache_dir) / OWN_MGN_FILE
    if own.is_file():
        return own, None
    name = url.rstrip("/").rsplit("/", 1)[-1] or FASTREID_MGN_FILE
    return fetch(url, reid_cache_dir(cache_dir) / name, allow_download, sha256, offline)


def resolve_resnet50(
    allow_download: bool = True, offline: bool = False, cache_dir: str | Path | None = None
) -> tuple[Path | None, str | None]:
    """torchvision's ImageNet ResNet-50 weights: torch hub's checkpoint folder, the model cache, or a
    download into the model cache. Returns (path, None) or (None, why not)."""
    import os

    hub = (
        Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
        / "hub"
        / "checkpoints"
        / RESNET50_FILE
    )
    if hub.is_file():
        return hub, None
    dest = env.cache_dir(cache_dir) / "torchvision" / RESNET50_FILE
    return fetch(RESNET50_URL, dest, allow_download, RESNET50_SHA256, offline)
