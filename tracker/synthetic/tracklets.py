"""Synthetic tracklet scenes with known identities (no pixels), for association tests and benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tracker.calibration import Calibration
from tracker.config import CameraLink
from tracker.types import Tracklet

_ZONE_LENGTH, _ZONE_GAP, _ZONE_WIDTH = 10.0, 15.0, 6.0  # metres: zones along x, with walkways between them


@dataclass
class SyntheticScene:
    """Tracklets with known identities from :func:`synthetic_scene`."""

    tracklets: list[Tracklet]
    person: np.ndarray  # (N,) int64 true identity of each tracklet
    calibration: Calibration  # camera -> (3, 3) ground -> image homography
    links: tuple[CameraLink, ...]  # cameras on one zone overlap; cameras on neighbouring zones are linked


def _zone_homography(zone: int, view: int) -> np.ndarray:
    """Ground (metres) -> 640x360 pixels for the ``view``-th camera on ``zone``: views alternate sides."""
    x0 = zone * (_ZONE_LENGTH + _ZONE_GAP)
    sign = 1.0 if view % 2 == 0 else -1.0
    local = np.array(
        [[56.0 * sign, 4.0 * view, 320.0 - 280.0 * sign], [0.0, 30.0, 160.0 + 8 * view], [0.0, 0.03, 1.0]]
    )
    return local @ np.array([[1.0, 0.0, -x0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def synthetic_scene(
    people: int,
    zones: Sequence[int] = (0, 0, 1, 2),
    *,
    dim: int = 64,
    seed: int = 0,
    fps: float = 5.0,
    rate: float = 0.3,
    noise: float = 0.7,
    camera_shift: float = 0.5,
    look_alike: float = 0.0,
    p_break: float = 0.2,
    p_return: float = 0.2,
    p_missing: float = 0.0,
) -> SyntheticScene:
    """People walking through camera zones, as tracklets with known identities.

    Zones are 10 x 6 m areas along a line, 15 m apart; camera ``i`` (named ``cam{i+1}``) watches zone
    ``zones[i]``, so cameras on one zone overlap (they see a person at the same time, from opposite sides)
    and cameras on different zones are disjoint, with a transit of 9-15 s between neighbouring zones. People
    arrive at ``rate`` per second, walk at 1.0-1.6 m/s through a random run of zones, with ``p_return`` walk
    back later (re-entry into the same cameras) and with ``p_break`` a track is broken for 0.6-1.5 s.

    Embeddings (``dim``): ``unit(person + camera_shift * camera + noise * N(0, I/dim))``, with
    ``look_alike`` the cosine between people of one group of four (similar clothes); with ``p_missing`` a
    tracklet has no embedding. Boxes come from the ground positions through the camera homographies.
    """
    rng = np.random.default_rng(seed)
    names = [f"cam{i + 1}" for i in range(len(zones))]
    view = [list(zones[:i]).count(z) for i, z in enumerate(zones)]
    homography = {n: _zone_homography(z, w) for n, z, w in zip(names, zones, view)}
    by_zone: dict[int, list[int]] = {}
    for i, z in enumerate(zones):
        by_zone.setdefault(z, []).append(i)
    n_zones = max(zones) + 1
    pieces = []  # (person, camera, start, end, x at t_ref, t_ref, velocity, lane, phase)
    arrival = 0.0
    for p in range(people):
        arrival += rng.exponential(1 / rate)
        za, zb = rng.integers(n_zones, size=2)
        direction = int(np.sign(zb - za)) or int(rng.choice([-1, 1]))
        route = list(range(min(za, zb), max(za, zb) + 1))[::direction]
        speed, t_leg = rng.uniform(1.0, 1.6), arrival
        for _ in range(1 + int(rng.random() < p_return)):
            lane, phase = rng.uniform(0.5, _ZONE_WIDTH - 0.5), rng.uniform(0, 2 * np.pi)
            x_ref = route[0] * (_ZONE_LENGTH + _ZONE_GAP) + (0.0 if direction > 0 else _ZONE_LENGTH)
            t_end = t_leg
            for z in route:
                x_in = z * (_ZONE_LENGTH + _ZONE_GAP) + (0.0 if direction > 0 else _ZONE_LENGTH)
                t_in = t_leg + abs(x_in - x_ref) / speed
                t_end = t_in + _ZONE_LENGTH / speed
                for c in by_zone.get(z, []):
                    a, b = t_in + rng.uniform(0, 0.4), t_end - rng.uniform(0, 0.4)
                    spans = [(a, b)]
                    if rng.random() < p_break and b - a > 4:
                        cut, gap = rng.uniform(a + 1.5, b - 2.5), rng.uniform(0.6, 1.5)
                        spans = [(a, cut), (cut + gap, b)]
                    pieces += [(p, c, s, e, x_ref, t_leg, direction * speed, lane, phase) for s, e in spans]
            t_leg = t_end + rng.uniform(10, 60)
            route, direction = route[::-1], -direction

    centres = _unit(rng.standard_normal((people, dim)))
    if look_alike > 0:
        groups = _unit(rng.standard_normal(((people + 3) // 4, dim)))
        centres = _unit(
            np.sqrt(1 - look_alike) * centres + np.sqrt(look_alike) * groups[np.arange(people) // 4]
        )
    bias = _unit(rng.standard_normal((len(names), dim))) * camera_shift
    pieces.sort(key=lambda r: (r[1], r[2]))
    person = np.array([r[0] for r in pieces], np.int64)
    cam = np.array([r[1] for r in pieces], np.int64)
    emb = np.empty((len(pieces), dim), np.float32)
    for s in range(0, len(pieces), 8192):  # in chunks: 100k x 2048 noise at once would double the memory
        sl = slice(s, s + 8192)
        z = (centres[person[sl]] + bias[cam[sl]]).astype(np.float32)
        emb[sl] = _unit(z + np.float32(noise / np.sqrt(dim)) * rng.standard_normal(z.shape, dtype=np.float32))
    missing = rng.random(len(pieces)) < p_missing

    tracklets, keep = [], []
    next_id = [1] * len(names)
    for k, (p, c, a, b, x_ref, t_ref, vel, lane, phase) in enumerate(pieces):
        frames = np.arange(math.ceil(a * fps), math.floor(b * fps) + 1) + 1
        if len(frames) < 3:
            continue
        times = (frames - 1) / fps
        gx, gy = x_ref + vel * (times - t_ref), lane + 0.3 * np.sin(0.8 * times + phase)
        hm = homography[names[c]]
        den = hm[2, 0] * gx + hm[2, 1] * gy + hm[2, 2]
        noise = rng.normal(0, 1.0, (2, len(times)))
        u = (hm[0, 0] * gx + hm[0, 1] * gy + hm[0, 2]) / den + noise[0]
        v = (hm[1, 0] * gx + hm[1, 1] * gy + hm[1, 2]) / den + noise[1]
        h = 60 + 8 * gy
        boxes = np.stack([u - 0.2 * h, v - h, u + 0.2 * h, v], axis=1)
        tracklets.append(
            Tracklet(
                names[c],
                next_id[c],
                frames,
                times,
                boxes,
                np.full(len(frames), 0.9),
                embedding=None if missing[k] else emb[k],
            )
        )
        next_id[c] += 1
        keep.append(p)
    links = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if zones[i] == zones[j]:
                links.append(CameraLink(names[i], names[j], overlap=True, min_transit=0.0, max_transit=60.0))
            elif abs(zones[i] - zones[j]) == 1:
                links.append(
                    CameraLink(
                        names[i],
                        names[j],
                        overlap=False,
                        min_transit=_ZONE_GAP / 1.6 - 1,
                        max_transit=_ZONE_GAP / 1.0 + 2,
                    )
                )
    return SyntheticScene(tracklets, np.array(keep, np.int64), Calibration(homography), tuple(links))
