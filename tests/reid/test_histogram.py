import subprocess
import sys

import numpy as np
import pytest

from tests.reid.conftest import camera_look, person_crop
from tracker.reid.histogram import DIM, HistogramEmbedder, histogram_descriptors


def test_shapes_dtype_and_norm():
    crops = [person_crop(0, 120, 48), person_crop(1, 33, 11), person_crop(2, 700, 260)]
    f = HistogramEmbedder().embed(crops)
    assert f.shape == (3, DIM) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)
    assert histogram_descriptors([]).shape == (0, DIM)


def test_a_crop_does_not_depend_on_its_batch():
    crops = [person_crop(i, 100 + 10 * i, 40) for i in range(4)]
    together = histogram_descriptors(crops)
    alone = np.concatenate([histogram_descriptors([c]) for c in crops])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_robust_to_camera_brightness_and_colour_balance():
    looks = [(1.0, (1.0, 1.0, 1.0)), (0.6, (1.0, 1.0, 1.0)), (1.3, (1.0, 1.0, 1.0)), (0.8, (1.15, 1.0, 0.85))]
    people = range(len(looks))
    desc = {
        (p, k): histogram_descriptors([camera_look(person_crop(p, seed=k), g, b)])[0]
        for p in people
        for k, (g, b) in enumerate(looks)
    }
    for p in people:
        for k in range(1, len(looks)):
            same = desc[(p, 0)] @ desc[(p, k)]
            others = max(desc[(p, 0)] @ desc[(q, k)] for q in people if q != p)
            assert same > others + 0.05, (p, k, same, others)


def test_no_torch_import():
    code = (
        "import sys; from tracker.reid import build_embedder; from tracker.config import ReidConfig; import numpy as np;"
        "e = build_embedder(ReidConfig(embedder='histogram')); e.embed([np.zeros((40, 20, 3), np.uint8)]);"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_rejects_bad_crops():
    with pytest.raises(ValueError):
        histogram_descriptors([np.zeros((0, 10, 3), np.uint8)])
    with pytest.raises(ValueError):
        histogram_descriptors([np.zeros((10, 10), np.uint8)])
