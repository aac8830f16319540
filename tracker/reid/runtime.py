"""Re-identification networks run by ONNX Runtime or OpenVINO (embedders ``onnx`` and ``openvino``).

Both take uint8 BGR crops of any size and return (N, dim) float32 L2-normalised rows, in batches. What a
network expects is read from the model file where it says so, else the documented defaults apply:

* input size: the model's input shape (N, 3, H, W); a dynamic H or W falls back to 256x128;
* ONNX: metadata key ``reid_preprocess`` (JSON ``{"colour": "RGB"|"BGR", "mean": [3], "std": [3],
  "interpolation": ...}``, mean/std in 0..255 units, in the network's channel order; what
  :func:`tracker.reid.extract.export_onnx` writes); without it torchreid's convention: RGB,
  ``(pixel / 255 - ImageNet mean) / ImageNet std`` (OSNet and every torchreid export);
* OpenVINO IR: the Model Optimizer's ``conversion_parameters`` in the IR's ``rt_info``: with
  ``mean_values`` / ``scale_values`` the normalisation is inside the network and pixels go in as 0..255;
  ``reverse_input_channels`` True means the IR takes BGR; without them Open Model Zoo's convention: BGR
  0..255, no normalisation (what its person-reidentification-retail models document);
* resizing: bilinear (what torchreid's and Open Model Zoo's pipelines use) unless the metadata names
  another interpolation.

A fixed batch dimension of 1 is run crop by crop (OpenVINO models are first reshaped to a dynamic
batch when they allow it).
"""

from __future__ import annotations

import abc
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.errors import InputError
from tracker.reid.preprocess import check_crops, limit_size

IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)  # RGB
IMAGENET_STD_255 = (58.395, 57.12, 57.375)
DEFAULT_SIZE = (256, 128)
INTERPOLATIONS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


@dataclass(frozen=True)
class InputSpec:
    """How crops become a network input: (N, 3, height, width) float32 with channels in ``colour``
    order, ``(pixel - mean) / std`` per channel (0..255 units, in that order)."""

    height: int
    width: int
    colour: str = "RGB"
    mean: tuple[float, float, float] = IMAGENET_MEAN_255
    std: tuple[float, float, float] = IMAGENET_STD_255
    interpolation: str = "bilinear"
    source: str = "default"  # where the spec came from: "model" or "default"

    def __post_init__(self) -> None:
        if self.colour not in ("RGB", "BGR"):
            raise ValueError(f"colour must be RGB or BGR, got {self.colour!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need 3 values each, std positive")


def prepare(crops: Sequence[np.ndarray], spec: InputSpec) -> np.ndarray:
    """uint8 BGR crops of any size -> (N, 3, H, W) float32 network input as ``spec`` says."""
    batch = np.empty((len(crops), spec.height, spec.width, 3), np.uint8)
    for i, crop in enumerate(crops):
        crop = limit_size(crop, 2 * spec.height, 2 * spec.width)
        cv2.resize(
            crop, (spec.width, spec.height), dst=batch[i], interpolation=INTERPOLATIONS[spec.interpolation]
        )
    x = batch.astype(np.float32)
    if spec.colour == "RGB":
        x = x[..., ::-1]
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _size(shape: Sequence) -> tuple[int, int]:
    """(H, W) of an NCHW shape whose entries may be symbolic; dynamic ones take :data:`DEFAULT_SIZE`."""
    h, w = shape[2], shape[3]
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        return h, w
    return DEFAULT_SIZE


def _threads(threads: int) -> int:
    """``threads``, else ``OMP_NUM_THREADS``, else the cores this process may use."""
    if threads > 0:
        return threads
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class _RuntimeEmbedder(abc.ABC):
    """Batching and normalisation shared by the two runtimes; subclasses run one prepared batch."""

    name = "runtime"

    def __init__(
        self, path: Path, spec: InputSpec, dim: int, batch_size: int, fixed_batch: bool, details: dict
    ) -> None:
        self.path, self.spec, self.dim = path, spec, dim
        self.batch_size = 1 if fixed_batch else batch_size
        self.details = details

    @abc.abstractmethod
    def _run(self, x: np.ndarray) -> np.ndarray:
        """(n, 3, H, W) float32 network input -> (n, ...) raw network output."""

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 BGR crops -> (N, dim) float32 L2-normalised; N = 0 gives (0, dim)."""
        check_crops(crops)
        out = np.zeros((len(crops), self.dim), np.float32)
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start : start + self.batch_size]
            out[start : start + len(chunk)] = _normalise(self._run(prepare(chunk, self.spec)))
        return out

    def info(self) -> dict:
        from tracker.reid.weights import sha256_file

        return {
            "embedder": self.name,
            "dim": self.dim,
            "weights": str(self.path.resolve()),
            "sha256": sha256_file(self.path)[:16],
            "input": [self.spec.height, self.spec.width],
            "colour": self.spec.colour,
            "mean": list(self.spec.mean),
            "std": list(self.spec.std),
            "interpolation": self.spec.interpolation,
            "preprocess_from": self.spec.source,
            "batch_size": self.batch_size,
            "device": "cpu",
            "precision": self.details.get("precision", "fp32"),
            **self.details,
            "fallback": None,
        }


def _runtime(package: str, embedder: str):
    """The runtime module ``package``, or one InputError line saying which package ``embedder`` needs."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise InputError(
            f"reid.embedder {embedder} needs the '{package}' package (pip install {package})"
        ) from None


def _model_file(path: str | Path) -> Path:
    """``path`` as a Path; InputError when it is not a file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"reid.weights: {path}: file not found")
    return path


class OnnxEmbedder(_RuntimeEmbedder):
    """An ONNX re-identification network in ONNX Runtime (CPU): input (N, 3, H, W), output (N, dim)."""

    name = "onnx"

    def __init__(self, path: str | Path, batch_size: int = 64, threads: int = 0) -> None:
        ort = _runtime("onnxruntime", "onnx")
        path = _model_file(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads(threads)
        options.log_severity_level = 3
        from onnxruntime.capi import onnxruntime_pybind11_state as state

        errors = (
            RuntimeError,
            state.Fail,
            state.InvalidArgument,
            state.InvalidGraph,
            state.InvalidProtobuf,
            state.NoSuchFile,
            state.NotImplemented,
        )
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except errors as exc:
            raise InputError(
                f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})"
            ) from None
        inp, out = self.session.get_inputs(), self.session.get_outputs()
        if len(inp) != 1 or len(inp[0].shape) != 4:
            raise InputError(
                f"{path}: expected one (N, 3, H, W) input, got {[(i.name, i.shape) for i in inp]}"
            )
        self.input_name = inp[0].name
        h, w = _size(inp[0].shape)
        meta = self.session.get_modelmeta().custom_metadata_map
        spec = _spec_from_json(meta.get("reid_preprocess"), h, w, path)
        dim = out[0].shape[-1] if isinstance(out[0].shape[-1], int) else 0
        fixed = inp[0].shape[0] == 1
        super().__init__(
            path,
            spec,
            dim,
            batch_size,
            fixed,
            {"runtime": f"onnxruntime {ort.__version__}", "threads": options.intra_op_num_threads},
        )
        if not self.dim:
            self.dim = int(self._run(prepare([np.zeros((h, w, 3), np.uint8)], spec)).reshape(1, -1).shape[1])

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


def _spec_from_json(text: str | None, height: int, width: int, path: Path) -> InputSpec:
    """The ``reid_preprocess`` metadata of an ONNX model, else torchreid's convention."""
    if not text:
        return InputSpec(height, width)
    try:
        info = json.loads(text)
        return InputSpec(
            height,
            width,
            colour=str(info.get("colour", "RGB")).upper(),
            mean=tuple(float(v) for v in info.get("mean", IMAGENET_MEAN_255)),
            std=tuple(float(v) for v in info.get("std", IMAGENET_STD_255)),
            interpolation=info.get("interpolation", "bilinear"),
            source="model",
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: unreadable reid_preprocess metadata ({exc})") from None


class OpenVinoEmbedder(_RuntimeEmbedder):
    """An OpenVINO IR re-identification network (``.xml`` + ``.bin``) on the CPU."""

    name = "openvino"

    def __init__(self, path: str | Path, batch_size: int = 64, threads: int = 0) -> None:
        ov = _runtime("openvino", "openvino")
        path = _model_file(path)
        if Path(path).suffix.lower() not in (".xml", ".onnx"):  # OpenVINO would try every frontend on it
            raise InputError(f"{path}: not an OpenVINO IR (expected the model's .xml beside its .bin)")
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except RuntimeError as exc:
            raise InputError(
                f"{path}: not a readable OpenVINO IR ({str(exc).splitlines()[0][:200]})"
            ) from None
        if len(model.inputs) != 1 or len(model.inputs[0].get_partial_shape()) != 4:
            raise InputError(f"{path}: expected one (N, 3, H, W) input")
        shape = model.inputs[0].get_partial_shape()
        dims = [d.get_length() if d.is_static else -1 for d in shape]
        h, w = _size(dims)
        fixed = False
        try:
            model.reshape({model.inputs[0].get_any_name(): ov.PartialShape([-1, 3, h, w])})
        except RuntimeError:  # a graph with batch-dependent constants keeps its batch size
            fixed = dims[0] == 1
        threads = _threads(threads)
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads})
        self.request = self.compiled.create_infer_request()
        spec = _spec_from_rt_info(model, h, w)
        out_dims = model.outputs[0].get_partial_shape()
        dim = out_dims[-1].get_length() if out_dims[-1].is_static else 0
        precision = path.parent.name if path.parent.name.upper().startswith(("FP", "INT")) else "fp32"
        super().__init__(
            path,
            spec,
            dim,
            batch_size,
            fixed,
            {"runtime": f"openvino {ov.__version__}", "threads": threads, "precision": precision},
        )
        if not self.dim:
            self.dim = int(self._run(prepare([np.zeros((h, w, 3), np.uint8)], spec)).reshape(1, -1).shape[1])

    def _run(self, x: np.ndarray) -> np.ndarray:
        return np.array(self.request.infer({0: x})[self.compiled.outputs[0]])


def _spec_from_rt_info(model, height: int, width: int) -> InputSpec:
    """What the IR's Model Optimizer conversion parameters say; else Open Model Zoo's BGR 0..255."""

    def param(name: str) -> str | None:
        key = ["conversion_parameters", name]
        return model.get_rt_info(key).astype(str) if model.has_rt_info(key) else None

    mean, scale, reverse = param("mean_values"), param("scale_values"), param("reverse_input_channels")
    if mean is None and scale is None and reverse is None:
        return InputSpec(height, width, colour="BGR", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    # Normalisation in the graph (mean_values / scale_values) means raw 0..255 pixels go in.
    # reverse_input_channels: the source network took RGB, the IR takes BGR.
    colour = "BGR" if (reverse or "").strip().lower() == "true" else "RGB"
    return InputSpec(height, width, colour=colour, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), source="model")
