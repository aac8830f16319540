"""Configuration of the re-identification stage (the ``reid:`` section of a config file)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReidConfig:
    """Appearance embedder.

    ``embedder``: ``auto`` (configured checkpoint, else fast-reid's public Market-1501 MGN from the model
    cache / its download, else the offline ``histogram`` descriptor with a warning), ``mgn`` (fail when no
    checkpoint can be had), ``histogram`` (offline colour/texture descriptor), ``none`` (no appearance).
    """

    embedder: str = "auto"
    weights: str | None = None
    variant: str = "fastreid"  # "fastreid" (fast-reid's R50-ibn layout) or "paper" (MGN as published)
    download: bool = True
    height: int = 384
    width: int = 128
    batch_size: int = 64
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (fp16 on CUDA, fp32 on CPU) | fp32 | fp16 | bf16
    compile: bool = False
