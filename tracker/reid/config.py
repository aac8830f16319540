"""Configuration of the re-identification stage (the ``reid:`` section of a config file)."""

from __future__ import annotations

from dataclasses import dataclass

# MGN layouts (see tracker.reid.mgn): fast-reid's 2020 R50-ibn, current fast-reid, the paper's.
VARIANTS = ("fastreid", "fastreid-v1", "paper")
FASTREID_MGN_URL = "https://github.com/JDAI-CV/fast-reid/releases/download/v0.1.1/market_mgn_R50-ibn.pth"


@dataclass(frozen=True)
class ReidConfig:
    """Appearance embedder.

    ``embedder``: ``auto`` (configured checkpoint, else the MGN-MobileNetV2 made by ``reid-train`` in the
    model cache, else fast-reid's public Market-1501 MGN from the model cache / its download, else the
    offline ``histogram`` descriptor with a warning), ``mgn`` (fail when no checkpoint can be had), ``histogram`` (offline colour/texture descriptor), ``onnx`` / ``openvino``
    (the re-identification network in ``weights``, an ``.onnx`` file or an OpenVINO ``.xml``, see
    :mod:`tracker.reid.runtime`), ``none`` (no appearance).

    ``variant`` is the MGN layout used when a network is built from scratch (``reid-train``): ``fastreid``
    (fast-reid's R50-ibn MGN), ``fastreid-v1`` (the same in current fast-reid's parameter names) or
    ``paper`` (MGN as published). A checkpoint's own layout is recognised from its contents.
    ``url`` / ``sha256``: where ``auto`` downloads the checkpoint from, and the expected start of its
    sha256 (None: only the size is checked). ``flip``: test-time horizontal-flip averaging (None: the
    checkpoint's habit: on for ``paper``, off for fast-reid). ``threads``: CPU threads (0: every core
    this process may use, unless ``OMP_NUM_THREADS`` is set). ``interpolation``: ``bicubic`` (what the
    public models were trained with) or ``bilinear``.
    """

    embedder: str = "auto"
    weights: str | None = None
    variant: str = "fastreid"  # "fastreid" (fast-reid R50-ibn), "fastreid-v1" or "paper" (MGN as published)
    download: bool = True
    height: int = 384
    width: int = 128
    batch_size: int = 64
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (fp16 on CUDA, fp32 on CPU) | fp32 | fp16 | bf16
    compile: bool = False
    url: str = FASTREID_MGN_URL
    sha256: str | None = None
    flip: bool | None = None
    threads: int = 0
    channels_last: bool = True
    interpolation: str = "bicubic"
