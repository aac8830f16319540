"""Semi-real multi-camera scenes: real person crops from a ReID data set walking on a real background.

``track-sim --crops DIR --background VIDEO ...`` (see :func:`render_composite`). The geometry is
``track-sim``'s (:mod:`tracker.synthetic.render`): the same camera layout (``--overlap``), walkway, doors
and walkers' paths on a shared ground plane. What is seen is real:

* **People** are identities of a ReID data set (Market-1501 or MARS layout, :func:`read_reid_folder`) that
  real cameras saw at least twice over: each person's virtual cameras show their real cameras in turn
  (virtual camera ``k`` shows real camera ``cameras[(k + o) % m]``), so appearance changes between
  virtual cameras as it does between real ones. A MARS tracklet plays as the walk (one real frame per
  :data:`_MARS_STEP_M` walked, back and forth); Market-1501 images of one camera are cycled.
* **Masks**: each crop's person is cut out by GrabCut (:func:`person_mask`), seeded by a person-shaped prior
  inside the crop rectangle, and feathered, so that detectors and ReID see a person, not a pasted box.
* **Background**: the per-pixel median of up to 25 frames of a real video (:func:`median_background`);
  each camera shows its own window of it (random zoom, position and mirror), then its colour balance,
  blur and sensor noise (render's :class:`~tracker.synthetic.render.Look`).
* **Composition**: person pixel height from the projection of the foot point and the head point
  ``height_m`` above it; far people first, so nearer ones occlude them; a soft shadow under the feet.

Outputs are those of ``track-sim``: ``<camera>.mp4``, ``gt/<camera>.txt`` (``frame,id,x,y,w,h,1,1,vis``:
the box is the placed mask's extent (where the mask's alpha is over 0.5), also where nearer people hide
it, clipped to the image; ``vis`` the fraction of its mask pixels that are not hidden by nearer people or
cut off by the border) and ``scene.json`` (cameras, people, and which real identity, camera and images
each person is made of). The same arguments give byte-identical ``gt/`` and ``scene.json``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tracker.errors import InputError
from tracker.fsutil import atomic_write_json
from tracker.synthetic import render
from tracker.synthetic.render import Camera, Walker
from tracker.video import IMAGE_SUFFIXES, open_source

SPLITS = ("test", "train", "all")
_SPLIT_FOLDERS = {
    "market1501": {"test": ("bounding_box_test", "query"), "train": ("bounding_box_train",)},
    "mars": {"test": ("bbox_test",), "train": ("bbox_train",)},
}
_MARKET_NAME = re.compile(r"^(-1|\d{4})_c(\d)s(\d+)_(\d{6})_(\d{2})\.jpg(?:\.jpg)?$")
_MARS_NAME = re.compile(r"^(\d{4}|00-1)C(\d)T(\d{4})F(\d{3})\.jpg$")
_JUNK_IDS = {"-1", "0000", "00-1"}  # Market-1501 / MARS junk and distractor boxes
_MARS_STEP_M = 0.056  # metres walked per real MARS frame (25 fps at 1.4 m/s)
_MARKET_HOLD_M = 0.45  # metres walked per Market-1501 image shown
_MAX_SEQUENCE = 32  # real frames (MARS) or images (Market-1501) per person and real camera
_WORK_H = 160  # crops are kept at most this tall (pixels); rendered people are at most ~150 px
_MASK_H = 96  # GrabCut runs at this height (pixels)
_BACKGROUND_FRAMES = 25
_BACKGROUND_MAX_SIDE = 1280


# ------------------------------------------------------------------------------------------------ crops


@dataclass(frozen=True)
class RealCamera:
    """One real camera's crops of one identity, in walking order: ``paths`` and each one's tracklet or
    sequence label (MARS ``T0001``, Market-1501 ``s1``)."""

    camera: int
    paths: tuple[Path, ...]
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    """A real person of the ReID data set: ``real_id`` (the folder's 4-digit id), the split it comes from
    and its crops per real camera (at least two cameras)."""

    real_id: str
    split: str
    cameras: dict[int, RealCamera]


def read_reid_folder(folder: str | Path, split: str = "test") -> tuple[str, list[Identity]]:
    """Find the identities of a ReID crops folder seen by at least two real cameras.

    ``folder``: Market-1501 layout (``bounding_box_test/``, ``query/``, ``bounding_box_train/`` of
    ``PPPP_cCsS_FFFFFF_NN.jpg``) or MARS layout (``bbox_test/PPPP/PPPPCcTttttFfff.jpg``, ``bbox_train/``);
    ``split``: ``"test"`` (default: ids a ReID model is not trained on), ``"train"`` or ``"all"``.
    Junk and distractor ids (-1, 0000) are skipped. Returns the layout (``"market1501"`` or ``"mars"``) and
    the identities sorted by split and id; :class:`InputError` when the folder is no such layout or the
    split has no identity seen twice.
    """
    root = Path(folder)
    if split not in SPLITS:
        raise InputError(f"--crop-split {split}: expected one of {', '.join(SPLITS)}")
    if not root.is_dir():
        raise InputError(f"{root}: crops folder not found")
    layout = next(
        (
            name
            for name, splits in _SPLIT_FOLDERS.items()
            if any((root / sub).is_dir() for subs in splits.values() for sub in subs)
        ),
        None,
    )
    if layout is None:
        raise InputError(
            f"{root}: not a ReID crops folder (expected Market-1501 bounding_box_test/, query/, "
            f"bounding_box_train/ or MARS bbox_test/, bbox_train/)"
        )
    chosen = ("test", "train") if split == "all" else (split,)
    found: list[Identity] = []
    for name in chosen:
        files: dict[tuple[str, int], list[tuple[tuple, Path, str]]] = {}
        for sub in _SPLIT_FOLDERS[layout][name]:
            for key, order, path, group in _scan(root / sub, layout):
                files.setdefault(key, []).append((order, path, group))
        by_id: dict[str, dict[int, RealCamera]] = {}
        for (pid, cam), items in sorted(files.items()):
            items.sort(key=lambda item: (item[0], item[1].name))
            by_id.setdefault(pid, {})[cam] = RealCamera(
                cam, tuple(p for _, p, _ in items), tuple(g for _, _, g in items)
            )
        found += [Identity(pid, name, cams) for pid, cams in sorted(by_id.items()) if len(cams) >= 2]
    if not found:
        raise InputError(
            f"{root}: no identity of the {split} split has crops from two or more real cameras "
            f"({layout} layout)"
        )
    return layout, found


def _scan(folder: Path, layout: str):
    """Yield ``((id, camera), sort key, path, group)`` for every valid crop file under ``folder``."""
    if not folder.is_dir():
        return
    if layout == "market1501":
        paths = (e for e in folder.iterdir() if e.is_file())
    else:
        paths = (e for d in sorted(folder.iterdir()) if d.is_dir() for e in d.iterdir() if e.is_file())
    for path in paths:
        if layout == "market1501":
            m = _MARKET_NAME.match(path.name)
            if m is None or m.group(1) in _JUNK_IDS:
                continue
            pid, cam, seq, frame = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
            yield (pid, cam), (seq, frame), path, f"s{seq}"
        else:
            m = _MARS_NAME.match(path.name)
            if m is None or m.group(1) in _JUNK_IDS:
                continue
            pid, cam, track, frame = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
            yield (pid, cam), (track, frame), path, f"T{track:04d}"


def person_mask(crop: np.ndarray) -> np.ndarray:
    """Soft person mask of a ReID crop: (h, w) float32 alpha in [0, 1].

    GrabCut at :data:`_MASK_H` pixels high, seeded by a person-shaped prior inside the crop rectangle (a
    head and a body ellipse as probable foreground; head, torso and a leg strip as sure foreground; the
    outermost columns as sure background), three iterations, OpenCV's RNG reset first so that the result
    depends on the crop alone. The largest connected part is kept, closed, then feathered (Gaussian,
    sigma 0.8 px at mask size) and resized to the crop. When GrabCut keeps too little or too much (under
    15 % or over 80 % of the crop) the prior's probable-foreground shape is used instead.
    """
    h, w = crop.shape[:2]
    mh = _MASK_H
    mw = max(8, round(w * mh / h))
    small = cv2.resize(crop, (mw, mh), interpolation=cv2.INTER_AREA)
    prior = _mask_prior(mh, mw)
    mask = prior.copy()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(12345)
    cv2.grabCut(small, mask, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n > 1:
        fg = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    if not 0.15 <= fg.mean() <= 0.8:
        fg = (prior != cv2.GC_PR_BGD) & (prior != cv2.GC_BGD)
    alpha = cv2.GaussianBlur(fg.astype(np.float32), (0, 0), 0.8)
    return np.clip(cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def _mask_prior(h: int, w: int) -> np.ndarray:
    """(h, w) uint8 GrabCut seed mask of an upright, centred person filling the crop's height."""
    m = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    cv2.ellipse(
        m, (w // 2, round(0.53 * h)), (round(0.34 * w), round(0.47 * h)), 0, 0, 360, cv2.GC_PR_FGD, -1
    )
    cv2.ellipse(m, (w // 2, round(0.12 * h)), (round(0.16 * w), round(0.1 * h)), 0, 0, 360, cv2.GC_PR_FGD, -1)
    cv2.ellipse(m, (w // 2, round(0.11 * h)), (round(0.09 * w), round(0.05 * h)), 0, 0, 360, cv2.GC_FGD, -1)
    m[round(0.2 * h) : round(0.55 * h), round(0.36 * w) : round(0.64 * w)] = cv2.GC_FGD
    m[round(0.55 * h) : round(0.9 * h), round(0.44 * w) : round(0.56 * w)] = cv2.GC_FGD
    edge = max(1, w // 24)
    m[:, :edge] = cv2.GC_BGD
    m[:, -edge:] = cv2.GC_BGD
    return m


@dataclass
class _Clip:
    """One person's crops of one real camera, loaded and masked: what a virtual camera shows.

    ``images``: (h, w, 3) uint8 BGR crops at most :data:`_WORK_H` high; ``alphas``: their (h, w) float32
    masks; ``top`` / ``bottom`` / ``centre``: median mask extent rows and centre column (crop pixels), so
    that one scale and anchor serve the whole clip (sizes do not flicker with the masks);
    ``step_m``: metres walked per crop shown; ``paths``: the files, in order.
    """

    images: list[np.ndarray]
    alphas: list[np.ndarray]
    top: float
    bottom: float
    centre: float
    step_m: float
    paths: list[Path] = field(default_factory=list)

    def at(self, walked_m: float) -> tuple[np.ndarray, np.ndarray]:
        """The crop and mask shown after walking ``walked_m`` metres (back and forth through the clip)."""
        n = len(self.images)
        if n == 1:
            return self.images[0], self.alphas[0]
        period = 2 * (n - 1)
        i = int(walked_m // self.step_m) % period
        i = i if i < n else period - i
        return self.images[i], self.alphas[i]


def _load_clip(real: RealCamera, layout: str) -> _Clip:
    """Read up to :data:`_MAX_SEQUENCE` crops of one real camera and mask them (:func:`person_mask`).

    MARS: the first frames of the camera's longest tracklet (consecutive video frames, a real walk);
    Market-1501: the camera's images in frame order. Unreadable images are skipped.
    """
    if layout == "mars":
        counts: dict[str, int] = {}
        for g in real.groups:
            counts[g] = counts.get(g, 0) + 1
        longest = max(sorted(counts), key=lambda g: counts[g])
        paths = [p for p, g in zip(real.paths, real.groups) if g == longest][:_MAX_SEQUENCE]
        step = _MARS_STEP_M
    else:
        paths = list(real.paths)
        if len(paths) > _MAX_SEQUENCE:
            paths = [paths[i] for i in np.linspace(0, len(paths) - 1, _MAX_SEQUENCE).round().astype(int)]
        step = _MARKET_HOLD_M
    images, alphas, kept = [], [], []
    for path in paths:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None or min(img.shape[:2]) < 8:
            continue
        if img.shape[0] > _WORK_H:
            img = cv2.resize(
                img,
                (max(8, round(img.shape[1] * _WORK_H / img.shape[0])), _WORK_H),
                interpolation=cv2.INTER_AREA,
            )
        images.append(img)
        alphas.append(person_mask(img))
        kept.append(path)
    if not images:
        raise InputError(f"{real.paths[0].parent}: no readable crop of camera {real.camera}")
    tops, bottoms, centres = [], [], []
    for a in alphas:
        rows, cols = np.flatnonzero((a > 0.5).any(1)), np.flatnonzero((a > 0.5).any(0))
        if len(rows):
            tops.append(rows[0])
            bottoms.append(rows[-1] + 1)
            centres.append(0.5 * (cols[0] + cols[-1] + 1))
    h, w = images[0].shape[:2]
    top = float(np.median(tops)) if tops else 0.0
    bottom = float(np.median(bottoms)) if bottoms else float(h)
    centre = float(np.median(centres)) if centres else w / 2
    return _Clip(images, alphas, top, max(bottom, top + 4.0), centre, step, kept)


# ------------------------------------------------------------------------------------------- background


def median_background(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 per-pixel median of up to 25 frames spread over a video or frame folder (an image
    file is taken as it is), each first shrunk to at most :data:`_BACKGROUND_MAX_SIDE` pixels, so moving
    people vanish and memory stays bounded."""
    p = Path(path)
    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{p}: not a readable image")
        return _shrink(image)
    source = open_source(p)
    total = source.info.frames_total or _BACKGROUND_FRAMES
    source = open_source(p, stride=max(1, total // _BACKGROUND_FRAMES))
    frames = []
    for frame in source:
        if frame.image is not None:
            frames.append(_shrink(frame.image))
        if len(frames) >= _BACKGROUND_FRAMES:
            break
    if not frames:
        raise InputError(f"{p}: no frames to take a background from")
    return np.median(np.stack(frames), axis=0).round().astype(np.uint8)


def _shrink(image: np.ndarray) -> np.ndarray:
    scale = _BACKGROUND_MAX_SIDE / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _camera_view(
    rng: np.random.Generator, image: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, dict]:
    """One camera's (height, width, 3) view of a background: a window of the camera's aspect ratio,
    82-100 % of the largest that fits, at a random place, mirrored half of the time; and its summary."""
    bh, bw = image.shape[:2]
    full_w = min(bw, bh * width / height)
    zoom = float(rng.uniform(0.82, 1.0))
    ww, wh = max(8, round(full_w * zoom)), max(8, round(full_w * zoom * height / width))
    x0 = int(rng.integers(0, bw - ww + 1))
    y0 = int(rng.integers(0, bh - wh + 1))
    flip = bool(rng.random() < 0.5)
    view = image[y0 : y0 + wh, x0 : x0 + ww]
    if flip:
        view = view[:, ::-1]
    interp = cv2.INTER_AREA if ww > width else cv2.INTER_LINEAR
    view = cv2.resize(np.ascontiguousarray(view), (width, height), interpolation=interp)
    return view, {"window_xywh": [x0, y0, ww, wh], "mirrored": flip}


# ------------------------------------------------------------------------------------------------ render


@dataclass
class _Source:
    """Where one walker's pixels come from: a real identity and, per virtual camera, the real camera."""

    identity: Identity
    real_camera: dict[str, int]  # virtual camera name -> real camera number


def render_composite(
    out_dir: str | Path,
    crops: str | Path,
    background: str | Path | list,
    cameras: int = 4,
    people: int = 14,
    seconds: float = 40,
    seed: int = 3,
    overlap: float = 0.3,
    fps: float = 15,
    width: int = 640,
    height: int = 360,
    split: str = "test",
    progress: bool = True,
) -> dict:
    """Render a semi-real multi-camera scene into ``out_dir`` and return its ``scene.json`` content.

    ``crops``: a ReID crops folder (:func:`read_reid_folder`); ``background``: one or more videos, frame
    folders or images (camera ``k`` uses number ``k % n``); ``split``: which ids to draw people from.
    The rest as :func:`tracker.synthetic.render.render_scene`. Raises :class:`InputError` for bad
    arguments, an unusable ``out_dir``, crops folder or background, or more people than identities.
    """
    render.validate_args(cameras, people, seconds, fps, width, height, overlap)
    layout, identities = read_reid_folder(crops, split)
    if people > len(identities):
        raise InputError(
            f"--people {people}: {crops} has only {len(identities)} identities of the {split} split "
            f"seen by two or more real cameras"
        )
    sources = [background] if isinstance(background, (str, Path)) else list(background)
    if not sources:
        raise InputError("--background: give a video, a frame folder or an image")
    medians = [median_background(b) for b in sources]
    out = render.prepare_out_dir(out_dir)
    seeds = np.random.SeedSequence(seed).spawn(6)
    r_cam, r_people, r_world, r_noise, r_frames, r_crops = (np.random.default_rng(s) for s in seeds)

    cams = render.make_cameras(r_cam, cameras, overlap, width, height)
    walk_x = render.walkway_x(cams)
    doors = render.place_doors(r_world, cams)
    heights = [round(float(h), 3) for h in r_people.uniform(1.6, 1.9, people)]
    crowd = render.make_walkers(r_people, heights, float(seconds), walk_x, doors)
    picks = r_crops.choice(len(identities), people, replace=False)
    for p, pick in zip(crowd, picks):
        ident = identities[int(pick)]
        real = sorted(ident.cameras)
        o = int(r_crops.integers(len(real)))
        p.look = _Source(ident, {c.name: real[(k + o) % len(real)] for k, c in enumerate(cams)})
    views = [_camera_view(r_crops, medians[k % len(medians)], width, height) for k in range(len(cams))]
    finish = render.camera_finish(cams, r_noise, r_frames)
    clips: dict[tuple[str, str, int], _Clip] = {}

    def clip_of(p: Walker, cam: Camera) -> _Clip:
        src: _Source = p.look
        key = (src.identity.split, src.identity.real_id, src.real_camera[cam.name])
        if key not in clips:
            clips[key] = _load_clip(src.identity.cameras[key[2]], layout)
        return clips[key]

    gt: list[list[tuple]] = [[] for _ in cams]

    def frames(fi: int) -> list[np.ndarray]:
        states = [(p, p.state(fi / fps)) for p in crowd]
        states = [(p, s) for p, s in states if s is not None]
        return [
            finish(ci, _compose(cam, views[ci][0], states, clip_of, gt[ci], fi + 1))
            for ci, cam in enumerate(cams)
        ]

    codec = render.write_videos(out, cams, fps, seconds, frames, progress, desc="track-sim (composite)")
    render.write_gt(out, cams, gt)
    scene = _scene_dict(
        cams,
        crowd,
        gt,
        clips,
        views,
        seed,
        fps,
        seconds,
        overlap,
        walk_x,
        doors,
        codec,
        layout,
        str(crops),
        split,
        len(identities),
        [str(b) for b in sources],
    )
    atomic_write_json(out / "scene.json", scene)
    return scene


def _compose(
    cam: Camera, background: np.ndarray, states: list, clip_of, gt_rows: list, frame_no: int
) -> np.ndarray:
    """One camera's frame before its look: shadows and masked crops far to near; appends the GT rows."""
    H, W = cam.height, cam.width
    frame = background.copy()
    if not states:
        return frame
    pos = np.array([s[0] for _, s in states])
    feet, depth = cam.project(np.c_[pos, np.zeros(len(pos))])
    heads, _ = cam.project(np.c_[pos, [p.height_m for p, _ in states]])
    owner = np.zeros((H, W), np.int16)
    drawn = []
    for k in np.argsort(-depth, kind="stable"):
        if depth[k] < 0.8:
            continue
        p, (_, _, phase, _) = states[k]
        foot = feet[k]
        hpx = float(np.hypot(*(heads[k] - foot)))
        if (
            hpx < 6
            or foot[0] + 0.4 * hpx < 0
            or foot[0] - 0.4 * hpx >= W
            or foot[1] - hpx >= H
            or foot[1] + 0.05 * hpx < 0
        ):
            continue
        clip = clip_of(p, cam)
        image, alpha = clip.at((phase - p.phase0) * p.cycle_m / (2 * math.pi))
        s = hpx / (clip.bottom - clip.top)
        size = (max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s)))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        img = cv2.resize(image, size, interpolation=interp)
        a = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)
        ox, oy = round(foot[0] - s * clip.centre), round(foot[1] - s * clip.bottom)
        _shadow(frame, foot, hpx)
        solid = a > 0.5
        full = int(np.count_nonzero(solid))
        if full == 0:
            continue
        rows, cols = np.flatnonzero(solid.any(1)), np.flatnonzero(solid.any(0))
        box = (ox + cols[0], oy + rows[0], ox + cols[-1] + 1, oy + rows[-1] + 1)
        cx0, cy0 = max(0, ox), max(0, oy)
        cx1, cy1 = min(W, ox + size[0]), min(H, oy + size[1])
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        sub_a = a[cy0 - oy : cy1 - oy, cx0 - ox : cx1 - ox, None]
        sub = img[cy0 - oy : cy1 - oy, cx0 - ox : cx1 - ox].astype(np.float32)
        roi = frame[cy0:cy1, cx0:cx1]
        roi[:] = np.clip(roi * (1.0 - sub_a) + sub * sub_a + 0.5, 0, 255).astype(np.uint8)
        owner[cy0:cy1, cx0:cx1][solid[cy0 - oy : cy1 - oy, cx0 - ox : cx1 - ox]] = k + 1
        drawn.append((k, full, (cx0, cy0, cx1, cy1), box))
    for k, full, (cx0, cy0, cx1, cy1), (bx0, by0, bx1, by1) in drawn:
        shown = int(np.count_nonzero(owner[cy0:cy1, cx0:cx1] == k + 1))
        if shown == 0:
            continue
        x0, y0, x1, y1 = max(0, bx0), max(0, by0), min(W, bx1), min(H, by1)
        gt_rows.append(
            (frame_no, states[k][0].pid, int(x0), int(y0), int(x1 - x0), int(y1 - y0), shown / full)
        )
    return frame


def _shadow(frame: np.ndarray, foot: np.ndarray, hpx: float) -> None:
    """Darken a soft ellipse on the ground under the feet (up to 28 %), in place."""
    H, W = frame.shape[:2]
    rx, ry = 0.24 * hpx, max(1.0, 0.05 * hpx)
    x0, y0 = max(0, int(foot[0] - rx - 3)), max(0, int(foot[1] - ry - 3))
    x1, y1 = min(W, int(foot[0] + rx + 4)), min(H, int(foot[1] + ry + 4))
    if x1 <= x0 or y1 <= y0:
        return
    m = np.zeros((y1 - y0, x1 - x0), np.float32)
    centre = (round((foot[0] - x0) * 16), round((foot[1] - y0) * 16))
    cv2.ellipse(m, centre, (round(rx * 16), round(ry * 16)), 0, 0, 360, 1.0, -1, cv2.LINE_AA, 4)
    m = cv2.GaussianBlur(m, (0, 0), max(0.8, 0.3 * ry))
    roi = frame[y0:y1, x0:x1]
    roi[:] = (roi * (1.0 - 0.28 * m[..., None])).astype(np.uint8)


def _scene_dict(
    cams: list[Camera],
    crowd: list[Walker],
    gt: list[list[tuple]],
    clips: dict,
    views: list,
    seed: int,
    fps: float,
    seconds: float,
    overlap: float,
    walk_x: tuple[float, float],
    doors: list[float],
    codec: str,
    layout: str,
    crops: str,
    split: str,
    available: int,
    backgrounds: list[str],
) -> dict:
    frames = render.frame_ranges(cams, crowd, gt)
    cameras = render.camera_entries(cams, fps, walk_x, doors)
    for k, (entry, (_, summary)) in enumerate(zip(cameras, views)):
        entry["background"] = {"source": backgrounds[k % len(backgrounds)], **summary}
    people = []
    for p in crowd:
        src: _Source = p.look
        shown = {}
        for cam in cams:
            real = src.real_camera[cam.name]
            clip = clips.get((src.identity.split, src.identity.real_id, real))
            shown[cam.name] = {
                "real_camera": real,
                "crops": [q.name for q in clip.paths] if clip is not None else [],
            }
        people.append(
            {
                "id": p.pid,
                "height_m": p.height_m,
                "speed_mps": p.speed_mps(),
                "path": np.round(p.keys, 3).tolist(),
                "frames": frames[p.pid],
                "source": {
                    "real_id": src.identity.real_id,
                    "split": src.identity.split,
                    "real_cameras": sorted(src.identity.cameras),
                    "cameras": shown,
                },
            }
        )
    return {
        "seed": seed,
        "fps": fps,
        "seconds": seconds,
        "width": cams[0].width,
        "height": cams[0].height,
        "overlap": overlap,
        "generator": "tracker.synthetic.composite",
        "codec": codec,
        "units": render.UNITS,
        "crops": {"folder": crops, "layout": layout, "split": split, "identities_available": available},
        "backgrounds": backgrounds,
        "ground": {"walkway_x": list(walk_x), "walkway_y": list(render.WALK_Y), "doors_x": doors},
        "cameras": cameras,
        "people": people,
    }
