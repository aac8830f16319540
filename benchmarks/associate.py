"""Cross-camera association benchmark: wall time and peak memory of ``tracker.association.associate``
against a naive dense agglomerative baseline (SciPy average linkage on the full N x N cosine distance matrix).

    python benchmarks/associate.py                          # 1k, 10k, 100k tracklets, 2048-d
    python benchmarks/associate.py --sizes 1000 10000 --dim 512
    python benchmarks/associate.py --dense                  # also 100k tracklets arriving 10x faster
    python benchmarks/associate.py --sweep                  # the default threshold: IDF1 on the sample scene

``--sweep`` scores ground-truth tracklets of ``sample_videos/`` (one per camera and gt id run, embeddings of
the offline histogram descriptor, calibration from scene.json) associated at a range of thresholds: the
multi-camera IDF1 of TrackEval and the pairwise precision/recall; the default threshold is taken from there.

Input: :func:`tracker.synthetic.tracklets.synthetic_scene` with 8 cameras on 5 zones (three overlapping pairs,
the rest disjoint; calibrated, with the topology links), people arriving at 1 per second (``--rate``), walking
through 1-5 zones, 20 % of them coming back and 20 % of tracks broken; the first N tracklets by start time are
used. ``--dense`` adds a row where people arrive 10 times faster (100,000 tracklets in half an hour, 60 people
in view of a zone at once): the time-blocked exact search would need more query x window pairs than
``exact_search_max`` and the search runs in a 512-d PCA projection with an exact re-rank.

Every measurement runs in a fresh subprocess, so ``ru_maxrss`` is the peak of that one job. The table gives
the peak resident memory of the whole process (input tracklets included, 0.8 GB of embeddings at 100k x 2048)
and the increase over the resident memory just before the call. The baseline is appearance only (no
constraints, no time or ground evidence), cut at cosine distance ``--baseline-threshold``; it runs up to
``--baseline-max`` tracklets, beyond which the table states the memory its condensed distance matrix alone
would need. Pairwise F1 is against the true identities.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ZONES = (0, 0, 1, 1, 2, 2, 3, 4)
REPO = Path(__file__).resolve().parents[1]


def _scene(n: int, dim: int, rate: float):
    """The first ``n`` tracklets (by start time) of a synthetic scene, with their true identities."""
    from tracker.synthetic.tracklets import synthetic_scene

    per_person = 6.0  # tracklets per person of this layout, measured; a few more people are made than needed
    people = int(n / per_person * 1.15) + 10
    scene = synthetic_scene(
        people, ZONES, dim=dim, seed=0, rate=rate, noise=0.5, camera_shift=0.4, look_alike=0.5
    )
    order = sorted(range(len(scene.tracklets)), key=lambda i: scene.tracklets[i].start_time)[:n]
    if len(order) < n:
        raise SystemExit(f"synthetic scene gave {len(order)} tracklets, fewer than {n}")
    return scene, [scene.tracklets[i] for i in order], scene.person[order]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _one(kind: str, n: int, dim: int, rate: float, threshold: float) -> dict:
    """Run one measurement in this process and return its figures."""
    import numpy as np
    from tracker.associate_config import AssociateConfig

    from tracker.association import associate
    from tracker.evaluate import pairwise_f1

    scene, tracklets, truth = _scene(n, dim, rate)
    before = _rss_mb()
    c0, t0 = time.process_time(), time.perf_counter()
    if kind == "ours":
        result = associate(tracklets, AssociateConfig(links=scene.links), scene.calibration)
        labels, info = result.global_ids, result.info
    else:
        from scipy.cluster.hierarchy import fcluster, linkage
        from scipy.spatial.distance import squareform

        x = np.stack([t.embedding for t in tracklets])
        dist = np.clip(1.0 - x @ x.T, 0, 2)
        np.fill_diagonal(dist, 0)
        labels = fcluster(linkage(squareform(dist, checks=False), method="average"), threshold, "distance")
        info = {}
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "kind": kind,
        "n": n,
        "seconds": seconds,
        "cpu": cpu,
        "peak_mb": peak,
        "added_mb": peak - before,
        "f1": pairwise_f1(np.asarray(labels), truth)[2],
        "identities": int(len(set(labels.tolist()))),
        "people": int(len(set(truth.tolist()))),
        "info": info,
    }


def _measure(kind: str, n: int, args: argparse.Namespace, rate: float) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--one",
        kind,
        str(n),
        "--dim",
        str(args.dim),
        "--rate",
        str(rate),
        "--baseline-threshold",
        str(args.baseline_threshold),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        return {"kind": kind, "n": n, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cell(r: dict) -> str:
    if "error" in r:
        return f"failed: {r['error']}"
    return (
        f"{r['seconds']:.1f} s (CPU {r['cpu']:.1f} s), {r['peak_mb'] / 1024:.2f} GB "
        f"(+{r['added_mb'] / 1024:.2f}), F1 {r['f1']:.3f}"
    )


def _sweep(thresholds: list[float]) -> None:
    """Multi-camera IDF1 of ground-truth tracklets of the sample scene against the threshold."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    from tests.test_associate import gt_tracklets, multicamera_idf1
    from tracker.associate_config import AssociateConfig

    from tracker.association import associate
    from tracker.evaluate import pairwise_f1
    from tracker.reid import ReidConfig, build_embedder

    scene = REPO / "sample_videos"
    tracklets, people = gt_tracklets(scene, build_embedder(ReidConfig(embedder="histogram")))
    print(
        f"# {len(tracklets)} ground-truth tracklets of {len(set(people))} people, histogram descriptor, "
        f"calibration and overlaps from scene.json"
    )
    print("| threshold | multi-camera IDF1 | pairwise precision | pairwise recall | identities |")
    print("|---|---|---|---|---|")
    for t in thresholds:
        result = associate(tracklets, AssociateConfig(threshold=t, calibration=str(scene / "scene.json")))
        with tempfile.TemporaryDirectory() as run_dir:
            idf1 = multicamera_idf1(Path(run_dir), tracklets, result.global_ids, scene / "gt")
        p, r, _ = pairwise_f1(result.global_ids, np.array(people))
        print(f"| {t:.2f} | {idf1:.3f} | {p:.3f} | {r:.3f} | {result.info['identities']} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--rate", type=float, default=1.0, help="people arriving per second")
    parser.add_argument("--dense", action="store_true", help="add 100k tracklets arriving 10x faster")
    parser.add_argument("--baseline-max", type=int, default=10000)
    parser.add_argument("--baseline-threshold", type=float, default=0.5)
    parser.add_argument("--sweep", action="store_true", help="IDF1 of the sample scene against the threshold")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sweep:
        _sweep([0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0])
        return 0
    if args.one:
        print(json.dumps(_one(args.one[0], int(args.one[1]), args.dim, args.rate, args.baseline_threshold)))
        return 0

    runs = [(n, args.rate, f"{n:,}") for n in args.sizes]
    if args.dense:
        runs.append((100000, args.rate * 10, "100,000 dense"))
    print(
        f"# association benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"dim {args.dim}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )
    print(
        "| tracklets | people | ours: wall (CPU), peak RSS (+ added), pairwise F1 | search | edges | "
        "dense SciPy average linkage (appearance only) |"
    )
    print("|---|---|---|---|---|---|")
    for n, rate, label in runs:
        ours = _measure("ours", n, args, rate)
        if n <= args.baseline_max:
            base = _cell(_measure("dense", n, args, rate))
        else:
            gb = n * (n - 1) / 2 * 8 / 1e9
            base = f"skipped: the N x N condensed distances alone would need {gb:,.0f} GB"
        info = ours.get("info", {})
        edges = f"{info['edges']:,}" if "edges" in info else "?"
        print(
            f"| {label} | {ours.get('people', '?')} | {_cell(ours)} | {info.get('search', '?')} | "
            f"{edges} | {base} |",
            flush=True,
        )
    print(f"# load average {os.getloadavg()[0]:.1f} at the end; CPU = user + system time of all threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
