"""Camera calibration: per-camera ground-plane homographies and which views overlap, read once.

A calibration file is either a ``scene.json`` (as ``track-sim`` writes: ``"cameras": [{"name", "homography",
"overlaps"}]``; cameras without a homography are left out) or a plain ``{camera: 3x3}`` YAML/JSON mapping. A
homography maps ground-plane points (metres, ``x, y, 1``) to image pixels of a person's foot point; all
cameras' homographies must map one common ground plane. :func:`load_calibration` reads the file into a
:class:`Calibration` value that association receives (association itself reads no files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracker.errors import InputError


@dataclass(frozen=True)
class Calibration:
    """``homographies``: ``{camera: (3, 3) float64}`` ground -> image; ``overlaps``: ``{camera: cameras whose
    views overlap it}`` when the file says (a scene.json with ``overlaps`` lists for every camera), else None
    (unknown); ``source``: the file it came from."""

    homographies: dict[str, np.ndarray] = field(default_factory=dict)
    overlaps: dict[str, frozenset[str]] | None = None
    source: str | None = None

    @property
    def cameras(self) -> set[str]:
        """Every camera the calibration names."""
        return set(self.homographies) | set(self.overlaps or {})

    def for_cameras(self, names: list[str]) -> Calibration:
        """This calibration checked against a run's cameras: InputError when it names none of them (a file
        for another scene); cameras it names that the run lacks are dropped."""
        known = set(names)
        if not self.cameras & known:
            raise InputError(
                f"{self.source or 'calibration'}: names cameras {', '.join(sorted(self.cameras))}, "
                f"none of which is in this run ({', '.join(names)}); name the cameras so with --names"
            )
        overlaps = None
        if self.overlaps is not None:
            overlaps = {c: frozenset(o & known) for c, o in self.overlaps.items() if c in known}
        return Calibration({c: h for c, h in self.homographies.items() if c in known}, overlaps, self.source)

    def unknown(self, names: list[str]) -> list[str]:
        """The run's cameras this calibration says nothing about."""
        return [n for n in names if n not in self.cameras]


def _read_mapping(path: Path) -> object:
    import yaml

    try:
        text = path.read_text()
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError):
        raise InputError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}"
        ) from None


def _homography(value: object, where: str) -> np.ndarray:
    try:
        h = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        h = np.zeros(0)
    if h.shape != (3, 3) or not np.all(np.isfinite(h)) or abs(np.linalg.det(h)) < 1e-12:
        raise InputError(f"{where}: homography must be an invertible 3x3 matrix of numbers")
    return h


def load_calibration(path: str | Path) -> Calibration:
    """Read a scene.json or a ``{camera: 3x3}`` mapping (see the module docstring). A missing or malformed
    file, or one without a single homography, raises :class:`InputError`."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: calibration file not found")
    data = _read_mapping(p)
    overlaps = None
    if isinstance(data, dict) and "cameras" in data:
        cams = data["cameras"]
        if not isinstance(cams, list) or not all(isinstance(c, dict) and "name" in c for c in cams):
            raise InputError(f"{p}: 'cameras' must be a list of objects with a 'name'")
        entries = {str(c["name"]): c["homography"] for c in cams if c.get("homography") is not None}
        if all(isinstance(c.get("overlaps"), list) for c in cams):
            links: dict[str, set[str]] = {str(c["name"]): set() for c in cams}
            for c in cams:
                for other in c["overlaps"]:
                    links[str(c["name"])].add(str(other))
                    links.setdefault(str(other), set()).add(str(c["name"]))
            overlaps = {k: frozenset(v) for k, v in links.items()}
    elif isinstance(data, dict):
        entries = {str(k): v for k, v in data.items()}
    else:
        raise InputError(f"{p}: expected a scene.json or a mapping of camera name to 3x3 homography")
    if not entries:
        raise InputError(f"{p}: no camera homographies in the file")
    homographies = {name: _homography(h, f"{p}: camera '{name}'") for name, h in entries.items()}
    return Calibration(homographies, overlaps, str(p))
