"""Re-identification benchmarks: embedding throughput, and the accuracy of the re-identification models.

    python benchmarks/reid.py                       # CPU table (and the CUDA table when a GPU is present)
    python benchmarks/reid.py --write-results       # also put the tables into benchmarks/RESULTS.md
    python benchmarks/reid.py --device cuda --batch-sizes 1,8,32,128,512
    python benchmarks/reid.py --models --threads 2 --work /tmp/reid-bench --write-results

``--models`` (section "Re-identification models" of RESULTS.md): one table for the project's trained
MGN-MobileNetV2 (``--mgn``, default ``<model cache>/reid/mgn_mobilenetv2_market1501.safetensors``), the
offline histogram descriptor, OSNet x0.25 MSMT17 (ONNX) and Intel Open Model Zoo
person-reidentification-retail-0288 / -0287 (OpenVINO, FP32) from ``--models-dir``: Market-1501
standard protocol (junk and distractor ids ignored, same-camera matches of the query's id excluded)
Rank-1 / mAP without and with k-reciprocal re-ranking, MARS-mini tracklet-level Rank-1 / mAP (mean
embedding per tracklet, every tracklet against all others, same-camera matches excluded), and
embedding crops/s (the synthetic mixed-size crops below, batch 32, decoding excluded). Each model's
results are kept in ``--work`` as JSON, so an interrupted run continues where it stopped; ``--reuse``
takes a model's accuracy from ``reid-eval --json`` output of the same evaluation instead of embedding
the datasets again.

Throughput (the default mode):

Every row is measured in the same run on the same crops: synthetic person-sized uint8 BGR crops of mixed
sizes (64-320 px tall, aspect 0.35-0.5, like detections in 1080p video), input 384x128, random weights
(throughput does not depend on them). Each configuration runs one warm-up batch, then at least
``--min-crops`` crops and at least ``--min-seconds`` seconds.

Rows:

* ``MGN embed``: :class:`tracker.reid.extract.MGNEmbedder` end to end (size-sorted batches, one canvas per
  batch resized on the device, fast-reid R50-ibn layout, the network behind the public checkpoint);
* ``MGN naive``: the reference a straightforward implementation would write: per crop PIL image +
  torchvision ``Resize`` (bicubic) / ``ToTensor`` / ``Normalize``, stacked, fp32 contiguous forward;
* ``preprocess only``: the resizing paths without the network: OpenCV per crop into one batch buffer (the
  embedder's CPU path), one padded canvas + `grid_sample` (its GPU path), and the PIL loop;
* ``ResNet-50``: a plain torchvision ResNet-50 forward on ready 384x128 tensors, what MGN's cost is
  measured against (MGN runs three stride-1 ResNet-50 tails: a few ResNet-50s' worth of compute);
* ``histogram``: the offline descriptor (:mod:`tracker.reid.histogram`), numpy + OpenCV.

On CUDA the MGN and ResNet-50 rows repeat for fp32 / fp16 / bf16 and with channels-last memory off.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "RESULTS.md"
SECTION = "## Re-identification"
READING = """Reading it: on a CPU the network is everything. MGN in fast-reid's layout runs three stride-1
ResNet-50 tails (three 24x8 maps), so it costs a few plain ResNet-50 forwards at the same input size; its
embedding rate is the network's rate, and the naive PIL path differs little end to end because its per-crop
resizing (milliseconds) is small next to a CPU forward pass (about a second per crop). Preprocessing alone shows the difference that matters once
the network is fast (on a GPU): the embedder's OpenCV-into-one-buffer CPU path against the PIL loop, and the
padded-canvas + `grid_sample` path that the GPU runs (slow on a CPU, which is why the CPU does not use it).
The offline histogram descriptor is three orders of magnitude faster than MGN on a CPU. On a shared, busy
machine use `--threads 1`: OpenMP threads competing for busy cores slow the convolutions down several-fold."""
HEIGHT, WIDTH = 384, 128


def make_crops(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(n):
        h = int(rng.integers(64, 321))
        w = max(8, int(h * rng.uniform(0.35, 0.5)))
        crops.append(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return crops


def rate(
    fn: Callable[[Sequence[np.ndarray]], object],
    crops: list[np.ndarray],
    batch: int,
    min_crops: int,
    min_seconds: float,
) -> float:
    """Crops per second of ``fn`` called on consecutive batches of ``batch`` crops (after one warm-up)."""
    fn(crops[:batch])
    done, start, i = 0, time.perf_counter(), 0
    while done < max(min_crops, batch) or time.perf_counter() - start < min_seconds:
        chunk = [crops[(i + j) % len(crops)] for j in range(batch)]
        fn(chunk)
        done += batch
        i += batch
    return done / (time.perf_counter() - start)


def naive_preprocess(crops: Sequence[np.ndarray]):
    """The per-crop PIL / torchvision-transforms path: (N, 3, 384, 128) float RGB 0..255 (MGN normalises
    its input itself)."""
    import torch
    from PIL import Image
    from torchvision import transforms as T

    tf = T.Compose([T.Resize((HEIGHT, WIDTH), interpolation=T.InterpolationMode.BICUBIC), T.PILToTensor()])
    return torch.stack([tf(Image.fromarray(np.ascontiguousarray(c[:, :, ::-1]))) for c in crops]).float()


def benchmark(
    device_name: str, batch_sizes: Sequence[int], min_crops: int, min_seconds: float, threads: int
) -> list[tuple[str, str, str, int, float]]:
    """Rows (path, device, precision/memory, batch, crops/s)."""
    import torch
    import torchvision

    from tracker.reid.extract import MGNEmbedder
    from tracker.reid.histogram import histogram_descriptors
    from tracker.reid.mgn import MGN
    from tracker.reid.preprocess import canvas_shape, crops_to_batch, limit_size, pack_crops, resize_canvas

    device = torch.device(device_name)
    crops = make_crops(max(256, 2 * max(batch_sizes)))
    rows = []

    def add(path, precision, batch, value):
        rows.append((path, str(device), precision, batch, value))
        print(f"{path:<18} {device_name:<5} {precision:<18} {batch:>5} {value:>10.1f} crops/s", flush=True)

    torch.manual_seed(0)
    mgn = MGN("fastreid")
    resnet = torchvision.models.resnet50().eval().to(device)
    precisions = ["fp32"] if device.type == "cpu" else ["fp32", "fp16", "bf16"]
    for precision in precisions:
        for channels_last in [True] if device.type == "cpu" else [True, False]:
            emb = MGNEmbedder(
                mgn,
                device=device,
                precision=precision,
                height=HEIGHT,
                width=WIDTH,
                batch_size=1,
                channels_last=channels_last,
                details={"threads": threads},
            )
            label = precision + ("" if channels_last else ", contiguous")
            for b in batch_sizes:
                emb.batch_size = b
                add("MGN embed", label, b, rate(emb.embed, crops, b, min_crops, min_seconds))
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    model = mgn.to(device, memory_format=torch.contiguous_format).eval()

    def naive(chunk):
        x = naive_preprocess(chunk).to(device)
        with torch.inference_mode():
            return torch.nn.functional.normalize(model.features(x), dim=1).cpu().numpy()

    for b in batch_sizes:
        add("MGN naive", "fp32", b, rate(naive, crops, b, min_crops, min_seconds))
    big = max(batch_sizes)

    def canvas_path(chunk):
        chunk = [limit_size(c, 2 * HEIGHT, 2 * WIDTH) for c in chunk]
        canvas = np.empty((len(chunk), *canvas_shape(chunk), 3), np.uint8)
        sizes = torch.from_numpy(pack_crops(chunk, canvas))
        out = resize_canvas(torch.from_numpy(canvas).to(device), sizes, HEIGHT, WIDTH)
        return out.cpu() if device.type == "cuda" else out

    def synced(fn):
        def run(chunk):
            out = fn(chunk)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return out

        return run

    n_pre = max(min_crops, 64)
    if device.type == "cpu":
        add(
            "preprocess only",
            "ours: OpenCV->batch",
            big,
            rate(lambda c: crops_to_batch(c, HEIGHT, WIDTH, device), crops, big, n_pre, min_seconds),
        )
    add(
        "preprocess only",
        "canvas+grid_sample",
        big,
        rate(synced(canvas_path), crops, big, n_pre, min_seconds),
    )
    add("preprocess only", "PIL per crop", big, rate(naive_preprocess, crops, big, n_pre, min_seconds))
    for precision in precisions:
        for channels_last in [True] if device.type == "cpu" else [True, False]:
            net = resnet.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            for b in batch_sizes:
                x = torch.randn(b, 3, HEIGHT, WIDTH, device=device)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)

                def forward(_chunk, x=x, net=net, precision=precision):
                    with (
                        torch.inference_mode(),
                        torch.autocast(device.type, dtype=dtype[precision], enabled=precision != "fp32"),
                    ):
                        out = net(x)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    return out

                add(
                    "ResNet-50 forward",
                    precision + ("" if channels_last else ", contiguous"),
                    b,
                    rate(forward, crops, b, min_crops, min_seconds),
                )
    if device.type == "cpu":
        many = make_crops(2000, seed=1)
        add("histogram", "fp32 (numpy)", 2000, rate(histogram_descriptors, many, 2000, 2000, min_seconds))
    return rows


def machine(device: str) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    parts = [f"{cpu}, {os.cpu_count()} cores", f"torch {torch.__version__}"]
    if device.startswith("cuda"):
        parts.append(torch.cuda.get_device_name(torch.device(device)))
    else:
        parts.append(f"{torch.get_num_threads()} intra-op thread(s)")
    if hasattr(os, "getloadavg"):
        parts.append(f"load average {os.getloadavg()[0]:.1f} when it started")
    return "; ".join(parts)


def table(rows) -> str:
    lines = ["| path | device | precision / memory | batch | crops/s |", "|---|---|---|---:|---:|"]
    lines += [f"| {p} | {d} | {prec} | {b} | {v:,.1f} |" for p, d, prec, b, v in rows]
    return "\n".join(lines)


def write_results(text: str, section: str = SECTION) -> None:
    """Replace the section of RESULTS.md whose heading line is exactly ``section`` (or append it),
    keeping the rest."""
    from tracker.fsutil import atomic_write_text

    old = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n"
    lines = old.split("\n")
    try:
        start = lines.index(section)
    except ValueError:
        atomic_write_text(RESULTS, old.rstrip("\n") + "\n\n" + text + "\n")
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    rest = "\n".join(lines[end:])
    atomic_write_text(RESULTS, "\n".join(lines[:start]) + "\n" + text + ("\n\n" + rest if rest else "\n"))


MODELS_SECTION = "## Re-identification models"
MODELS_READING = """Anchors (published, GPU, fully fine-tuned, not measured here): MGN paper (ResNet-50,
384x128) 95.7 / 86.9; fast-reid MGN R50-ibn 95.8 / 89.7; torchreid MobileNetV2 x1.0 85.6 / 67.3 (Market-1501 Rank-1 / mAP,
without re-ranking; they keep the 0000 distractors in the gallery, which changes little). Licences: OMZ
retail-0288 / -0287 are Apache-2.0 with their training data (the strongest models a user may use freely);
OSNet was trained on MSMT17 and the MGN here on Market-1501, both research-only data: research use only,
not for redistribution. MARS-mini is from the same six-camera campus as Market-1501, so for the MGN trained
on Market it is not a cross-dataset test."""


def model_specs(args) -> list[tuple[str, dict]]:
    """(row name, ReidConfig fields) of every model in the table, in order."""
    from tracker.reid.weights import OWN_MGN_FILE, reid_cache_dir

    mgn = Path(args.mgn) if args.mgn else reid_cache_dir() / OWN_MGN_FILE
    omz = Path(args.models_dir) / "omz"
    return [
        ("MGN-MobileNetV2 (ours, Market-1501)", {"embedder": "mgn", "weights": str(mgn)}),
        ("histogram (offline descriptor)", {"embedder": "histogram"}),
        (
            "OSNet x0.25 MSMT17 (ONNX)",
            {"embedder": "onnx", "weights": str(Path(args.models_dir) / "osnet_x0_25_msmt17.onnx")},
        ),
        *[
            (
                f"OMZ retail-{n} (OpenVINO FP32)",
                {
                    "embedder": "openvino",
                    "weights": str(
                        omz
                        / f"person-reidentification-retail-{n}"
                        / "FP32"
                        / f"person-reidentification-retail-{n}.xml"
                    ),
                },
            )
            for n in ("0288", "0287")
        ],
    ]


def measure_model(name: str, fields: dict, args) -> dict:
    """Market-1501 (plain and re-ranked), MARS-mini and crops/s of one model (see the module docstring)."""
    from tracker.config import ReidConfig
    from tracker.reid import build_embedder
    from tracker.reid.evaluation import embed_folder, score

    embedder = build_embedder(ReidConfig(**fields, threads=args.threads, batch_size=32))
    row = {"name": name, "info": embedder.info()}
    print(f"# {name}: embedding rate", flush=True)
    row["crops_per_s"] = rate(embedder.embed, make_crops(256), 32, 64, args.min_seconds)
    evaluated = _reid_eval_results(args.reuse, fields.get("weights"), args)
    if evaluated:
        print(f"# {name}: accuracy from {args.reuse}", flush=True)
        return {**row, **evaluated}
    print(f"# {name}: Market-1501 ({args.market})", flush=True)
    market = embed_folder(args.market, embedder, progress=True)
    row["market"] = score(market, embedder)
    row["market_rerank"] = score(market, embedder, rerank=True)
    print(f"# {name}: MARS-mini ({args.mars})", flush=True)
    row["mars"] = score(embed_folder(args.mars, embedder), embedder)
    return row


def _reid_eval_results(paths: Sequence[str], weights: str | None, args) -> dict | None:
    """Market-1501 (plain, re-ranked) and MARS-mini results of ``weights`` from ``reid-eval --json``
    files (a list of results each), when they have all three under this table's protocol; else None."""
    import json

    found = {}
    for path in paths or ():
        for r in json.loads(Path(path).read_text()):
            if not weights or Path(r["embedder"].get("weights", "")).resolve() != Path(weights).resolve():
                continue
            if r["cross_camera"]:
                continue
            if Path(r["data"]).resolve() == Path(args.market).resolve():
                found["market_rerank" if r["rerank"] else "market"] = r
            elif Path(r["data"]).resolve() == Path(args.mars).resolve() and not r["rerank"]:
                found["mars"] = r
    return found if len(found) == 3 else None


def models_table(rows: list[dict]) -> str:
    head = (
        "| model | dim | Market R-1 | Market mAP | re-ranked R-1 | re-ranked mAP | MARS-mini R-1 | "
        "MARS-mini mAP | crops/s |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        m, k, t = r["market"], r["market_rerank"], r["mars"]
        lines.append(
            f"| {r['name']} | {r['info']['dim']} | {100 * m['rank1']:.1f} | {100 * m['mAP']:.1f} | "
            f"{100 * k['rank1']:.1f} | {100 * k['mAP']:.1f} | {100 * t['rank1']:.1f} | "
            f"{100 * t['mAP']:.1f} | {r['crops_per_s']:,.1f} |"
        )
    return "\n".join(lines)


def run_models(args, argv: Sequence[str] | None) -> int:
    """The ``--models`` mode: measure every model (reusing ``--work`` results), print and record the table."""
    import json

    from tracker.reid.extract import set_cpu_threads

    threads = set_cpu_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows, missing = [], []
    for name, fields in model_specs(args):
        saved = work / (name.split(" (")[0].replace(" ", "_").replace(".", "") + ".json")
        if saved.is_file():
            rows.append(json.loads(saved.read_text()))
            continue
        if fields.get("weights") and not Path(fields["weights"]).is_file():
            print(f"# {name}: {fields['weights']} not found; skipped", flush=True)
            missing.append(name)
            continue
        row = measure_model(name, fields, args)
        saved.write_text(json.dumps(row, indent=1, default=str))
        rows.append(row)
    if missing:
        print(models_table(rows) + f"\n\nnot measured: {', '.join(missing)}; the table is not recorded")
        return 1
    command = "python benchmarks/reid.py " + " ".join(argv if argv is not None else sys.argv[1:])
    market = rows[0]["market"]
    text = (
        f"{MODELS_SECTION}\n\nRe-identification accuracy and speed of the embedders the tracker can use, "
        f"on this CPU ({machine('cpu')}; {threads} threads). Market-1501: the complete test split "
        f"({market['query_images']:,} query / {market['gallery_images']:,} gallery images, "
        f"{market['num_queries']:,} queries evaluated), standard protocol (junk and 0000 distractors "
        f"ignored, same-identity same-camera gallery images excluded); re-ranked: k-reciprocal (k1 20, k2 6, lambda "
        f"0.3). MARS-mini: {rows[0]['mars']['tracklets']} tracklets of real MARS crops, tracklet = mean "
        f"embedding, all against all, same-camera matches excluded. crops/s: synthetic mixed-size crops, "
        f"batch 32, decoding excluded. R-1 = Rank-1, all in %.\n\nCommand: `{command.strip()}`\n\n"
        + models_table(rows)
        + "\n\n"
        + MODELS_READING
    )
    print("\n" + text)
    if args.write_results:
        write_results(text, MODELS_SECTION)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda, or auto (the CPU, and CUDA when present)")
    ap.add_argument("--batch-sizes", default=None, help="default: 1,8,32 on CPU; 1,8,32,128,512 on CUDA")
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: all cores)")
    ap.add_argument("--min-crops", type=int, default=8)
    ap.add_argument("--min-seconds", type=float, default=2.0)
    ap.add_argument("--write-results", action="store_true", help=f"write the tables into {RESULTS}")
    ap.add_argument(
        "--models", action="store_true", help="the accuracy table of the re-identification models"
    )
    ap.add_argument("--mgn", help="--models: the trained MGN checkpoint (default: the model cache's)")
    ap.add_argument(
        "--models-dir", default=str(REPO.parent / "shared" / "models"), help="--models: OSNet, OMZ"
    )
    ap.add_argument("--market", default=str(REPO.parent / "shared" / "eval-data" / "market1501-full"))
    ap.add_argument("--mars", default=str(REPO.parent / "shared" / "eval-data" / "reid-mini-mars"))
    ap.add_argument(
        "--work", default="/tmp/reid-models-bench", help="--models: per-model results (resumable)"
    )
    ap.add_argument(
        "--reuse",
        nargs="*",
        default=[],
        help="--models: reid-eval --json files whose results (same weights, data and protocol) "
        "stand in for embedding the datasets again",
    )
    args = ap.parse_args(argv)
    if args.models:
        return run_models(args, argv)
    import torch

    from tracker.reid.extract import set_cpu_threads

    set_cpu_threads(args.threads)
    devices = (
        [args.device] if args.device != "auto" else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    )
    sections = []
    for device in devices:
        default = "1,8,32" if device == "cpu" else "1,8,32,128,512"
        sizes = [int(b) for b in (args.batch_sizes or default).split(",")]
        print(f"# {device}: {machine(device)}", flush=True)
        rows = benchmark(device, sizes, args.min_crops, args.min_seconds, args.threads)
        sections.append(f"### {device.upper()}: {machine(device)}\n\n{table(rows)}")
    if not torch.cuda.is_available():
        sections.append("### CUDA: not measured (no CUDA GPU in this run).")
    command = "python benchmarks/reid.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = (
        f"{SECTION}\n\nCrops per second from uint8 crops of mixed sizes to L2-normalised 384x128 features "
        f"(see the docstring of benchmarks/reid.py for what each row measures).\n\n"
        f"Command: `{command.strip()}`\n\n" + "\n\n".join(sections) + "\n\n" + READING
    )
    print("\n" + text)
    if args.write_results:
        write_results(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
