import numpy as np
import pytest

from tracker.reid import tracklet_embedding


def test_tracklet_embedding_weighted_mean_renormalised():
    feats = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    out = tracklet_embedding(feats, np.array([3.0, 1.0]))
    assert out.dtype == np.float32 and out.shape == (2,)
    np.testing.assert_allclose(out, np.array([3.0, 1.0]) / np.sqrt(10.0), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out), 1.0, rtol=1e-6)


def test_tracklet_embedding_equal_weights_when_none_or_zero():
    feats = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    plain = tracklet_embedding(feats)
    np.testing.assert_allclose(tracklet_embedding(feats, np.zeros(5)), plain, rtol=1e-6)
    expected = feats.mean(0) / np.linalg.norm(feats.mean(0))
    np.testing.assert_allclose(plain, expected, rtol=1e-5)


def test_tracklet_embedding_rejects_bad_shapes():
    with pytest.raises(ValueError):
        tracklet_embedding(np.zeros((0, 4)))
    with pytest.raises(ValueError):
        tracklet_embedding(np.zeros((3, 4)), np.ones(2))
