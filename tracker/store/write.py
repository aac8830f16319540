"""Writing a run into a new results store: the one place a run's results are written.

The pipeline writes a store once, in one transaction, into a temporary file that
:func:`tracker.fsutil.atomic_path` renames over the previous database, so a crashed run leaves the previous
results intact::

    with atomic_path(run_dir / "results.sqlite") as tmp:
        write_store(tmp, meta=run_meta, cameras=cameras, tracklets=tracklets, evidence=evidence)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tracker.geometry import xyxy_to_xywh
from tracker.store.codec import encode_jpeg
from tracker.store.schema import BOX_INDEXES, Database, dumps
from tracker.types import CameraInfo, Tracklet


def write_store(
    path: str | Path,
    meta: dict,
    cameras: Sequence[CameraInfo],
    tracklets: Sequence[Tracklet],
    evidence: Iterable[Any] = (),
) -> None:
    """Write a whole run into a new store at ``path`` (a file there is replaced) in one transaction.

    ``meta`` is the run.json dict (JSON-serialisable; numpy values are converted); ``cameras`` in
    pipeline order; ``tracklets`` with ``global_id`` from association (``-1``: not associated, each
    such tracklet becomes an identity of its own); ``evidence`` records with ``global_id``, ``a``,
    ``b``, ``distance``, ``terms``, ``reason`` (objects or dicts).
    """
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise ValueError(f"camera names are not unique: {names}")
    known = set(names)
    for t in tracklets:
        if t.camera not in known:
            raise ValueError(f"tracklet {t.key} is of camera {t.camera!r}, not among {names}")
    associated = any(t.global_id >= 0 for t in tracklets)
    next_id = max([0] + [int(t.global_id) for t in tracklets]) + 1
    ids: dict[tuple[str, int], int] = {}
    order = {n: i for i, n in enumerate(names)}
    for t in sorted(tracklets, key=lambda t: (order[t.camera], t.track_id)):
        if t.key in ids:
            raise ValueError(f"tracklet {t.key} appears twice")
        if t.global_id >= 0:
            ids[t.key] = int(t.global_id)
        else:
            ids[t.key] = next_id
            next_id += 1
    with Database.create(path) as store, store._transaction() as db:
        for name in ("track_boxes_frame", "track_boxes_global", "track_boxes_tracklet"):
            db.execute(f"DROP INDEX IF EXISTS {name}")
        db.executemany(
            "INSERT INTO run VALUES (?, ?)",
            [("meta", dumps(meta)), ("associated", dumps(associated)), ("max_global_id", dumps(next_id - 1))],
        )
        db.executemany(
            "INSERT INTO cameras VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    i,
                    c.name,
                    _source_path(c.source),
                    int(c.width),
                    int(c.height),
                    float(c.fps),
                    float(c.offset),
                    None if c.frames_total is None else int(c.frames_total),
                    int(c.frames_processed),
                    None if c.homography is None else dumps(np.asarray(c.homography, np.float64)),
                )
                for i, c in enumerate(cameras)
            ],
        )
        db.executemany(
            "INSERT INTO tracklets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_tracklet_row(t, ids[t.key]) for t in tracklets),
        )
        db.executemany(
            "INSERT INTO track_boxes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row for t in tracklets for row in _box_rows(t, ids[t.key])),
        )
        db.executemany(
            "INSERT INTO crops (camera, track_id, frame, x1, y1, x2, y2, score, quality, jpeg) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    t.camera,
                    int(t.track_id),
                    int(c.frame),
                    *np.asarray(c.box, float).tolist(),
                    float(c.score),
                    float(c.quality),
                    encode_jpeg(c.image),
                )
                for t in tracklets
                for c in t.crops
            ),
        )
        db.executemany(
            "INSERT INTO evidence (global_id, a_camera, a_track, b_camera, b_track, distance, "
            "terms, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (_evidence_fields(e) for e in evidence),
        )
        for statement in BOX_INDEXES.strip().splitlines():
            db.execute(statement)
        db.execute("INSERT INTO identities (global_id) SELECT DISTINCT global_id FROM tracklets")
        store.refresh_identities(None)


def _tracklet_row(t: Tracklet, global_id: int) -> tuple:
    emb = None if t.embedding is None else np.asarray(t.embedding, np.float32).tobytes()
    if not len(t):
        raise ValueError(f"tracklet {t.key} has no frames")
    return (
        t.camera,
        int(t.track_id),
        global_id,
        int(t.frames[0]),
        int(t.frames[-1]),
        float(t.times[0]),
        float(t.times[-1]),
        len(t),
        emb,
    )


def _box_rows(t: Tracklet, global_id: int) -> Iterator[tuple]:
    xywh = xyxy_to_xywh(t.boxes).astype(np.float64).tolist()
    cam, tid = t.camera, int(t.track_id)
    for f, tm, (x, y, w, h), s in zip(t.frames.tolist(), t.times.tolist(), xywh, t.scores.tolist()):
        yield (cam, f, tm, tid, global_id, x, y, w, h, s)


def _source_path(source: str | Path) -> str:
    """A camera source as recorded: absolute when it is a path that exists (so the review UI finds it
    from any working directory), else as given (a URL, or a path no longer there)."""
    p = Path(source)
    return str(p.resolve()) if p.exists() else str(source)


def _evidence_fields(ev: Any) -> tuple[int, str, int, str, int, float | None, str, str]:
    """Row values of one association evidence record (any object or mapping with the evidence fields).

    Fields: ``global_id``, ``a`` and ``b`` = ``(camera, track_id)``, ``distance``, ``terms`` (name ->
    float), ``reason``. Read generically so the store does not depend on the association module.
    """
    get = ev.get if isinstance(ev, dict) else (lambda k, d=None: getattr(ev, k, d))
    a, b = get("a"), get("b")
    dist = get("distance")
    dist = None if dist is None or not math.isfinite(float(dist)) else float(dist)
    terms = {str(k): float(v) for k, v in (get("terms") or {}).items()}
    return (
        int(get("global_id")),
        str(a[0]),
        int(a[1]),
        str(b[0]),
        int(b[1]),
        dist,
        dumps(terms),
        str(get("reason") or ""),
    )
