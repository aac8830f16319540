"""Fixtures for the re-identification tests: small synthetic people and small MGN checkpoints.

MGN keeps its full ResNet-50 width in every test; inputs are small (96x32, the smallest size whose
final map, 6x2, still splits into 3 stripes) and batches are 2-4 crops, so a forward pass costs tens of
milliseconds on a CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

SMALL_H, SMALL_W = 96, 32

# Clothing colours (BGR) of a few synthetic people: (shirt, trousers).
PEOPLE = [
    ((40, 40, 200), (120, 60, 20)),  # red shirt, dark blue trousers
    ((200, 120, 30), (40, 40, 40)),  # blue shirt, black trousers
    ((40, 180, 40), (160, 160, 160)),  # green shirt, grey trousers
    ((30, 200, 220), (60, 20, 90)),  # yellow shirt, maroon trousers
]


def person_crop(person: int, h: int = 120, w: int = 48, seed: int = 0) -> np.ndarray:
    """A uint8 BGR crop of synthetic person ``person``: background, head, shirt, trousers, some noise."""
    rng = np.random.default_rng(seed * 100 + person)
    shirt, trousers = PEOPLE[person]
    img = np.empty((h, w, 3), np.float32)
    img[:] = (110, 120, 115)  # background
    x0, x1 = w // 5, w - w // 5
    img[int(0.02 * h) : int(0.16 * h), 2 * w // 5 : 3 * w // 5] = (90, 140, 200)  # head
    img[int(0.16 * h) : int(0.52 * h), x0:x1] = shirt
    img[int(0.52 * h) : int(0.97 * h), x0 + 2 : x1 - 2] = trousers
    img[int(0.30 * h) : int(0.34 * h), x0:x1] *= 0.6  # a stripe on the shirt: some texture
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def camera_look(crop: np.ndarray, gain: float, balance: tuple[float, float, float]) -> np.ndarray:
    """The same crop as another camera would see it: brightness gain and per-channel colour balance."""
    out = crop.astype(np.float32) * gain * np.asarray(balance, np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


@pytest.fixture(autouse=True)
def _one_cpu_thread(monkeypatch):
    """One intra-op thread: on a shared 2-core machine, OpenMP threads fighting over cores make
    convolutions ten times slower; the embedder's own thread setting then leaves it alone too."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    """A random-weights ``paper`` MGN with 4 classes saved in the project's format at 96x32."""
    import torch

    from tracker.reid.checkpoint import save_model
    from tracker.reid.mgn import MGN

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("mgn") / "small.safetensors"
    save_model(path, MGN("paper", num_classes=4), height=SMALL_H, width=SMALL_W)
    return path
