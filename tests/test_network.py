"""The camera network learned from the run's own tracklets (tracker.network), and what association does with it."""

import numpy as np

from tracker.association import _Tracks, associate
from tracker.config import AssociateConfig
from tracker.evaluate import pairwise_f1
from tracker.network import learn_overlaps
from tracker.synthetic.tracklets import synthetic_scene


def _learn(scene):
    tracks = _Tracks(scene.tracklets, {})
    known = np.zeros((len(tracks.names),) * 2, bool)
    return learn_overlaps(tracks, tracks.names, known), tracks.names


def _image(h: np.ndarray, ground: np.ndarray) -> np.ndarray:
    p = np.c_[ground, np.ones(len(ground))] @ h.T
    return p[:, :2] / p[:, 2:]


def test_overlap_of_two_views_of_one_zone_is_found_with_its_mapping():
    """cam1 and cam2 watch zone 0 from opposite sides; cam3 and cam4 watch zones of their own. Only the first
    pair overlaps, and the learned mapping takes cam1's foot points onto cam2's within a few pixels."""
    scene = synthetic_scene(40, zones=(0, 0, 1, 2), seed=3, rate=0.4)
    net, _ = _learn(scene)
    pairs = {(o.a, o.b) for o in net.overlaps}
    assert pairs == {("cam1", "cam2")}
    h1, h2 = scene.calibration.homographies["cam1"], scene.calibration.homographies["cam2"]
    ground = np.stack(np.meshgrid(np.linspace(1, 9, 5), np.linspace(1, 5, 4)), -1).reshape(-1, 2)
    predicted = _image(net.mapping("cam1", "cam2"), _image(h1, ground))
    assert np.median(np.linalg.norm(predicted - _image(h2, ground), axis=1)) < 6.0
    back = _image(net.mapping("cam2", "cam1"), _image(h2, ground))
    assert np.median(np.linalg.norm(back - _image(h1, ground), axis=1)) < 6.0


def test_disjoint_views_give_no_mapping_and_are_marked_after_enough_cooccurrence():
    """Cameras on different zones see different people at the same time: no chance fit of their
    trajectories is taken for an overlap, whatever the seed; long co-occurrence marks them disjoint."""
    for seed in range(3):
        net, _ = _learn(synthetic_scene(40, zones=(0, 1, 2), seed=seed, rate=0.4))
        assert net.overlaps == []
        seen = [p for p, s in net.cooccurrence.items() if s >= 30.0]
        assert seen and set(seen) <= set(net.disjoint)


def test_learned_overlap_gives_association_position_evidence_without_a_calibration():
    """Two views of one zone, people dressed alike (groups of four with cosine 0.9): appearance cannot tell
    them apart, where they stand can. With the network learned (default) association is much better than with
    learning off, on every seed, and run info records what was learned."""
    for seed in (1, 2):
        scene = synthetic_scene(30, zones=(0, 0), seed=seed, rate=0.4, look_alike=0.9, noise=0.7)
        learned = associate(scene.tracklets, AssociateConfig())
        off = associate(scene.tracklets, AssociateConfig(learn_network=False))
        f1 = [pairwise_f1(np.asarray(r.global_ids), scene.person)[2] for r in (learned, off)]
        assert [(o["a"], o["b"]) for o in learned.info["network"]["overlaps"]] == [("cam1", "cam2")]
        assert f1[0] > f1[1] + 0.15 and f1[0] > 0.7
