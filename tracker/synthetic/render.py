"""Synthetic multi-camera scenes with ground truth: ``track-sim``.

People walk on a shared ground plane (metres: ``x`` along a long walkway, ``y`` away from the cameras,
``z`` up) along piecewise-linear paths. Two to six static pinhole cameras stand on the near side and look
across the walkway; their ground-plane footprints are laid out along ``x`` so that some pairs overlap (by
``overlap`` of a view's width) and others are separated by a gap that people cross in a few seconds.
Every frame of every camera is drawn with OpenCV primitives over a static textured background
(paving, a building front with doors, benches, bins, lamp posts), people in depth order (far first), and
then the camera's own look (colour balance, gamma, slight blur, sensor noise).

Outputs in ``out_dir``:

* ``<camera>.mp4``: H.264 (PyAV ``libx264``, ``yuv420p``; MPEG-4 Part 2 when libx264 is missing).
* ``gt/<camera>.txt``: MOTChallenge ground truth ``frame,id,x,y,w,h,1,1,visibility``; frames 1-based,
  ``id`` the global person id (the same person has the same id in every camera), ``x, y`` the top-left
  pixel (0-based) and ``w, h`` the size in pixels of the drawn figure's full extent (also where it is
  hidden by nearer people), clipped to the image; ``visibility`` the fraction of the figure's pixels not
  hidden by nearer people or cut off by the image border. A row exists where at least one pixel shows.
* ``scene.json``: cameras (``homography`` maps ground ``(x, y, 1)`` in metres to the image pixel of the
  foot point, ``projection`` the full 3x4 camera matrix, ``overlaps`` the cameras that share ground with it),
  people (appearance summary, path keyframes ``[t, x, y]`` linearly interpolated, per-camera frame ranges).

The same arguments give byte-identical ``gt/`` and ``scene.json``, and byte-identical videos for the same
PyAV build on x86-64 (see :class:`tracker.video.H264Writer`).

``track-sim --crops DIR --background VIDEO`` renders the same geometry with real people from a ReID data set
on a real background instead (:mod:`tracker.synthetic.composite`); the camera layout, walkers, ground-truth
files and ``scene.json`` cameras are shared with it through the public functions here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tracker.errors import InputError
from tracker.fsutil import atomic_write_json, atomic_write_text
from tracker.video import open_video

_SHIFT = 4  # cv2 drawing sub-pixel bits: coordinates are multiplied by 16
_ONE = 1 << _SHIFT
_PPM = 40  # texture pixels per metre for the ground and the building front
WALK_Y = (4.0, 13.5)  # the walkway's near and far edge (metres from the camera line)
_WALL_Y = 16.5  # building front
_WALL_H = 12.0
_DOOR_W = 1.4
_THIGH, _SHIN = 0.23, 0.215  # leg segment lengths, fractions of the person's height
_CRF = 20  # x264 quality: the 3 x 30 s 640x360 sample comes to about 3-4 MB


# ----------------------------------------------------------------------------------------------- cameras


@dataclass
class Look:
    """A camera's rendering of colour: per-channel gain, gamma, black level, blur and sensor noise."""

    gain: np.ndarray  # (3,) BGR multipliers
    gamma: float
    black: float
    blur: float  # Gaussian sigma in pixels (0 = none)
    noise: float  # sensor noise sigma in grey levels

    def lut(self) -> np.ndarray:
        """(1, 256, 3) uint8 lookup table applying gain, gamma and black level per channel."""
        x = np.arange(256, dtype=np.float64)[:, None] / 255.0
        y = np.clip(x * self.gain[None, :], 0, 1) ** self.gamma
        y = self.black + (255.0 - self.black) * y
        return np.clip(np.round(y), 0, 255).astype(np.uint8)[None]

    def summary(self) -> dict:
        return {
            "gain_bgr": [round(float(g), 3) for g in self.gain],
            "gamma": round(self.gamma, 3),
            "black_level": round(self.black, 2),
            "blur_sigma": round(self.blur, 2),
            "noise_sigma": round(self.noise, 2),
        }


@dataclass
class Camera:
    """A static pinhole camera: ``K`` intrinsics, ``R`` world-to-camera rotation, ``C`` centre (metres)."""

    name: str
    width: int
    height: int
    K: np.ndarray
    R: np.ndarray
    C: np.ndarray
    look: Look

    @property
    def P(self) -> np.ndarray:
        """(3, 4) float64 projection of world points (x, y, z, 1) to image (u, v, 1)."""
        return self.K @ np.c_[self.R, -self.R @ self.C]

    @property
    def H(self) -> np.ndarray:
        """(3, 3) float64 homography of ground points (x, y, 1) to image pixels, ``H[2, 2] == 1``."""
        h = self.P[:, [0, 1, 3]]
        return h / h[2, 2]

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project (N, 3) world points: (N, 2) pixel coordinates and (N,) depth along the optical axis."""
        cam = (pts - self.C) @ self.R.T
        depth = cam[:, 2]
        uvw = cam @ self.K.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[:, :2] / uvw[:, 2:3]
        return uv, depth

    def rays(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """World directions (N, 3) of the rays through pixels (u, v)."""
        pix = np.stack([u, v, np.ones_like(u)], axis=1).astype(np.float64)
        return pix @ np.linalg.inv(self.K).T @ self.R

    def ground_x_at(self, u: float, y: float) -> float:
        """The x (metres) where image column ``u`` meets the ground line at depth ``y``."""
        v = np.array([self.height * 0.6, self.height - 1.0])
        d = self.rays(np.full(2, u), v)
        s = -self.C[2] / d[:, 2]
        g = self.C[None, :] + s[:, None] * d
        (x1, y1), (x2, y2) = g[0, :2], g[1, :2]
        return float(x1 + (x2 - x1) * (y - y1) / (y2 - y1))

    def x_extent(self, y: float) -> tuple[float, float]:
        """Ground x-range (metres) seen at depth ``y`` between the image's left and right borders."""
        a, b = self.ground_x_at(0.0, y), self.ground_x_at(self.width - 1.0, y)
        return min(a, b), max(a, b)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """World-to-camera rotation for a camera looking along +y turned by ``yaw``, tilted down by ``pitch``."""
    fwd = np.array([math.sin(yaw) * math.cos(pitch), math.cos(yaw) * math.cos(pitch), -math.sin(pitch)])
    right = np.array([math.cos(yaw), -math.sin(yaw), 0.0])
    down = np.cross(fwd, right)
    c, s = math.cos(roll), math.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, fwd])


def make_cameras(rng: np.random.Generator, n: int, overlap: float, width: int, height: int) -> list[Camera]:
    """Place ``n`` cameras along the walkway.

    Camera ``k`` overlaps camera ``k - 1`` when ``k % 3 == 1`` and ``overlap > 0`` (its mid-walkway view
    shares ``overlap`` of its width); every other camera starts 2-4 m after the previous one's footprint at
    the walkway's far edge (where views are widest), so that people need a few seconds to cross unseen.
    """
    mid_y = sum(WALK_Y) / 2
    cams: list[Camera] = []
    for k in range(n):
        f = width * rng.uniform(0.78, 0.9)
        K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
        h = rng.uniform(4.3, 5.6)
        cy = rng.uniform(-2.2, -1.2)
        target = rng.uniform(10.5, 12.5)
        pitch = math.atan2(h, target - cy)
        R = _rotation(math.radians(rng.uniform(-7, 7)), pitch, math.radians(rng.uniform(-1.5, 1.5)))
        gain = rng.uniform(0.9, 1.1, 3) * rng.uniform(0.85, 1.12)
        look = Look(
            gain,
            float(rng.uniform(0.85, 1.15)),
            float(rng.uniform(0, 12)),
            float(rng.uniform(0.3, 0.9)),
            float(rng.uniform(1.2, 2.4)),
        )
        cam = Camera(f"cam{k + 1}", width, height, K, R, np.array([0.0, cy, h]), look)
        if k == 0:
            cam.C[0] = 0.0
        elif k % 3 == 1 and overlap > 0:
            pa, pb = cams[-1].x_extent(mid_y)
            a, b = cam.x_extent(mid_y)
            cam.C[0] = pb - overlap * (b - a) - a
        else:
            far_prev = cams[-1].x_extent(WALK_Y[1])[1]
            cam.C[0] = far_prev + rng.uniform(2.0, 4.0) - cam.x_extent(WALK_Y[1])[0]
        cams.append(cam)
    return cams


# ------------------------------------------------------------------------------------------------ people

_SKIN = [(190, 215, 245), (150, 185, 225), (110, 150, 200), (80, 110, 160), (60, 80, 120), (170, 200, 235)]
_HAIR = [(20, 20, 25), (30, 45, 70), (40, 70, 110), (90, 140, 190), (150, 150, 155), (25, 35, 50)]
_SHIRT = [
    (40, 40, 200),
    (200, 80, 30),
    (40, 160, 40),
    (30, 200, 230),
    (240, 240, 240),
    (30, 30, 30),
    (130, 40, 120),
    (200, 160, 60),
    (60, 100, 230),
    (120, 120, 120),
    (180, 200, 90),
    (90, 50, 160),
    (150, 60, 20),
    (70, 190, 190),
    (210, 130, 200),
    (20, 90, 140),
]
_TROUSERS = [
    (120, 60, 30),
    (30, 30, 30),
    (90, 90, 90),
    (100, 150, 170),
    (60, 40, 30),
    (170, 120, 80),
    (50, 70, 60),
    (140, 140, 150),
]
_ACCENT = [(255, 255, 255), (20, 20, 20), (0, 215, 255), (0, 0, 220), (220, 120, 0), (60, 200, 60)]


@dataclass
class _Appearance:
    """Clothing and body of one person; colours are BGR tuples."""

    height_m: float
    build: float  # shoulder width multiplier
    skin: tuple
    hair: tuple
    long_hair: bool
    shirt: tuple
    long_sleeves: bool
    stripes: tuple | None  # stripe colour
    n_stripes: int
    logo: tuple | None  # logo colour
    logo_shape: str
    trousers: tuple
    shorts: bool
    shoes: tuple
    bag: str  # "none" | "backpack" | "shoulder"
    bag_color: tuple
    bag_side: int

    def summary(self) -> dict:
        def hexc(c):
            return f"#{c[2]:02x}{c[1]:02x}{c[0]:02x}"

        return {
            "height_m": self.height_m,
            "shirt": hexc(self.shirt),
            "sleeves": "long" if self.long_sleeves else "short",
            "pattern": "stripes" if self.stripes else "plain",
            "stripe_color": hexc(self.stripes) if self.stripes else None,
            "logo": self.logo_shape if self.logo else None,
            "logo_color": hexc(self.logo) if self.logo else None,
            "trousers": hexc(self.trousers),
            "legwear": "shorts" if self.shorts else "trousers",
            "shoes": hexc(self.shoes),
            "hair": ("long " if self.long_hair else "short ") + hexc(self.hair),
            "skin": hexc(self.skin),
            "bag": self.bag,
            "bag_color": hexc(self.bag_color) if self.bag != "none" else None,
        }


def _jitter(rng: np.random.Generator, color: tuple, amount: float) -> tuple:
    return tuple(int(v) for v in np.clip(np.array(color) + rng.normal(0, amount, 3), 0, 255))


def _random_appearance(rng: np.random.Generator) -> _Appearance:
    def pick(seq):
        return seq[int(rng.integers(len(seq)))]

    shirt = _jitter(rng, pick(_SHIRT), 12)
    stripes = _jitter(rng, pick(_ACCENT), 8) if rng.random() < 0.3 else None
    logo = _jitter(rng, pick(_ACCENT), 8) if rng.random() < 0.35 else None
    bag = ["none", "none", "backpack", "shoulder"][int(rng.integers(4))]
    return _Appearance(
        height_m=round(float(rng.uniform(1.6, 1.9)), 3),
        build=float(rng.uniform(0.9, 1.12)),
        skin=pick(_SKIN),
        hair=pick(_HAIR),
        long_hair=bool(rng.random() < 0.3),
        shirt=shirt,
        long_sleeves=bool(rng.random() < 0.5),
        stripes=stripes,
        n_stripes=int(rng.integers(3, 6)),
        logo=logo,
        logo_shape=pick(["circle", "square", "triangle"]),
        trousers=_jitter(rng, pick(_TROUSERS), 10),
        shorts=bool(rng.random() < 0.2),
        shoes=_jitter(rng, pick([(20, 20, 20), (230, 230, 230), (40, 60, 90)]), 6),
        bag=bag,
        bag_color=_jitter(rng, pick(_SHIRT), 15),
        bag_side=int(rng.choice([-1, 1])),
    )


def _near_twin(rng: np.random.Generator, a: _Appearance) -> _Appearance:
    """Someone dressed almost like ``a``: the same clothes with colours a few grey levels apart."""

    def j(c):
        return _jitter(rng, c, 4) if c is not None else None

    return _Appearance(
        height_m=round(float(np.clip(a.height_m + rng.uniform(-0.04, 0.04), 1.6, 1.9)), 3),
        build=a.build,
        skin=a.skin,
        hair=a.hair,
        long_hair=a.long_hair,
        shirt=j(a.shirt),
        long_sleeves=a.long_sleeves,
        stripes=j(a.stripes),
        n_stripes=a.n_stripes,
        logo=j(a.logo),
        logo_shape=a.logo_shape,
        trousers=j(a.trousers),
        shorts=a.shorts,
        shoes=a.shoes,
        bag=a.bag if rng.random() < 0.5 else "none",
        bag_color=j(a.bag_color),
        bag_side=a.bag_side,
    )


@dataclass
class Walker:
    """A walker: height and a path of keyframes ``(t, x, y)`` (seconds, metres), linear in between.

    ``look`` is what the person looks like to the renderer that draws them (``track-sim``: an
    :class:`_Appearance`; the compositor: the real crops they are made of); ``twin_of`` the id of the person
    they are dressed almost like, if any.
    """

    pid: int
    height_m: float
    keys: np.ndarray  # (K, 3) float64
    cycle_m: float  # metres walked per full gait cycle (two steps)
    phase0: float
    look: Any = None
    twin_of: int | None = None

    def __post_init__(self) -> None:
        seg = np.diff(self.keys[:, 1:], axis=0)
        self._dist = np.r_[0.0, np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))]
        heading = seg.copy()
        for i in range(len(heading)):  # pauses keep the heading of the segment before them
            if np.hypot(*heading[i]) < 1e-9:
                heading[i] = heading[i - 1] if i else seg[np.argmax(np.hypot(seg[:, 0], seg[:, 1]))]
        self._heading = heading / np.hypot(heading[:, 0], heading[:, 1])[:, None]
        self._moving = np.hypot(seg[:, 0], seg[:, 1]) > 1e-9

    def state(self, t: float) -> tuple[np.ndarray, np.ndarray, float, bool] | None:
        """Ground position (2,), unit heading (2,), gait phase (rad) and whether walking; None when absent."""
        ts = self.keys[:, 0]
        if t < ts[0] or t > ts[-1]:
            return None
        i = int(np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 2))
        pos = np.array([np.interp(t, ts, self.keys[:, 1]), np.interp(t, ts, self.keys[:, 2])])
        phase = self.phase0 + 2 * math.pi * float(np.interp(t, ts, self._dist)) / self.cycle_m
        return pos, self._heading[i], phase, bool(self._moving[i])

    def speed_mps(self) -> float:
        """Mean speed over the whole path, pauses included (metres per second, 3 decimals)."""
        return round(float(self._dist[-1] / max(1e-9, self.keys[-1, 0] - self.keys[0, 0])), 3)


def _make_people(
    rng: np.random.Generator, n: int, seconds: float, x_range: tuple[float, float], doors: list[float]
) -> list[Walker]:
    """``n`` drawn walkers (:func:`make_walkers`); about one in six is dressed almost like an earlier person."""
    looks: list[_Appearance] = []
    twins: list[int | None] = []
    for i in range(n):
        sources = [j for j in range(i) if twins[j] is None and j + 1 not in twins]
        if i % 6 == 5 and sources:
            src = sources[int(rng.integers(len(sources)))]
            looks.append(_near_twin(rng, looks[src]))
            twins.append(src + 1)
        else:
            looks.append(_random_appearance(rng))
            twins.append(None)
    people = make_walkers(rng, [look.height_m for look in looks], seconds, x_range, doors)
    for p in people:
        p.look, p.twin_of = looks[p.pid - 1], twins[p.pid - 1]
    return people


def make_walkers(
    rng: np.random.Generator,
    heights: list[float],
    seconds: float,
    x_range: tuple[float, float],
    doors: list[float],
) -> list[Walker]:
    """One walker per height (ids 1..n in order): most cross the walkway end to end, others come out of or
    go into building doors (``doors``: their x on the far side, at least one).

    Start times are spread so that people are in the scene throughout ``[0, seconds]``; some pause for a
    moment. ``x_range``: the walkway's ends (metres), just outside every view.
    """
    n = len(heights)
    x0, x1 = x_range
    y_lo, y_hi = WALK_Y
    people = []
    order = rng.permutation(n)
    for slot, i in enumerate(order):
        speed = float(rng.uniform(1.1, 1.6))
        kind = rng.choice(["through", "through", "through", "door_end", "end_door", "door_door"])
        ends = [x0, x1] if rng.random() < 0.5 else [x1, x0]
        door_a, door_b = (float(d) for d in rng.choice(doors, 2, replace=len(doors) < 2))
        door_y = _WALL_Y - 0.05
        if kind == "through":
            start, end = (ends[0], rng.uniform(y_lo, y_hi)), (ends[1], rng.uniform(y_lo, y_hi))
        elif kind == "door_end":
            start, end = (door_a, door_y), (ends[1], rng.uniform(y_lo, y_hi))
        elif kind == "end_door":
            start, end = (ends[0], rng.uniform(y_lo, y_hi)), (door_a, door_y)
        else:
            start, end = (door_a, door_y), (door_b, door_y)
        pts = [start]
        if start[1] > y_hi:  # come straight out of the door onto the walkway
            pts.append((start[0], y_hi - rng.uniform(0, 1.5)))
        last = (end[0], y_hi - rng.uniform(0, 1.5)) if end[1] > y_hi else end
        ax, bx = pts[-1][0], last[0]
        for w in np.sort(rng.uniform(0.15, 0.85, int(rng.integers(1, 4)))):
            wobble = rng.uniform(-3, 3) if abs(bx - ax) < 6 else 0.0
            pts.append((ax + w * (bx - ax) + wobble, rng.uniform(y_lo, y_hi)))
        if end[1] > y_hi:  # and straight into the door at the end
            pts.append(last)
        pts.append(end)
        pts_a = np.array(pts, dtype=np.float64)
        seg = np.hypot(*np.diff(pts_a, axis=0).T)
        times = np.r_[0.0, np.cumsum(seg / speed)]
        keys = [[times[0], *pts_a[0]]]
        pause_at = int(rng.integers(1, len(pts_a) - 1)) if rng.random() < 0.25 and len(pts_a) > 2 else -1
        shift = 0.0
        for j in range(1, len(pts_a)):
            keys.append([times[j] + shift, *pts_a[j]])
            if j == pause_at:
                shift += float(rng.uniform(1.0, 3.0))
                keys.append([times[j] + shift, *pts_a[j]])
        keys_a = np.array(keys)
        dur = keys_a[-1, 0]
        lo, hi = -0.65 * dur, seconds - 0.35 * dur
        t0 = lo + (hi - lo) * (slot + rng.uniform(0.1, 0.9)) / n
        keys_a[:, 0] += t0
        height = heights[i]
        people.append(
            Walker(
                int(i) + 1,
                height,
                np.round(keys_a, 3),
                cycle_m=0.8 * height,
                phase0=float(rng.uniform(0, 2 * math.pi)),
            )
        )
    people.sort(key=lambda p: p.pid)
    return people


# -------------------------------------------------------------------------------------------- background


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int, amp: float) -> np.ndarray:
    """(H, W) float32 low-frequency noise of std ~``amp``: random values every ``cell`` pixels, upsampled."""
    small = rng.normal(0, amp, (shape[0] // cell + 2, shape[1] // cell + 2)).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _ground_texture(
    rng: np.random.Generator, x_range: tuple[float, float], y_range: tuple[float, float]
) -> np.ndarray:
    """(Hy, Wx, 3) uint8 ground texture at ``_PPM`` px/m: grass near the cameras, a kerb, slab paving on
    the walkway, brick paving towards the building."""
    wx = int((x_range[1] - x_range[0]) * _PPM)
    hy = int((y_range[1] - y_range[0]) * _PPM)
    xs = (x_range[0] + (np.arange(wx) + 0.5) / _PPM).astype(np.float32)
    ys = (y_range[0] + (np.arange(hy) + 0.5) / _PPM).astype(np.float32)
    X, Y = np.meshgrid(xs, ys)
    out = np.zeros((hy, wx, 3), np.float32)
    # slabs: 1 m x 0.75 m, each with its own tone
    ix, iy = np.floor(X).astype(np.int64), np.floor(Y / 0.75).astype(np.int64)
    tone = rng.normal(0, 9, 4096).astype(np.float32)[(ix * 7919 + iy * 104729) % 4096]
    base = np.array([150, 155, 160], np.float32)
    out[:] = base + tone[..., None]
    grout = (X - ix < 0.03) | (Y / 0.75 - iy < 0.04)
    out[grout] *= 0.72
    # bricks beyond the walkway: 0.2 m x 0.1 m, staggered rows
    brick_zone = Y > WALK_Y[1] + 0.6
    by = np.floor(Y / 0.1).astype(np.int64)
    bx = np.floor(X / 0.2 + 0.5 * (by % 2)).astype(np.int64)
    btone = rng.normal(0, 12, 4096).astype(np.float32)[(bx * 31 + by * 7907) % 4096]
    brick = np.array([70, 90, 150], np.float32) + btone[..., None]
    bgrout = (Y / 0.1 - by < 0.15) | (X / 0.2 + 0.5 * (by % 2) - bx < 0.08)
    brick[bgrout] = (120, 125, 130)
    out[brick_zone] = brick[brick_zone]
    # grass and kerb near the cameras
    grass_zone = Y < WALK_Y[0] - 0.8
    grass = np.array([60, 120, 70], np.float32) + _smooth_noise(rng, X.shape, 6, 10)[..., None]
    out[grass_zone] = grass[grass_zone]
    kerb = (Y >= WALK_Y[0] - 0.8) & (Y < WALK_Y[0] - 0.55)
    out[kerb] = (185, 188, 190)
    out += _smooth_noise(rng, X.shape, 10, 5)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _wall_texture(rng: np.random.Generator, x_range: tuple[float, float], doors: list[float]) -> np.ndarray:
    """(Hz, Wx, 3) uint8 building front at ``_PPM`` px/m (row 0 is the top, ``_WALL_H`` metres up):
    blocks of different colours with rows of windows, shop signs and the doors people use."""
    wx = int((x_range[1] - x_range[0]) * _PPM)
    hz = int(_WALL_H * _PPM)
    out = np.zeros((hz, wx, 3), np.uint8)

    def px(x):
        return int(round((x - x_range[0]) * _PPM))

    def pz(z):
        return int(round((_WALL_H - z) * _PPM))

    facades = [
        (190, 200, 210),
        (90, 100, 160),
        (150, 150, 150),
        (200, 225, 235),
        (110, 130, 120),
        (160, 170, 190),
    ]
    x = x_range[0]
    while x < x_range[1]:
        w = float(rng.uniform(7, 14))
        col = _jitter(rng, facades[int(rng.integers(len(facades)))], 8)
        cv2.rectangle(out, (px(x), 0), (px(x + w), hz), col, -1)
        glass = _jitter(rng, (90, 70, 50), 10)
        frame_c = _jitter(rng, (225, 225, 225), 10)
        spacing = float(rng.uniform(2.2, 3.0))
        for floor in range(1, 4):
            z0 = 3.2 * floor + 0.3
            wx0 = x + 0.8
            while wx0 + 1.2 < x + w - 0.5:
                cv2.rectangle(
                    out, (px(wx0) - 3, pz(z0 + 1.7) - 3), (px(wx0 + 1.2) + 3, pz(z0) + 3), frame_c, -1
                )
                cv2.rectangle(out, (px(wx0), pz(z0 + 1.7)), (px(wx0 + 1.2), pz(z0)), glass, -1)
                wx0 += spacing
        cv2.rectangle(out, (px(x), pz(3.0)), (px(x + w), pz(2.7)), _jitter(rng, (60, 60, 60), 20), -1)
        cv2.line(out, (px(x), 0), (px(x), hz), (70, 70, 70), 3)
        x += w
    for d in doors:
        cv2.rectangle(
            out, (px(d - _DOOR_W / 2) - 4, pz(2.4) - 4), (px(d + _DOOR_W / 2) + 4, hz), (60, 60, 60), -1
        )
        cv2.rectangle(out, (px(d - _DOOR_W / 2), pz(2.3)), (px(d + _DOOR_W / 2), hz), (45, 35, 30), -1)
    return cv2.GaussianBlur(out, (0, 0), 0.8)


@dataclass
class _Prop:
    """A static object on the ground: a box (bench, bin, planter) or a post (lamp, tree)."""

    kind: str
    x: float
    y: float
    size: tuple[float, float, float]  # box: width x, depth y, height z; post: radius, height, crown
    color: tuple


def _make_props(rng: np.random.Generator, x_range: tuple[float, float], doors: list[float]) -> list[_Prop]:
    """Benches, bins, planters, lamp posts and trees between the walkway and the building, clear of doors."""
    props: list[_Prop] = []
    x = x_range[0] + rng.uniform(0, 3)
    while x < x_range[1]:
        if all(abs(x - d) > 3.0 for d in doors):
            y = float(rng.uniform(WALK_Y[1] + 1.2, _WALL_Y - 0.6))
            kind = ["bench", "bin", "planter", "lamp", "tree"][int(rng.integers(5))]
            if kind == "bench":
                props.append(_Prop(kind, x, y, (1.8, 0.5, 0.45), _jitter(rng, (40, 80, 120), 10)))
            elif kind == "bin":
                props.append(_Prop(kind, x, y, (0.5, 0.5, 0.9), _jitter(rng, (50, 90, 50), 10)))
            elif kind == "planter":
                props.append(_Prop(kind, x, y, (1.2, 1.2, 0.6), _jitter(rng, (110, 120, 130), 10)))
            elif kind == "lamp":
                props.append(_Prop(kind, x, y, (0.07, 4.5, 0.0), (60, 60, 60)))
            else:
                props.append(_Prop(kind, x, y, (0.12, 2.6, 1.5), _jitter(rng, (40, 110, 50), 12)))
        x += float(rng.uniform(3.0, 7.0))
    return props


def _draw_prop(img: np.ndarray, cam: Camera, prop: _Prop) -> None:
    """Draw one static object with filled polygons (visible faces far first)."""
    if prop.kind in ("lamp", "tree"):
        r, h, crown = prop.size
        (base, top), depth = cam.project(np.array([[prop.x, prop.y, 0], [prop.x, prop.y, h]]))
        if depth.min() <= 0.5:
            return
        th = max(1, int(round(cam.K[0, 0] * 2 * r / depth[0])))
        trunk = (40, 60, 80) if prop.kind == "tree" else prop.color
        cv2.line(
            img,
            tuple(np.round(base * _ONE).astype(int)),
            tuple(np.round(top * _ONE).astype(int)),
            trunk,
            th,
            cv2.LINE_AA,
            _SHIFT,
        )
        rad = cam.K[0, 0] * (crown if prop.kind == "tree" else 0.25) / depth[1]
        centre = tuple(np.round(top * _ONE).astype(int))
        col = prop.color if prop.kind == "tree" else (200, 240, 250)
        cv2.circle(img, centre, int(rad * _ONE), col, -1, cv2.LINE_AA, _SHIFT)
        if prop.kind == "tree":
            cv2.circle(
                img,
                tuple(np.round((top - [rad * 0.3, rad * 0.3]) * _ONE).astype(int)),
                int(rad * 0.55 * _ONE),
                tuple(min(255, c + 30) for c in col),
                -1,
                cv2.LINE_AA,
                _SHIFT,
            )
        return
    w, d, h = prop.size
    xs, ys = prop.x + np.array([-w, w]) / 2, prop.y + np.array([-d, d]) / 2
    corners = np.array([[x, y, z] for z in (0, h) for y in ys for x in xs])  # index = 4z + 2y + x
    uv, depth = cam.project(corners)
    if depth.min() <= 0.5:
        return
    faces = [
        (4, 5, 7, 6),
        (0, 1, 5, 4),
        (2, 3, 7, 6),
        (0, 2, 6, 4),
        (1, 3, 7, 5),
    ]  # top, near, far, left, right
    shade = [1.15, 0.85, 0.85, 0.7, 0.7]
    centre_depth = [depth[list(f)].mean() for f in faces]
    for fi in np.argsort(centre_depth)[::-1]:
        col = tuple(int(min(255, c * shade[fi])) for c in prop.color)
        pts = np.round(uv[list(faces[fi])] * _ONE).astype(np.int32)
        cv2.fillConvexPoly(img, pts, col, cv2.LINE_AA, _SHIFT)
    if prop.kind == "planter":
        top = cam.project(np.array([[prop.x, prop.y, h + 0.35]]))[0][0]
        rad = cam.K[0, 0] * 0.6 / depth.mean()
        cv2.ellipse(
            img,
            tuple(np.round(top * _ONE).astype(int)),
            (int(rad * _ONE), int(rad * 0.7 * _ONE)),
            0,
            0,
            360,
            (50, 130, 60),
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )


def _render_background(
    cam: Camera,
    ground: np.ndarray,
    wall: np.ndarray,
    x_range: tuple[float, float],
    y0: float,
    props: list[_Prop],
) -> np.ndarray:
    """(H, W, 3) uint8 static view: every pixel's ray hits the ground, the building front or the sky;
    the textures are sampled with ``cv2.remap`` and the props drawn on top (they stand beyond the walkway,
    so people are always in front of them)."""
    H, W = cam.height, cam.width
    v, u = np.mgrid[0:H, 0:W]
    d = cam.rays(u.ravel().astype(np.float64), v.ravel().astype(np.float64))
    C = cam.C
    with np.errstate(divide="ignore", invalid="ignore"):
        sg = np.where(d[:, 2] < -1e-9, -C[2] / d[:, 2], np.inf)
        sw = np.where(d[:, 1] > 1e-9, (_WALL_Y - C[1]) / d[:, 1], np.inf)
    gpt = C + np.where(np.isfinite(sg), sg, 0)[:, None] * d
    wpt = C + np.where(np.isfinite(sw), sw, 0)[:, None] * d
    on_ground = np.isfinite(sg) & (sg <= sw)
    on_wall = ~on_ground & np.isfinite(sw) & (wpt[:, 2] <= _WALL_H)
    gmx = ((gpt[:, 0] - x_range[0]) * _PPM - 0.5).astype(np.float32).reshape(H, W)
    gmy = ((gpt[:, 1] - y0) * _PPM - 0.5).astype(np.float32).reshape(H, W)
    wmx = ((wpt[:, 0] - x_range[0]) * _PPM - 0.5).astype(np.float32).reshape(H, W)
    wmy = ((_WALL_H - wpt[:, 2]) * _PPM - 0.5).astype(np.float32).reshape(H, W)
    g_img = cv2.remap(ground, gmx, gmy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    w_img = cv2.remap(wall, wmx, wmy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    sky = np.empty((H, W, 3), np.uint8)
    sky[:] = np.linspace([235, 215, 190], [250, 200, 150], H).astype(np.uint8)[:, None, :]
    out = np.where(on_ground.reshape(H, W, 1), g_img, np.where(on_wall.reshape(H, W, 1), w_img, sky))
    out = np.ascontiguousarray(out)
    for prop in sorted(props, key=lambda p: -float(cam.project(np.array([[p.x, p.y, 0.0]]))[1][0])):
        _draw_prop(out, cam, prop)
    return out


# ------------------------------------------------------------------------------------------------ figures


class _Pen:
    """Draws in body coordinates onto a small BGRA canvas.

    Body coordinates ``(a, b)``: ``a`` sideways (image right positive), ``b`` up, both in units of the
    person's height; ``(0, 0)`` is the foot point. Alpha 255 marks the figure's pixels.
    """

    def __init__(self, foot: np.ndarray, up: np.ndarray, hpx: float):
        self.hpx = hpx
        self.up = up
        self.right = np.array([-up[1], up[0]])
        corners = np.array([self._img(a, b) for a in (-0.36, 0.36) for b in (-0.03, 1.04)]) + foot
        lo = np.floor(corners.min(0)).astype(int) - 2
        hi = np.ceil(corners.max(0)).astype(int) + 2
        self.origin = lo
        self.canvas = np.zeros((hi[1] - lo[1], hi[0] - lo[0], 4), np.uint8)
        self.foot = foot - lo
        self.angle = math.degrees(math.atan2(self.right[1], self.right[0]))

    def _img(self, a: float, b: float) -> np.ndarray:
        return self.hpx * (a * self.right + b * self.up)

    def pt(self, a: float, b: float) -> tuple[int, int]:
        p = (self.foot + self._img(a, b)) * _ONE
        return int(round(p[0])), int(round(p[1]))

    def px(self, length: float, minimum: int = 1) -> int:
        return max(minimum, int(round(length * self.hpx)))

    def line(self, p, q, color, width: float) -> None:
        cv2.line(self.canvas, self.pt(*p), self.pt(*q), (*color, 255), self.px(width), cv2.LINE_8, _SHIFT)

    def poly(self, pts, color) -> None:
        arr = np.array([self.pt(*p) for p in pts], np.int32)
        cv2.fillConvexPoly(self.canvas, arr, (*color, 255), cv2.LINE_8, _SHIFT)

    def disc(self, c, r: float, color) -> None:
        cv2.circle(
            self.canvas,
            self.pt(*c),
            max(_ONE // 2, int(round(r * self.hpx * _ONE))),
            (*color, 255),
            -1,
            cv2.LINE_8,
            _SHIFT,
        )

    def arc(self, c, rx: float, ry: float, start: float, end: float, color) -> None:
        axes = (
            max(_ONE // 2, int(round(rx * self.hpx * _ONE))),
            max(_ONE // 2, int(round(ry * self.hpx * _ONE))),
        )
        cv2.ellipse(
            self.canvas, self.pt(*c), axes, self.angle, start, end, (*color, 255), -1, cv2.LINE_8, _SHIFT
        )


def _shade(color: tuple, k: float) -> tuple:
    return tuple(int(min(255, c * k)) for c in color)


def _draw_figure(
    look: _Appearance,
    foot: np.ndarray,
    up: np.ndarray,
    hpx: float,
    facing: int,
    side: float,
    front: bool,
    phase: float,
    walking: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one articulated walker; returns the BGRA canvas (h, w, 4) uint8 and its top-left pixel (2,) int.

    ``foot``/``up``: image foot point and unit up direction; ``hpx``: standing height in pixels;
    ``facing``: +1 walking towards image right; ``side`` in [0, 1]: 1 = seen from the side, 0 = from the
    front or back; ``front``: walking towards the camera; ``phase``: gait phase in radians.
    """
    pen = _Pen(foot, up, hpx)
    amp = 0.42 if walking else 0.0
    legs = []
    for i in range(2):
        ph = phase + i * math.pi
        thigh = amp * math.sin(ph)
        shin = thigh - (0.9 * max(0.0, math.cos(ph)) if walking else 0.0)
        legs.append((thigh, shin))
    # the lower ankle stands 0.065 up: the shin's round line cap (half its 0.07 width) ends inside the shoe,
    # whose sole (0.03 below the shoe's centre, itself 0.035 below the ankle) touches the foot point
    hip_b = 0.065 + max(_THIGH * math.cos(t) + _SHIN * math.cos(s) for t, s in legs)
    sway = 0.012 * math.sin(phase) * (1 - side) if walking else 0.0
    lean = 0.025 * facing * side if walking else 0.0

    def ub(a, b):
        return (a + sway + lean * (b - hip_b) / 0.5, b)

    sh_b = hip_b + 0.32
    sw = (0.115 - 0.05 * side) * look.build
    hw = (0.085 - 0.03 * side) * look.build
    fwd = facing * side

    def leg(i: int, dim: float) -> None:
        thigh, shin = legs[i]
        hx = (-1 if i == 0 else 1) * 0.045 * (1 - side) * look.build
        hip = (hx, hip_b + 0.02)
        knee = (hx + fwd * _THIGH * math.sin(thigh), hip_b - _THIGH * math.cos(thigh))
        ankle = (knee[0] + fwd * _SHIN * math.sin(shin), knee[1] - _SHIN * math.cos(shin))
        pen.line(hip, knee, _shade(look.trousers, dim), 0.08)
        pen.line(knee, ankle, _shade(look.skin if look.shorts else look.trousers, dim), 0.07)
        pen.arc(
            (ankle[0] + fwd * 0.02, ankle[1] - 0.035),
            0.035 + 0.015 * side,
            0.03,
            0,
            360,
            _shade(look.shoes, dim),
        )

    def arm(i: int, dim: float) -> None:
        swing = -0.7 * amp * math.sin(phase + i * math.pi)
        out = (-1 if i == 0 else 1) * (sw - 0.015) * (1 - side)
        shoulder = ub(out, sh_b - 0.015)
        elbow = ub(out * 1.05 + fwd * 0.16 * math.sin(swing), sh_b - 0.015 - 0.16 * math.cos(swing))
        bend = swing + 0.35 * side
        hand = ub(
            elbow[0] - sway - lean * (elbow[1] - hip_b) / 0.5 + fwd * 0.15 * math.sin(bend),
            elbow[1] - 0.15 * math.cos(bend),
        )
        sleeve = look.shirt if look.long_sleeves else look.skin
        pen.line(shoulder, elbow, _shade(look.shirt, dim), 0.055)
        pen.line(elbow, hand, _shade(sleeve, dim), 0.048)
        pen.disc(hand, 0.024, _shade(look.skin, dim))

    def width_at(b: float) -> float:
        return hw + (sw - hw) * (b - hip_b) / (sh_b - hip_b)

    back_view = not front and side < 0.5
    if look.bag == "backpack" and not back_view and side >= 0.5:
        bx = -facing * (sw * 0.6)
        pen.poly(
            [
                ub(bx, sh_b - 0.02),
                ub(bx - facing * 0.09, sh_b - 0.03),
                ub(bx - facing * 0.09, sh_b - 0.2),
                ub(bx, sh_b - 0.2),
            ],
            look.bag_color,
        )
    far, near = (0, 1) if facing > 0 else (1, 0)
    dim_far = 0.75 if side > 0.3 else 1.0
    arm(far, dim_far)
    leg(far, dim_far)
    leg(near, 1.0)
    pen.poly([ub(-sw, sh_b), ub(sw, sh_b), ub(hw, hip_b + 0.01), ub(-hw, hip_b + 0.01)], look.shirt)
    pen.disc(ub(-sw + 0.03, sh_b - 0.025), 0.035, look.shirt)
    pen.disc(ub(sw - 0.03, sh_b - 0.025), 0.035, look.shirt)
    if look.stripes is not None:
        for k in range(look.n_stripes):
            b = hip_b + 0.04 + (sh_b - hip_b - 0.08) * (k + 0.5) / look.n_stripes
            wa = width_at(b)
            pen.line(ub(-wa, b), ub(wa, b), look.stripes, 0.022)
    if look.logo is not None and (front or side >= 0.5):
        c = ub(0.035 * fwd + (0.0 if side >= 0.5 else -0.03), sh_b - 0.08)
        if look.logo_shape == "circle":
            pen.disc(c, 0.028, look.logo)
        elif look.logo_shape == "square":
            pen.poly(
                [
                    (c[0] - 0.025, c[1] + 0.025),
                    (c[0] + 0.025, c[1] + 0.025),
                    (c[0] + 0.025, c[1] - 0.025),
                    (c[0] - 0.025, c[1] - 0.025),
                ],
                look.logo,
            )
        else:
            pen.poly(
                [(c[0], c[1] + 0.03), (c[0] + 0.03, c[1] - 0.025), (c[0] - 0.03, c[1] - 0.025)], look.logo
            )
    if look.bag == "backpack":
        if back_view:
            pen.poly(
                [
                    ub(-0.075, sh_b - 0.02),
                    ub(0.075, sh_b - 0.02),
                    ub(0.08, sh_b - 0.2),
                    ub(-0.08, sh_b - 0.2),
                ],
                look.bag_color,
            )
        elif side < 0.5:
            for s in (-1, 1):
                pen.line(ub(s * 0.06, sh_b), ub(s * 0.075, sh_b - 0.16), _shade(look.bag_color, 0.8), 0.018)
    # neck and head
    head_c = ub(0.01 * fwd, sh_b + 0.045 + 0.065)
    if look.long_hair and not back_view:
        pen.poly(
            [
                ub(head_c[0] - 0.07, head_c[1]),
                ub(head_c[0] + 0.07, head_c[1]),
                ub(head_c[0] + 0.065 - 0.03 * fwd, sh_b - 0.01),
                ub(head_c[0] - 0.065 - 0.03 * fwd, sh_b - 0.01),
            ],
            look.hair,
        )
    pen.line(ub(0, sh_b - 0.01), ub(0.005 * fwd, sh_b + 0.05), look.skin, 0.04)
    pen.disc(head_c, 0.065, look.hair if back_view else look.skin)
    pen.arc(head_c, 0.068, 0.068, 180, 360, look.hair)
    if side >= 0.5:
        pen.arc(head_c, 0.068, 0.068, 90 if facing > 0 else 0, 180 if facing > 0 else 90, look.hair)
    if look.long_hair and back_view:
        pen.poly(
            [
                ub(head_c[0] - 0.07, head_c[1]),
                ub(head_c[0] + 0.07, head_c[1]),
                ub(head_c[0] + 0.065, sh_b - 0.04),
                ub(head_c[0] - 0.065, sh_b - 0.04),
            ],
            look.hair,
        )
    if look.bag == "shoulder":
        s = look.bag_side * (1 if front else -1) * (1 - side) + fwd * 0.3
        s = 1.0 if s >= 0 else -1.0
        pen.line(
            ub(-s * sw * 0.7, sh_b), ub(s * (hw + 0.03), hip_b + 0.06), _shade(look.bag_color, 0.7), 0.015
        )
        pen.poly(
            [
                ub(s * (hw - 0.01), hip_b + 0.07),
                ub(s * (hw + 0.075), hip_b + 0.07),
                ub(s * (hw + 0.075), hip_b - 0.07),
                ub(s * (hw - 0.01), hip_b - 0.07),
            ],
            look.bag_color,
        )
    arm(near, 1.0)
    return pen.canvas, pen.origin


# ------------------------------------------------------------------------------------------------ video


# ------------------------------------------------------------------------------------------------ render


def validate_args(
    cameras: int, people: int, seconds: float, fps: float, width: int, height: int, overlap: float
) -> None:
    if not 2 <= cameras <= 6:
        raise InputError(f"--cameras {cameras}: must be between 2 and 6")
    if not 1 <= people <= 500:
        raise InputError(f"--people {people}: must be between 1 and 500")
    if not 0 < seconds <= 3600:
        raise InputError(f"--seconds {seconds}: must be more than 0 and at most 3600")
    if not 1 <= fps <= 120:
        raise InputError(f"--fps {fps}: must be between 1 and 120")
    for name, val in (("--width", width), ("--height", height)):
        if val < 96 or val > 4096 or val % 2:
            raise InputError(f"{name} {val}: must be an even number of pixels between 96 and 4096")
    if not 0 <= overlap <= 0.9:
        raise InputError(f"--overlap {overlap}: must be between 0 and 0.9")


def camera_overlaps(
    cams: list[Camera], x_range: tuple[float, float], doors: list[float]
) -> dict[str, list[str]]:
    """Which cameras share walkable ground (at least 1 m² where a person's foot point is in both images)."""
    xs = np.arange(x_range[0], x_range[1], 0.25)
    ys = np.arange(WALK_Y[0], WALK_Y[1] + 1e-9, 0.25)
    pts = [np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)]
    for d in doors:
        zy = np.arange(WALK_Y[1], _WALL_Y, 0.25)
        pts.append(np.stack([np.full_like(zy, d), zy], 1))
    g = np.concatenate(pts)
    g3 = np.c_[g, np.zeros(len(g))]
    seen = []
    for cam in cams:
        uv, depth = cam.project(g3)
        seen.append(
            (depth > 0.5)
            & (uv[:, 0] >= 0)
            & (uv[:, 0] < cam.width)
            & (uv[:, 1] >= 0)
            & (uv[:, 1] < cam.height)
        )
    return {
        a.name: [
            b.name for j, b in enumerate(cams) if j != i and np.count_nonzero(seen[i] & seen[j]) * 0.0625 >= 1
        ]
        for i, a in enumerate(cams)
    }


def apply_look(
    frame: np.ndarray,
    lut: np.ndarray,
    look: Look,
    noise_pos: np.ndarray,
    noise_neg: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Colour balance (LUT), slight blur and sensor noise (a random window of a pre-drawn noise field)."""
    out = cv2.LUT(frame, lut)
    if look.blur > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), look.blur)
    H, W = frame.shape[:2]
    b = int(rng.integers(len(noise_pos)))
    dy, dx = (int(v) for v in rng.integers(0, 16, 2))
    out = cv2.add(out, noise_pos[b, dy : dy + H, dx : dx + W])
    return cv2.subtract(out, noise_neg[b, dy : dy + H, dx : dx + W])


def render_scene(
    out_dir: str | Path,
    cameras: int = 3,
    people: int = 12,
    seconds: float = 30,
    seed: int = 7,
    overlap: float = 0.3,
    fps: float = 15,
    width: int = 640,
    height: int = 360,
    progress: bool = True,
) -> dict:
    """Render a synthetic multi-camera scene into ``out_dir`` and return its ``scene.json`` content.

    Writes ``<camera>.mp4``, ``gt/<camera>.txt`` and ``scene.json`` (see the module docstring), each
    atomically. Frames are streamed to the encoders, so memory does not grow with ``seconds``.
    Raises :class:`~tracker.errors.InputError` for out-of-range arguments or an unusable ``out_dir``.
    """
    validate_args(cameras, people, seconds, fps, width, height, overlap)
    out = prepare_out_dir(out_dir)
    seeds = np.random.SeedSequence(seed).spawn(5)
    r_cam, r_people, r_world, r_noise, r_frames = (np.random.default_rng(s) for s in seeds)

    cams = make_cameras(r_cam, cameras, overlap, width, height)
    walk_x = walkway_x(cams)
    doors = place_doors(r_world, cams)
    crowd = _make_people(r_people, people, float(seconds), walk_x, doors)
    tex_x = (walk_x[0] - 8.0, walk_x[1] + 8.0)
    tex_y0 = min(float(c.C[1]) for c in cams) - 1.0
    ground = _ground_texture(r_world, tex_x, (tex_y0, _WALL_Y))
    wall = _wall_texture(r_world, tex_x, doors)
    props = _make_props(r_world, walk_x, doors)
    backgrounds = [_render_background(c, ground, wall, tex_x, tex_y0, props) for c in cams]
    del ground, wall
    finish = camera_finish(cams, r_noise, r_frames)
    gt: list[list[tuple]] = [[] for _ in cams]

    def frames(fi: int) -> list[np.ndarray]:
        states = [(p, p.state(fi / fps)) for p in crowd]
        states = [(p, s) for p, s in states if s is not None]
        return [
            finish(ci, _draw_frame(cam, backgrounds[ci], states, gt[ci], fi + 1))
            for ci, cam in enumerate(cams)
        ]

    codec = write_videos(out, cams, fps, seconds, frames, progress)
    write_gt(out, cams, gt)
    scene = _scene_dict(cams, crowd, gt, seed, fps, seconds, width, height, overlap, walk_x, doors, codec)
    atomic_write_json(out / "scene.json", scene)
    return scene


def prepare_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` with a ``gt/`` folder in it, created; :class:`InputError` when that is impossible."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    try:
        (out / "gt").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    return out


def walkway_x(cams: list[Camera]) -> tuple[float, float]:
    """The walkway's ends (metres): 1.5 m beyond the views' far-edge extent, so people enter and leave unseen."""
    far_lo = min(c.x_extent(WALK_Y[1])[0] for c in cams)
    far_hi = max(c.x_extent(WALK_Y[1])[1] for c in cams)
    return round(far_lo - 1.5, 3), round(far_hi + 1.5, 3)


def place_doors(rng: np.random.Generator, cams: list[Camera]) -> list[float]:
    """One building door per camera: its x (metres) in the middle half of the camera's far-edge view."""
    doors = []
    for c in cams:
        a, b = c.x_extent(WALK_Y[1])
        doors.append(round(float(rng.uniform(a + 0.25 * (b - a), b - 0.25 * (b - a))), 3))
    return doors


def camera_finish(
    cams: list[Camera], r_noise: np.random.Generator, r_frames: np.random.Generator
) -> Callable[[int, np.ndarray], np.ndarray]:
    """``finish(camera index, frame) -> frame`` applying that camera's look (:func:`apply_look`).

    Draws each camera's sensor-noise fields from ``r_noise`` now (three (H + 16, W + 16, 3) fields, as
    positive and negative uint8 parts) and a window of them per frame from ``r_frames``.
    """
    noise = []
    for c in cams:
        n = np.round(r_noise.normal(0, c.look.noise, (3, c.height + 16, c.width + 16, 3)))
        noise.append((np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)))
    luts = [c.look.lut() for c in cams]

    def finish(ci: int, frame: np.ndarray) -> np.ndarray:
        return apply_look(frame, luts[ci], cams[ci].look, *noise[ci], r_frames)

    return finish


def write_videos(
    out: Path,
    cams: list[Camera],
    fps: float,
    seconds: float,
    frames: Callable[[int], list[np.ndarray]],
    progress: bool,
    desc: str = "track-sim",
) -> str:
    """Encode ``<camera>.mp4`` for every camera from ``frames(i)`` (0-based frame ``i``: one (H, W, 3) uint8
    BGR image per camera, in ``cams`` order), ``round(seconds * fps)`` frames; returns the codec used."""
    from tqdm import tqdm

    n_frames = max(1, round(seconds * fps))
    with contextlib.ExitStack() as stack:
        writers = [
            stack.enter_context(open_video(out / f"{c.name}.mp4", c.width, c.height, fps, _CRF)) for c in cams
        ]
        bar = stack.enter_context(tqdm(total=n_frames, desc=desc, unit="frame", disable=not progress))
        for fi in range(n_frames):
            for writer, image in zip(writers, frames(fi)):
                writer.write(image)
            bar.update(1)
    return writers[0].codec


def write_gt(out: Path, cams: list[Camera], gt: list[list[tuple]]) -> None:
    """Write ``gt/<camera>.txt`` from rows ``(frame, id, x, y, w, h, visibility)``, sorted by frame then id."""
    for cam, rows in zip(cams, gt):
        rows.sort(key=lambda r: (r[0], r[1]))
        text = "".join(f"{f},{i},{x},{y},{w},{h},1,1,{v:.4f}\n" for f, i, x, y, w, h, v in rows)
        atomic_write_text(out / "gt" / f"{cam.name}.txt", text)


def _draw_frame(
    cam: Camera, background: np.ndarray, states: list, gt_rows: list, frame_no: int
) -> np.ndarray:
    """One camera's frame before its look: shadows, then people far to near; appends the GT rows."""
    H, W = cam.height, cam.width
    frame = background.copy()
    if not states:
        return frame
    pos = np.array([s[0] for _, s in states])
    feet3 = np.c_[pos, np.zeros(len(pos))]
    heads3 = np.c_[pos, [p.look.height_m for p, _ in states]]
    feet, depth = cam.project(feet3)
    heads, _ = cam.project(heads3)
    ids = np.zeros((H, W), np.int16)
    drawn = []
    order = np.argsort(-depth, kind="stable")
    for k in order:
        if depth[k] < 0.8:
            continue
        p, (g, heading, phase, walking) = states[k]
        foot, head = feet[k], heads[k]
        axis = head - foot
        hpx = float(np.hypot(*axis))
        if hpx < 4:
            continue
        top = min(foot[1], head[1]) - 0.1 * hpx
        if foot[0] + 0.4 * hpx < 0 or foot[0] - 0.4 * hpx >= W or top >= H or foot[1] + 0.05 * hpx < 0:
            continue
        vcam = cam.R[:, :2] @ heading
        lateral, toward = vcam[0], -vcam[2]
        side = abs(lateral) / max(1e-9, math.hypot(lateral, vcam[2]))
        canvas, origin = _draw_figure(
            p.look, foot, axis / hpx, hpx, 1 if lateral >= 0 else -1, side, toward > 0, phase, walking
        )
        # soft shadow on the ground under the feet
        sh_c = tuple(int(round(v * _ONE)) for v in foot)
        sh_ax = (int(0.22 * hpx * _ONE), max(_ONE, int(0.045 * hpx * _ONE)))
        x0, y0 = max(0, int(foot[0] - 0.25 * hpx)), max(0, int(foot[1] - 0.06 * hpx))
        x1, y1 = min(W, int(foot[0] + 0.25 * hpx) + 2), min(H, int(foot[1] + 0.06 * hpx) + 2)
        if x1 > x0 and y1 > y0:
            m = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.ellipse(
                m, (sh_c[0] - x0 * _ONE, sh_c[1] - y0 * _ONE), sh_ax, 0, 0, 360, 1, -1, cv2.LINE_8, _SHIFT
            )
            roi = frame[y0:y1, x0:x1]
            roi[m > 0] = (roi[m > 0] * 0.72).astype(np.uint8)
        alpha = canvas[..., 3] > 0
        full = int(np.count_nonzero(alpha))
        if full == 0:
            continue
        rows = np.flatnonzero(alpha.any(1))
        cols = np.flatnonzero(alpha.any(0))
        bx0, by0 = origin[0] + cols[0], origin[1] + rows[0]
        bx1, by1 = origin[0] + cols[-1] + 1, origin[1] + rows[-1] + 1
        # paste the clipped part
        cx0, cy0 = max(0, origin[0]), max(0, origin[1])
        cx1, cy1 = min(W, origin[0] + canvas.shape[1]), min(H, origin[1] + canvas.shape[0])
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        sub = canvas[cy0 - origin[1] : cy1 - origin[1], cx0 - origin[0] : cx1 - origin[0]]
        msk = sub[..., 3] > 0
        if not msk.any():
            continue
        frame[cy0:cy1, cx0:cx1][msk] = sub[..., :3][msk]
        ids[cy0:cy1, cx0:cx1][msk] = k + 1
        drawn.append((k, full, (cx0, cy0, cx1, cy1), (bx0, by0, bx1, by1)))
    for k, full, (cx0, cy0, cx1, cy1), (bx0, by0, bx1, by1) in drawn:
        shown = int(np.count_nonzero(ids[cy0:cy1, cx0:cx1] == k + 1))
        if shown == 0:
            continue
        x0, y0 = max(0, bx0), max(0, by0)
        x1, y1 = min(W, bx1), min(H, by1)
        gt_rows.append(
            (frame_no, states[k][0].pid, int(x0), int(y0), int(x1 - x0), int(y1 - y0), shown / full)
        )
    return frame


def _scene_dict(
    cams: list[Camera],
    crowd: list[Walker],
    gt: list[list[tuple]],
    seed: int,
    fps: float,
    seconds: float,
    width: int,
    height: int,
    overlap: float,
    walk_x: tuple[float, float],
    doors: list[float],
    codec: str,
) -> dict:
    frames = frame_ranges(cams, crowd, gt)
    people = [
        {
            "id": p.pid,
            "appearance": p.look.summary(),
            "dressed_like": p.twin_of,
            "speed_mps": p.speed_mps(),
            "path": _round(p.keys, 3),
            "frames": frames[p.pid],
        }
        for p in crowd
    ]
    return {
        "seed": seed,
        "fps": fps,
        "seconds": seconds,
        "width": width,
        "height": height,
        "overlap": overlap,
        "generator": "tracker.synthetic.render",
        "codec": codec,
        "units": UNITS,
        "ground": {
            "walkway_x": list(walk_x),
            "walkway_y": list(WALK_Y),
            "building_y": _WALL_Y,
            "doors_x": doors,
        },
        "cameras": camera_entries(cams, fps, walk_x, doors),
        "people": people,
    }


UNITS = "metres; path rows are [t seconds, x, y]; frame n is at t = (n - 1) / fps"


def _round(a, n: int = 6) -> list:
    return np.round(np.asarray(a, np.float64), n).tolist()


def camera_entries(
    cams: list[Camera], fps: float, walk_x: tuple[float, float], doors: list[float]
) -> list[dict]:
    """``scene.json``'s ``cameras``: size, homography, projection, position, overlaps, look, file names."""
    overlaps = camera_overlaps(cams, walk_x, doors)
    return [
        {
            "name": cam.name,
            "width": cam.width,
            "height": cam.height,
            "fps": fps,
            "offset": 0.0,
            "homography": _round(cam.H, 9),
            "projection": _round(cam.P, 6),
            "position": _round(cam.C, 4),
            "overlaps": overlaps[cam.name],
            "look": cam.look.summary(),
            "video": f"{cam.name}.mp4",
            "gt": f"gt/{cam.name}.txt",
        }
        for cam in cams
    ]


def frame_ranges(
    cams: list[Camera], crowd: list[Walker], gt: list[list[tuple]]
) -> dict[int, dict[str, list[int]]]:
    """``{person id: {camera: [first frame, last frame]}}`` from the gt rows, cameras in name order."""
    seen: dict[int, dict[str, list[int]]] = {p.pid: {} for p in crowd}
    for cam, rows in zip(cams, gt):
        for f, pid, *_ in rows:
            span = seen[pid].setdefault(cam.name, [f, f])
            span[0], span[1] = min(span[0], f), max(span[1], f)
    return {pid: {name: spans[name] for name in sorted(spans)} for pid, spans in seen.items()}
