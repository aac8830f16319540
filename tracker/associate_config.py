"""Configuration of cross-camera association (the ``associate:`` section of a config file).

Distances are on the scale of the appearance term, the cosine distance ``1 - cos`` of two tracklet
embeddings (0 identical, 1 unrelated). The other terms are added to it (see ``tracker.associate``), and two
groups of tracklets are joined while their average-linkage distance is below ``threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tracker.errors import InputError


@dataclass(frozen=True)
class CameraLink:
    """Topology between two cameras: whether their views overlap and the plausible transit time.

    Once any link is configured, camera pairs without a link are taken as not connected: their views do not
    overlap (seeing one person in both at once is impossible) and a direct transit between them costs the full
    ``transit_weight``.
    """

    a: str
    b: str
    overlap: bool = False
    min_transit: float = 0.0  # seconds
    max_transit: float = 60.0  # seconds

    def __post_init__(self) -> None:
        if self.a == self.b:
            raise InputError(f"associate.links: a link joins two different cameras, got '{self.a}' twice")
        if not 0 <= self.min_transit <= self.max_transit:
            raise InputError(
                f"associate.links ({self.a}, {self.b}): need 0 <= min_transit <= max_transit, "
                f"got {self.min_transit} and {self.max_transit}"
            )


@dataclass(frozen=True)
class AssociateConfig:
    """Constrained clustering of tracklets into global identities.

    ``enabled``: false gives every tracklet its own identity. ``threshold``: merge while the average-linkage
    distance is below it; the default is learned on ground-truth tracklets of the sample scene (see
    benchmarks/RESULTS.md, ``## Association``).
    """

    enabled: bool = True
    threshold: float = 0.6  # merge while the linkage distance is below this (learned on the sample scene)
    knn: int = 30  # appearance neighbours per tracklet in the sparse similarity graph
    max_gap: float = 120.0  # seconds: tracklets further apart in time get no edge
    time_weight: float = 0.1  # added for a wait of max_gap (beyond a link's max_transit), in proportion
    transit_weight: float = 0.2  # quicker than the links' fastest route allows; full between unlinked cameras
    world_weight: float = 0.3  # ground term: -world_weight (same spot) .. +world_weight (world_gate apart)
    world_gate: float = 2.0  # metres: seen at the same time farther apart than this is a cannot-link
    max_speed: float = 2.0  # m/s: leaving one spot and appearing at another faster than this is penalised
    speed_weight: float = 0.3  # reached at twice max_speed
    sync_tolerance: float = 0.5  # seconds two non-overlapping cameras may both see one person (clock error)
    break_gap: float = 2.0  # seconds: a track starting this soon after another ended may continue it
    break_radius: float = 2.0  # box heights between the predicted and the actual position of a continuation
    continuity_weight: float = 0.2  # same-camera continuation: -continuity_weight .. +continuity_weight
    appearance_scale: float | None = None  # cosine distance counted as 1; None: measured on cannot-link pairs
    missing_appearance: float = 0.7  # appearance term assumed when a tracklet has no embedding
    search_dim: int = 512  # beyond exact_search_max: search in a PCA projection of this size, then re-rank
    exact_search_max: int = 500_000_000  # query x window pairs searched exactly in the full dimension
    calibration: str | None = None  # scene.json or a calibration file with per-camera homographies
    links: tuple[CameraLink, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        positive = ("threshold", "max_gap", "world_gate", "break_radius", "max_speed")
        non_negative = (
            "time_weight",
            "transit_weight",
            "world_weight",
            "speed_weight",
            "sync_tolerance",
            "break_gap",
            "continuity_weight",
            "missing_appearance",
        )
        for name in positive + non_negative:
            value = getattr(self, name)
            unbounded_ok = name == "max_gap"  # max_gap may be .inf: no time limit on edges
            if (
                math.isnan(value)
                or value < 0
                or (name in positive and value == 0)
                or (math.isinf(value) and not unbounded_ok)
            ):
                want = "> 0" if name in positive else ">= 0"
                raise InputError(f"associate.{name}: must be {want}, got {value}")
        if self.appearance_scale is not None and not (0 < self.appearance_scale < math.inf):
            raise InputError(f"associate.appearance_scale: must be > 0 or null, got {self.appearance_scale}")
        for name in ("knn", "search_dim", "exact_search_max"):
            if getattr(self, name) < 1:
                raise InputError(f"associate.{name}: must be >= 1, got {getattr(self, name)}")
