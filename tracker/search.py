"""Person search: rank a run's identities and tracklets by appearance distance to a query crop.

The query is embedded with the run's own embedder (rebuilt from the results store's run metadata) and
compared with every stored tracklet embedding by cosine distance (``1 - dot``; both are L2-normalised).
An identity's distance is that of its closest tracklet. Embeddings are read in batches, so memory stays
bounded whatever the number of tracklets.

``track-search RUN_DIR --query crop.jpg [--top 10] [--json]`` prints the ranking.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tracker.config import ModelsConfig, ReidConfig, from_dict
from tracker.errors import InputError, cli_entry
from tracker.store import ResultsStore, TrackletInfo
from tracker.video import decode_image_bytes

MAX_QUERY_BYTES = 64 << 20  # an encoded query image (a person crop or a photo)


@dataclass(frozen=True)
class TrackletMatch:
    """A tracklet ranked by its embedding's cosine distance to the query."""

    camera: str
    track_id: int
    global_id: int
    first_time: float
    last_time: float
    distance: float


@dataclass(frozen=True)
class IdentityMatch:
    """An identity ranked by its closest tracklet; ``best`` is that tracklet."""

    global_id: int
    label: str
    cameras: tuple[str, ...]
    first_time: float
    last_time: float
    distance: float
    best: TrackletMatch


@dataclass(frozen=True)
class SearchResult:
    identities: list[IdentityMatch]
    tracklets: list[TrackletMatch]


def run_reid_config(meta: dict) -> ReidConfig | None:
    """The :class:`~tracker.config.ReidConfig` that rebuilds the run's embedder: the run's resolved ``reid``
    config (run.json ``config.reid``) with downloads off (search must not fetch a different model) and the
    device chosen for this machine. None when the run used no embedder."""
    if not meta.get("embedder"):
        return None
    cfg = from_dict(ReidConfig, meta.get("config", {}).get("reid") or {}, "results store run metadata: reid")
    return dataclasses.replace(cfg, download=False, device="auto")


def run_embedder(meta: dict) -> Any | None:
    """The run's embedder rebuilt (``embed(crops) -> (N, D)``), or None when the run used none."""
    cfg = run_reid_config(meta)
    if cfg is None:
        return None
    from tracker.reid import build_embedder

    cache = (meta.get("config", {}).get("models") or {}).get("cache_dir")
    return build_embedder(cfg, ModelsConfig(offline=True, cache_dir=cache))


def embed_query(embedder: Any, image: np.ndarray) -> np.ndarray:
    """(D,) float32 L2-normalised embedding of one ``uint8 (H, W, 3)`` BGR crop."""
    vec = np.asarray(embedder.embed([image]), np.float32)[0]
    return vec / max(float(np.linalg.norm(vec)), 1e-12)


def search(store: ResultsStore, query: np.ndarray, top: int = 10, batch: int = 8192) -> SearchResult:
    """The ``top`` closest identities and tracklets to the (D,) ``query`` embedding, closest first.

    Raises InputError when the run has no embeddings or their size differs from the query's.
    """
    query = np.asarray(query, np.float32).ravel()
    best_tracklets: list[tuple[float, int, TrackletInfo]] = []  # max-heap by -distance, size <= top
    by_identity: dict[int, tuple[float, TrackletInfo]] = {}
    seen = 0
    for infos, vecs in store.embedding_batches(batch):
        if vecs.shape[1] != len(query):
            raise InputError(
                f"{store.path}: stored embeddings have {vecs.shape[1]} dimensions, the query "
                f"embedding {len(query)}: the run's embedder could not be rebuilt as it was"
            )
        dist = 1.0 - vecs @ query
        for d, info in zip(dist.tolist(), infos):
            item = (-d, -seen, info)
            seen += 1
            if len(best_tracklets) < top:
                heapq.heappush(best_tracklets, item)
            elif item > best_tracklets[0]:
                heapq.heapreplace(best_tracklets, item)
            if info.global_id not in by_identity or d < by_identity[info.global_id][0]:
                by_identity[info.global_id] = (d, info)
    if not seen:
        raise InputError(f"{store.path}: no tracklet has an appearance embedding, nothing to search")
    tracklets = [_match(info, -nd) for nd, _, info in sorted(best_tracklets, reverse=True)]
    identities = []
    for gid, (d, info) in sorted(by_identity.items(), key=lambda kv: (kv[1][0], kv[0]))[:top]:
        ident = store.identity(gid)
        identities.append(
            IdentityMatch(
                gid, ident.label, ident.cameras, ident.first_time, ident.last_time, d, _match(info, d)
            )
        )
    return SearchResult(identities, tracklets)


def _match(info: TrackletInfo, distance: float) -> TrackletMatch:
    return TrackletMatch(
        info.camera, info.track_id, info.global_id, info.first_time, info.last_time, float(distance)
    )


def read_query(path: str | Path) -> np.ndarray:
    """The query crop as ``uint8 (H, W, 3)`` BGR; InputError when it is missing, not an image, or larger
    than an image may be (file size, or pixels read from its header before decoding)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: query image not found")
    if p.stat().st_size > MAX_QUERY_BYTES:
        raise InputError(
            f"{p}: {p.stat().st_size} bytes is more than a query image may have ({MAX_QUERY_BYTES} bytes)"
        )
    return decode_image_bytes(p.read_bytes(), str(p))


def search_run(run_dir: str | Path, image: np.ndarray, top: int = 10) -> SearchResult:
    """Search ``RUN_DIR/results.sqlite`` with a query crop, using the run's own embedder."""
    from tracker.export import results_path

    with ResultsStore.open(results_path(run_dir), readonly=True) as store:
        embedder = run_embedder(store.meta())
        if embedder is None:
            raise InputError(
                f"{run_dir}: the run used no appearance embedder (reid.embedder: none), "
                "so there is nothing to search with"
            )
        return search(store, embed_query(embedder, image), top)


def format_result(result: SearchResult) -> str:
    """Plain-text tables of the ranked identities and tracklets."""
    lines = [
        "identities:",
        f"{'rank':>4}  {'id':>6}  {'distance':>8}  {'first':>8}  {'last':>8}  "
        f"{'best tracklet':<16}  cameras / label",
    ]
    for i, m in enumerate(result.identities, 1):
        best = f"{m.best.camera}/{m.best.track_id}"
        label = f"  [{m.label}]" if m.label else ""
        lines.append(
            f"{i:>4}  {m.global_id:>6}  {m.distance:>8.4f}  {m.first_time:>8.2f}  "
            f"{m.last_time:>8.2f}  {best:<16}  {','.join(m.cameras)}{label}"
        )
    lines += [
        "",
        "tracklets:",
        f"{'rank':>4}  {'camera':<12}  {'track':>6}  {'id':>6}  {'distance':>8}  {'first':>8}  {'last':>8}",
    ]
    for i, t in enumerate(result.tracklets, 1):
        lines.append(
            f"{i:>4}  {t.camera:<12}  {t.track_id:>6}  {t.global_id:>6}  {t.distance:>8.4f}  "
            f"{t.first_time:>8.2f}  {t.last_time:>8.2f}"
        )
    return "\n".join(lines)


@cli_entry("track-search")
def main(argv: list[str] | None = None) -> int:
    """``track-search RUN_DIR --query crop.jpg [--top 10] [--json]``."""
    parser = argparse.ArgumentParser(
        prog="track-search",
        description="Find a person in a run: rank its identities and tracklets by appearance distance to a "
        "query crop, using the embedder the run used.",
    )
    parser.add_argument("run_dir", type=Path, help="a run directory written by track-cameras")
    parser.add_argument("--query", required=True, type=Path, help="an image of the person (a crop)")
    parser.add_argument("--top", type=int, default=10, help="how many identities and tracklets to list (10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    if args.top < 1:
        raise InputError(f"--top {args.top}: must be at least 1")
    image = read_query(args.query)
    result = search_run(args.run_dir, image, args.top)
    if args.json:
        print(json.dumps({"query": str(args.query), **dataclasses.asdict(result)}, indent=2))
    else:
        print(format_result(result))
    return 0
