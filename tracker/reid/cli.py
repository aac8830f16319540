"""``reid-train`` and ``reid-eval``: train MGN on a dataset folder, evaluate an embedder on one."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker import env
from tracker.errors import InputError, cli_entry
from tracker.fsutil import atomic_write_json
from tracker.config import VARIANTS, ReidConfig


def _milestones(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs, got {text!r}") from None


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")


@cli_entry("reid-train")
def reid_train(argv: Sequence[str] | None = None) -> int:
    """Train MGN on a Market-1501-layout (``bounding_box_train/``) or MARS-layout (``bbox_train/``) folder."""
    from tracker.reid.train import TrainOptions

    d = TrainOptions(data=Path("."), out=Path("."))
    ap = argparse.ArgumentParser(prog="reid-train", description=reid_train.__doc__)
    ap.add_argument("--data", required=True, type=Path, help="dataset folder")
    ap.add_argument("--out", required=True, type=Path, help="output folder: last.pt, model.safetensors, log.csv")
    ap.add_argument("--variant", choices=VARIANTS, default=d.variant, help="MGN layout (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("-P", "--ids-per-batch", dest="p", type=int, default=d.p, help="identities per batch")
    ap.add_argument("-K", "--images-per-id", dest="k", type=int, default=d.k, help="images per identity")
    ap.add_argument("--optimizer", choices=("sgd", "adam"), default=d.optimizer)
    ap.add_argument("--lr", type=float, default=None, help="base learning rate (default: sgd 0.01, adam 2e-4)")
    ap.add_argument("--weight-decay", type=float, default=d.weight_decay)
    ap.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    ap.add_argument("--milestones", type=_milestones, default=d.milestones, help="LR decay epochs, e.g. 40,60")
    ap.add_argument("--gamma", type=float, default=d.gamma, help="LR factor at each milestone")
    ap.add_argument("--margin", type=float, default=d.margin, help="triplet margin")
    ap.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    ap.add_argument("--erase-p", type=float, default=d.erase_p, help="random erasing probability")
    ap.add_argument("--height", type=int, default=d.height)
    ap.add_argument("--width", type=int, default=d.width)
    ap.add_argument("--device", default=d.device)
    ap.add_argument("--precision", default=d.precision, help="auto | fp32 | fp16 | bf16 (autocast)")
    ap.add_argument("--pretrained", default=d.pretrained,
                    help="auto (torchvision ImageNet ResNet-50 if available), none, or a ResNet-50 state dict file")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument("--workers", type=int, default=d.workers, help="image-decoding processes")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--max-steps", type=int, default=None, help="batches per epoch at most (quick trials)")
    ap.add_argument("--offline", action="store_true", help="no downloads")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.epochs < 1:
        raise InputError(f"--epochs: must be at least 1, got {args.epochs}")
    _logging()
    from tracker.reid.train import train

    opts = TrainOptions(
        data=args.data, out=args.out, variant=args.variant, epochs=args.epochs, p=args.p, k=args.k,
        optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
        milestones=args.milestones, gamma=args.gamma, margin=args.margin, label_smoothing=args.label_smoothing,
        erase_p=args.erase_p, height=args.height, width=args.width, device=args.device, precision=args.precision,
        pretrained=args.pretrained, resume=args.resume, workers=args.workers, seed=args.seed,
        max_steps=args.max_steps, progress=not args.no_progress, offline=args.offline or env.offline_requested(),
    )
    final = train(opts)
    print(f"reid-train: wrote {final} (per-epoch checkpoint {args.out / 'last.pt'}, log {args.out / 'log.csv'})")
    return 0


@cli_entry("reid-eval")
def reid_eval(argv: Sequence[str] | None = None) -> int:
    """Rank-1/5/10, mAP and mINP of an embedder on a Market-1501-layout folder (query/ +
    bounding_box_test/, Market protocol) or a MARS-layout folder (bbox_test/, tracklet level)."""
    ap = argparse.ArgumentParser(prog="reid-eval", description=reid_eval.__doc__)
    ap.add_argument("--data", required=True, type=Path, help="dataset folder")
    ap.add_argument("--weights", help="MGN checkpoint (fast-reid, seathiefwang or reid-train output)")
    ap.add_argument("--embedder", choices=("auto", "mgn", "histogram"), default=None,
                    help="default: mgn with --weights, else auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--batch-size", type=int, default=ReidConfig.batch_size)
    ap.add_argument("--height", type=int, default=ReidConfig.height,
                    help="input height (default %(default)s; a checkpoint that records its own size uses that)")
    ap.add_argument("--width", type=int, default=ReidConfig.width, help="input width (default %(default)s)")
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                    help="test-time flip averaging (default: the checkpoint's habit)")
    ap.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    ap.add_argument("--keep-distractors", action="store_true",
                    help="keep 0000 distractor images in the gallery (as fast-reid/torchreid do)")
    ap.add_argument("--cross-camera", action="store_true", help="ignore every same-camera gallery entry")
    ap.add_argument("--json", type=Path, help="also write the metrics here")
    ap.add_argument("--offline", action="store_true", help="no downloads")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    _logging()
    from tracker.config import ModelsConfig
    from tracker.reid.embedder import build_embedder
    from tracker.reid.evaluation import evaluate_folder

    cfg = ReidConfig(
        embedder=args.embedder or ("mgn" if args.weights else "auto"), weights=args.weights, device=args.device,
        precision=args.precision, batch_size=args.batch_size, height=args.height, width=args.width, flip=args.flip,
    )
    embedder = build_embedder(cfg, ModelsConfig(offline=args.offline or env.offline_requested()))
    result = evaluate_folder(
        args.data, embedder, rerank=args.rerank, junk_ids=(-1,) if args.keep_distractors else (-1, 0),
        cross_camera=args.cross_camera, progress=not args.no_progress,
    )
    print(format_result(result))
    if args.json:
        atomic_write_json(args.json, result)
    return 0


def format_result(result: dict) -> str:
    """A few lines for the terminal: what was evaluated, with what, and the metrics table."""
    info = result["embedder"]
    used = info["embedder"] + (f" {info.get('variant')} ({info['weights']})" if info.get("weights") else "")
    if result["level"] == "images":
        what = f"{result['query_images']} query / {result['gallery_images']} gallery images"
    else:
        what = f"{result['tracklets']} tracklets ({result['images']} images), all against all"
    extras = ", ".join(x for x in ("re-ranked" if result["rerank"] else "",
                                   "cross-camera only" if result["cross_camera"] else "") if x)
    head = f"{result['data']}: {what}; {used} on {info['device']} {info['precision']}" + (f"; {extras}" if extras else "")
    cols = ("rank1", "rank5", "rank10", "mAP", "mINP")
    table = "  ".join(f"{c:>7}" for c in ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"))
    values = "  ".join(f"{100 * result[c]:6.1f}%" for c in cols)
    tail = f"{result['num_queries']} queries evaluated, chance Rank-1 {100 * result['chance_rank1']:.1f}%"
    return f"{head}\n{table}\n{values}\n{tail}"
