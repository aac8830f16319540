"""Cross-camera association benchmark: wall time and peak memory of ``tracker.association.associate``
against a naive dense agglomerative baseline (SciPy average linkage on the full N x N cosine distance matrix).

    python benchmarks/associate.py                          # 1k, 10k, 100k tracklets, 2048-d
    python benchmarks/associate.py --sizes 1000 10000 --dim 512
    python benchmarks/associate.py --dense                  # also 100k tracklets arriving 10x faster
    python benchmarks/associate.py --ablate SCENE:RUN ...    # what each part of association is worth

``--ablate`` re-associates the tracklets of existing runs (``track-cameras ... --no-associate --out RUN``, end
to end or with the ground-truth boxes as ``--detections``) of scenes with ground truth (a ``track-sim`` folder,
or a folder of MOTChallenge sequences), no calibration: the default, each part switched off (the penalty on
returns into one camera that only appearance supports; the camera network learned from the run; all
appearance), the experimental adaptive appearance evidence instead of the scaled distance, and oracle appearance (each true person a random vector plus noise) at several noise levels, an
appearance-quality curve of multi-camera IDF1 against the embeddings' cross-camera Rank-1. Scores: TrackEval's
multi-camera IDF1 (all cameras as one sequence), the lowest per-camera IDF1 with global ids, identities
against true people, pairwise precision / recall of "same person" over tracklet pairs.

Input: :func:`tracker.synthetic.tracklets.synthetic_scene` with 8 cameras on 5 zones (three overlapping pairs,
the rest disjoint; calibrated, with the topology links), people arriving at 1 per second (``--rate``), walking
through 1-5 zones, 20 % of them coming back and 20 % of tracks broken; the first N tracklets by start time are
used. ``--dense`` adds a row where people arrive 10 times faster (100,000 tracklets in half an hour, 60 people
in view of a zone at once): the time-blocked exact search would need more query x window pairs than
``exact_search_max`` and the search runs in a 512-d PCA projection with an exact re-rank.

A second column runs the same tracklets without the calibration and the links, so that the camera network
(overlaps by RANSAC, disjoint pairs) is learned from the tracklets, as on a user's uncalibrated cameras.

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

    from tracker.association import associate
    from tracker.config import AssociateConfig
    from tracker.evaluate import pairwise_f1

    scene, tracklets, truth = _scene(n, dim, rate)
    before = _rss_mb()
    c0, t0 = time.process_time(), time.perf_counter()
    if kind == "ours":
        result = associate(tracklets, AssociateConfig(links=scene.links), scene.calibration)
        labels, info = result.global_ids, result.info
    elif kind == "learned":  # no calibration, no links: the camera network is learned from the tracklets
        result = associate(tracklets, AssociateConfig())
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


def _truth(tracklets, gt_dir: Path):
    """The gt person each tracklet follows (:class:`tracker.evaluate.GroundTruth`), ``-(k + 1)`` for none."""
    import numpy as np

    from tracker.evaluate import GroundTruth

    truth = GroundTruth(gt_dir)
    people = (truth.person(t.camera, t.frames, t.boxes) for t in tracklets)
    return np.array([-(k + 1) if p is None else p for k, p in enumerate(people)], np.int64)


def _score(tracklets, ids, gt_dir: Path, frames: dict[str, int], people) -> dict:
    """Multi-camera IDF1 (TrackEval, all cameras as one sequence), per-camera IDF1 and pairwise P/R."""
    import numpy as np

    from tracker.evaluate import evaluate_tracklets, pairwise_f1

    m = evaluate_tracklets(tracklets, ids, gt_dir, frames)
    p, r, _ = pairwise_f1(np.asarray(ids), people)
    cams = [v["IDF1"] for v in m["cameras"].values()]
    return {
        "IDF1": m["ALL"]["IDF1"],
        "cam_min": min(cams),
        "P": p,
        "R": r,
        "ids": len(set(np.asarray(ids).tolist())),
    }


def _oracle(tracklets, people, noise: float, seed: int = 0):
    """Tracklets whose embeddings are their true person's random unit vector plus ``noise`` (per dimension,
    in units of 1 / sqrt(dim)); tracklets of no person get a vector of their own. Returns them and the
    cross-camera Rank-1 of those embeddings (nearest tracklet of another camera is the same person, over
    tracklets whose person another camera sees)."""
    import dataclasses

    import numpy as np

    dim = 128
    rng = np.random.default_rng(seed)
    base = {p: rng.standard_normal(dim) for p in sorted(set(people.tolist()))}
    emb = np.stack([base[p] / np.sqrt(dim) + noise * rng.standard_normal(dim) / np.sqrt(dim) for p in people])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cams = np.array([t.camera for t in tracklets])
    sim = emb @ emb.T
    sim[cams[:, None] == cams[None, :]] = -np.inf
    has = np.array(
        [(people > 0)[k] and np.any((people == people[k]) & (cams != cams[k])) for k in range(len(people))]
    )
    rank1 = float(np.mean(people[np.argmax(sim[has], axis=1)] == people[has])) if has.any() else float("nan")
    out = [dataclasses.replace(t, embedding=e.astype(np.float32)) for t, e in zip(tracklets, emb)]
    return out, rank1


def _ablate(pairs: list[str], noises: list[float]) -> None:
    """Per scene: the default association and each part switched off, then oracle appearance at each noise."""
    import dataclasses

    import numpy as np

    from tracker.association import associate
    from tracker.config import AssociateConfig
    from tracker.store import ResultsStore

    variants = {
        "default": (AssociateConfig(), False),
        "returns into a view: one identity (reentry: person)": (AssociateConfig(reentry="person"), False),
        "returns into a view: new identities (reentry: visit)": (AssociateConfig(reentry="visit"), False),
        "no re-entry penalty (reentry: person)": (
            AssociateConfig(reentry_weight=0.0, reentry="person"),
            False,
        ),
        "returns kept in sight by another view pay too (bridge_returns: false)": (
            AssociateConfig(bridge_returns=False),
            False,
        ),
        "no learned network": (AssociateConfig(learn_network=False), False),
        "adaptive appearance evidence (experimental)": (AssociateConfig(appearance="adaptive"), False),
        "no appearance": (AssociateConfig(), True),
    }
    print(
        "| scene | variant | cross-camera Rank-1 | multi-camera IDF1 | per-camera IDF1 min | identities / people "
        "| pairwise P | pairwise R |"
    )
    print("|---|---|---|---|---|---|---|---|")
    means: dict[str, list] = {}
    for pair in pairs:
        scene_s, _, run_s = pair.partition(":")
        scene, run = Path(scene_s), Path(run_s or scene_s)
        gt_dir = scene / "gt" if (scene / "gt").is_dir() else scene
        with ResultsStore.open(run / "results.sqlite", readonly=True) as store:
            tracklets = store.tracklets()
            sizes = {c.name: (c.width, c.height) for c in store.cameras()}
        meta = json.loads((run / "run.json").read_text())
        frames = {c["name"]: c["frames_processed"] for c in meta["cameras"]}
        people = _truth(tracklets, gt_dir)
        n_people = len({p for p in people.tolist() if p > 0})
        name = f"{scene.name}/{run.name}"
        rows = []
        for label, (cfg, blind) in variants.items():
            used = [dataclasses.replace(t, embedding=None) for t in tracklets] if blind else tracklets
            rows.append(
                (
                    label,
                    "",
                    _score(tracklets, associate(used, cfg, frames=sizes).global_ids, gt_dir, frames, people),
                )
            )
        for noise in noises:
            used, rank1 = _oracle(tracklets, people, noise)
            rows.append(
                (
                    f"oracle appearance, noise {noise:g}",
                    f"{rank1:.2f}",
                    _score(
                        tracklets,
                        associate(used, AssociateConfig(), frames=sizes).global_ids,
                        gt_dir,
                        frames,
                        people,
                    ),
                )
            )
        for label, rank1, m in rows:
            means.setdefault(label, []).append(m)
            print(
                f"| {name} | {label} | {rank1} | {m['IDF1']:.3f} | {m['cam_min']:.3f} | {m['ids']} / {n_people} "
                f"| {m['P']:.2f} | {m['R']:.2f} |",
                flush=True,
            )
    if len(pairs) > 1:
        for label, ms in means.items():
            print(
                f"| mean of {len(pairs)} | {label} | | {np.mean([m['IDF1'] for m in ms]):.3f} | "
                f"{np.mean([m['cam_min'] for m in ms]):.3f} | | {np.mean([m['P'] for m in ms]):.2f} | "
                f"{np.mean([m['R'] for m in ms]):.2f} |"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--rate", type=float, default=1.0, help="people arriving per second")
    parser.add_argument("--dense", action="store_true", help="add 100k tracklets arriving 10x faster")
    parser.add_argument("--baseline-max", type=int, default=10000)
    parser.add_argument("--baseline-threshold", type=float, default=0.5)
    parser.add_argument(
        "--ablate",
        nargs="+",
        metavar="SCENE:RUN",
        help="ablation table: a scene folder (gt/) and a track-cameras --no-associate run of it, per pair",
    )
    parser.add_argument("--noise", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0])
    parser.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ablate:
        _ablate(args.ablate, args.noise)
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
        "ours without calibration or links (network learned) | dense SciPy average linkage (appearance only) |"
    )
    print("|---|---|---|---|---|---|---|")
    for n, rate, label in runs:
        ours = _measure("ours", n, args, rate)
        learned = _cell(_measure("learned", n, args, rate))
        if n <= args.baseline_max:
            base = _cell(_measure("dense", n, args, rate))
        else:
            gb = n * (n - 1) / 2 * 8 / 1e9
            base = f"skipped: the N x N condensed distances alone would need {gb:,.0f} GB"
        info = ours.get("info", {})
        edges = f"{info['edges']:,}" if "edges" in info else "?"
        print(
            f"| {label} | {ours.get('people', '?')} | {_cell(ours)} | {info.get('search', '?')} | "
            f"{edges} | {learned} | {base} |",
            flush=True,
        )
    print(f"# load average {os.getloadavg()[0]:.1f} at the end; CPU = user + system time of all threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
