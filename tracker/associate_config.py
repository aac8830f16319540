"""Configuration of cross-camera association (the ``associate:`` section of a config file)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CameraLink:
    """Topology between two cameras: whether their views overlap and the plausible transit time."""

    a: str
    b: str
    overlap: bool = False
    min_transit: float = 0.0  # seconds
    max_transit: float = 60.0  # seconds


@dataclass(frozen=True)
class AssociateConfig:
    """Constrained clustering of tracklets into global identities."""

    enabled: bool = True
    threshold: float = 0.5  # merge while the linkage distance is below this
    knn: int = 30  # neighbours per tracklet in the sparse similarity graph
    max_gap: float = 120.0  # seconds: tracklets further apart in time are not linked
    time_weight: float = 0.1
    world_weight: float = 0.1
    calibration: str | None = None  # scene.json or a calibration file with per-camera homographies
    links: tuple[CameraLink, ...] = field(default_factory=tuple)
