"""Reading and writing MGN checkpoints: the public ones (fast-reid, seathiefwang) and the project's own.

* Public ``.pth`` / ``.pt`` files are read with ``torch.load(weights_only=True)`` (no code runs); a
  ``{"model": state_dict}`` or ``{"state_dict": ...}`` wrapper and ``module.`` prefixes (DataParallel)
  are removed. The layout (fastreid / fastreid-v1 / paper) is recognised from the parameter names, the
  number of training identities from the classifier shapes.
* The project's own format is safetensors with the model description in the metadata key ``"mgn"``
  (JSON: layout, num_classes, global_cls_dim, input height/width, test_flip, identities..., and for
  networks trained here a ``card``: backbone, data, epochs, scores, licence). Layout ``mobilenetv2``
  is MGN on MobileNetV2 (:mod:`tracker.reid.mobilenet`).
* Loading is strict: a file that does not fit the network exactly is an :class:`InputError` whose one
  line names the missing, unexpected and mis-shaped entries (first few of each, with counts).
"""

from __future__ import annotations

import functools
import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tracker.errors import InputError
from tracker.fsutil import atomic_path
from tracker.reid.mgn import LAYOUTS, MGN, PAPER_CLASSIFIERS, POOLED_DIM

FORMAT = "multicam-tracker-mgn/1"
SHOW = 3  # entries listed per kind in a mismatch message


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint file -> (flat state dict on the CPU, metadata dict; empty for public files)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {}).get("mgn", "{}"))
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable safetensors file ({_first_line(exc)})") from None
        return state, meta
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK" and magic[:1] != b"\x80":  # zip (torch >= 1.6) or legacy pickle
        raise InputError(f"{path}: not a PyTorch checkpoint (unrecognised file contents)")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if "Unsupported global" in ln or "error" in ln]
        reason = (lines[0] if lines else _first_line(exc)).split(". ")[0]
        raise InputError(
            f"{path}: cannot be read as a weights-only PyTorch checkpoint ({reason}); "
            "re-save just its state dict with torch.save(state_dict, file)"
        ) from None
    meta: dict[str, Any] = {}
    while isinstance(obj, Mapping) and not _is_state_dict(obj):
        if isinstance(obj.get("meta"), Mapping):
            meta = dict(obj["meta"])
        inner = obj.get("model", obj.get("state_dict"))
        if not isinstance(inner, Mapping):
            break
        obj = inner
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        raise InputError(
            f"{path}: no state dict of tensors found (top-level keys: {_preview(list(obj))})"
            if isinstance(obj, Mapping)
            else f"{path}: not a state dict ({type(obj).__name__})"
        )
    state = {(k.removeprefix("module.")): v for k, v in obj.items()}
    return state, meta


def _is_state_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _preview(items: list, n: int = SHOW) -> str:
    shown = ", ".join(str(x) for x in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def model_spec(state: Mapping[str, torch.Tensor], meta: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Network description of a checkpoint: layout, num_classes, global_cls_dim (metadata wins)."""
    from tracker.reid import mobilenet

    if meta.get("layout", mobilenet.LAYOUT if "trunk.0.0.weight" in state else None) == mobilenet.LAYOUT:
        fc = state.get("classifier_b21.weight")
        return {
            "layout": mobilenet.LAYOUT,
            "num_classes": int(fc.shape[0]) if fc is not None else 0,
            "global_cls_dim": mobilenet.POOLED,
            "pool": meta.get("pool", "max"),
            "part_stride": int(meta.get("part_stride", 1)),
        }
    layout = meta.get("layout") or guess_layout(state, source)
    if layout not in LAYOUTS:
        raise InputError(
            f"{source}: unknown MGN layout {layout!r} in its metadata (known: {', '.join(LAYOUTS)})"
        )
    classifier = {
        "paper": PAPER_CLASSIFIERS[3] + ".weight",
        "fastreid": "b21_head.classifier.weight",
        "fastreid-v1": "b21_head.weight",
    }[layout]
    num_classes = int(state[classifier].shape[0]) if classifier in state else 0
    global_cls_dim = POOLED_DIM
    if layout == "paper" and PAPER_CLASSIFIERS[0] + ".weight" in state:
        global_cls_dim = int(state[PAPER_CLASSIFIERS[0] + ".weight"].shape[1])
    return {
        "layout": layout,
        "num_classes": int(meta.get("num_classes", num_classes)),
        "global_cls_dim": int(meta.get("global_cls_dim", global_cls_dim)),
    }


def guess_layout(state: Mapping[str, torch.Tensor], source: str) -> str:
    """The layout whose parameter names overlap most with the checkpoint's (at least half of them)."""
    best, best_overlap = None, 0.0
    for layout in LAYOUTS:
        expected = _expected_shapes(layout, 0, POOLED_DIM)
        overlap = len(expected.keys() & state.keys()) / len(expected)
        if overlap > best_overlap:
            best, best_overlap = layout, overlap
    if best is None or best_overlap < 0.5:
        raise InputError(
            f"{source}: not an MGN checkpoint in a known layout ({', '.join(LAYOUTS)}); "
            f"its {len(state)} entries start with {_preview(sorted(state))}"
        )
    return best


@functools.cache
def _expected_shapes(layout: str, num_classes: int, global_cls_dim: int) -> dict[str, tuple[int, ...]]:
    """Entry names and shapes of an MGN (built on the meta device: no memory, no initialisation cost)."""
    with torch.device("meta"):
        model = MGN(layout, num_classes, global_cls_dim)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_fits(model: MGN, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise InputError (one line) unless ``state`` has exactly the model's entries and shapes."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} {list(state[k].shape)} vs {list(shape)}"
        for k, shape in expected.items()
        if k in state and tuple(state[k].shape) != shape
    ]
    if missing or unexpected or misshaped:
        parts = [
            f"{len(items)} {what} ({_preview(items)})"
            for what, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
            if items
        ]
        raise InputError(f"{source}: does not fit MGN layout '{model.layout}': " + "; ".join(parts))


def load_model(path: str | Path, test_flip: bool | None = None) -> tuple[MGN, dict[str, Any]]:
    """Build the network a checkpoint describes (an :class:`MGN` or, for ``layout`` ``mobilenetv2``, an
    :class:`~tracker.reid.mobilenet.MGNMobileNetV2`) and load it strictly.

    ``test_flip`` None takes the checkpoint's metadata or the layout's habit (paper: on, fast-reid: off).
    The network is built on the meta device and takes the checkpoint's tensors as its own (no random
    initialisation to throw away). Returns (model in eval mode on the CPU, metadata merged with the
    recognised spec).
    """
    state, meta = read_checkpoint(path)
    spec = model_spec(state, meta, str(path))
    if test_flip is None:
        test_flip = bool(meta.get("test_flip", spec["layout"] == "paper"))
    with torch.device("meta"):
        if spec["layout"] == "mobilenetv2":
            from tracker.reid.mobilenet import MGNMobileNetV2

            model = MGNMobileNetV2(
                spec["num_classes"], test_flip=test_flip, pool=spec["pool"], part_stride=spec["part_stride"]
            )
        else:
            model = MGN(spec["layout"], spec["num_classes"], spec["global_cls_dim"], test_flip=test_flip)
    load_state(model, state, str(path), assign=True)
    return model.eval(), {**meta, **spec, "test_flip": test_flip}


def load_state(model: MGN, state: Mapping[str, torch.Tensor], source: str, assign: bool = False) -> None:
    """Strict load with the one-line mismatch error of :func:`check_fits`.

    ``assign=True`` makes the (float32) checkpoint tensors the model's own, for a model built on the
    meta device; the constants that checkpoints do not store are then recreated on the CPU.
    """
    check_fits(model, state, source)
    if assign:
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=assign)
    if assign:
        model.restore_constants()


def save_model(path: str | Path, model: MGN, **meta: Any) -> Path:
    """Write ``model`` in the project's format (safetensors + JSON metadata), atomically."""
    path = Path(path)
    info = {
        "format": FORMAT,
        "layout": model.layout,
        "num_classes": model.num_classes,
        "global_cls_dim": model.global_cls_dim,
        "test_flip": model.test_flip,
        **({"pool": model.pool, "part_stride": model.part_stride} if hasattr(model, "part_stride") else {}),
        **meta,
    }
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"mgn": json.dumps(info)})
    return path


def record_scores(path: str | Path, results: list[dict]) -> Path:
    """Put evaluation results (``reid-eval`` dicts) into the model card of a project checkpoint.

    ``card.test_scores`` gets one entry per result (dataset name, level, re-ranking, protocol, Rank-1/5,
    mAP, mINP, queries); entries for the same dataset, level and re-ranking are replaced. The file is
    rewritten atomically with the same tensors.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise InputError(f"{path}: only the project's safetensors checkpoints carry a model card")
    state, meta = read_checkpoint(path)
    if meta.get("format") != FORMAT:
        raise InputError(f"{path}: not a checkpoint written by this project (no model card to update)")
    card = dict(meta.get("card") or {})
    scores = {(s["data"], s["level"], s["rerank"]): s for s in card.get("test_scores", [])}
    for r in results:
        protocol = (
            "Market-1501 standard (junk and same-camera matches excluded)"
            if r["level"] == "images"
            else "tracklets, mean embedding, all against all (same-camera matches excluded)"
        )
        if r.get("cross_camera"):
            protocol += ", cross-camera only"
        entry = {
            "data": Path(r["data"]).name,
            "level": r["level"],
            "rerank": r["rerank"],
            "protocol": protocol,
            **{k: round(float(r[k]), 4) for k in ("rank1", "rank5", "mAP", "mINP")},
            "queries": r["num_queries"],
        }
        scores[(entry["data"], entry["level"], entry["rerank"])] = entry
    card["test_scores"] = list(scores.values())
    meta = {**meta, "card": card}
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata={"mgn": json.dumps(meta)})
    return path
