import numpy as np
import pytest

from tracker.reid.metrics import chance_rank1, cosine_distance, evaluate_ranking, k_reciprocal_rerank


def _one_hot(pids, dim=8):
    f = np.zeros((len(pids), dim), np.float32)
    f[np.arange(len(pids)), pids] = 1.0
    return f


def test_perfect_features_give_one():
    q_pids, g_pids = [1, 2, 3], [1, 1, 2, 2, 3, 3]
    dist = cosine_distance(_one_hot(q_pids), _one_hot(g_pids))
    m = evaluate_ranking(dist, q_pids, g_pids, [1, 1, 1], [2, 3, 2, 3, 2, 3])
    assert m["rank1"] == m["rank5"] == m["mAP"] == m["mINP"] == 1.0
    assert m["num_queries"] == 3 and m["num_skipped"] == 0


def test_hand_worked_case():
    # One query (id 7, camera 1); gallery ranked by distance: wrong, right, wrong, right, wrong.
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])
    g_pids = [3, 7, 4, 7, 5]
    m = evaluate_ranking(dist, [7], g_pids, [1], [2, 2, 2, 3, 2], ranks=(1, 2, 5))
    # Hits at ranks 2 and 4: AP = (1/2 + 2/4) / 2 = 0.5; INP = 2 / 4 = 0.5.
    assert m["rank1"] == 0.0 and m["rank2"] == 1.0 and m["rank5"] == 1.0
    assert m["mAP"] == pytest.approx(0.5)
    assert m["mINP"] == pytest.approx(0.5)


def test_same_camera_same_id_is_excluded():
    # Gallery by distance: id 5 in the query's camera (excluded by the protocol), id 9 in the query's
    # camera (kept: a different person), id 5 in another camera (the true match, now at rank 2).
    dist = np.array([[0.1, 0.2, 0.3]])
    m = evaluate_ranking(dist, [5], [5, 9, 5], [1], [1, 1, 2], ranks=(1, 2))
    assert m["rank1"] == 0.0 and m["rank2"] == 1.0
    assert m["mAP"] == pytest.approx(0.5)
    # cross_camera also drops the same-camera person 9: the match is first.
    m = evaluate_ranking(dist, [5], [5, 9, 5], [1], [1, 1, 2], ranks=(1,), cross_camera=True)
    assert m["rank1"] == 1.0


def test_junk_ids_and_queries_without_match_are_skipped():
    dist = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.1, 0.1, 0.1]])
    # Gallery entry 0 is junk (-1), entry 1 a distractor (0) -> both ignored with junk_ids=(-1, 0).
    m = evaluate_ranking(dist, [4, 6, -1], [-1, 0, 4], [1, 1, 1], [2, 2, 2], junk_ids=(-1, 0))
    assert m["num_queries"] == 1 and m["num_skipped"] == 2  # id 6 has no match; id -1 is junk
    assert m["rank1"] == 1.0
    kept = evaluate_ranking(dist[:1], [4], [-1, 0, 4], [1], [2, 2, 2])
    assert kept["rank1"] == 0.0  # the standard protocol: the distractor ranks before the match


def test_chance_rank1():
    # Query id 1 (camera 1) against gallery: [1 cam 1 (excluded), 1 cam 2, 2, 3] -> 1 of 3.
    assert chance_rank1([1], [1, 1, 2, 3], [1], [1, 2, 2, 2]) == pytest.approx(1 / 3)


def test_rerank_keeps_perfect_ranking_and_shape():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    q_pids, g_pids = np.arange(4), np.repeat(np.arange(4), 3)
    q = centres[q_pids] + 0.01 * rng.normal(size=(4, 16))
    g = centres[g_pids] + 0.01 * rng.normal(size=(12, 16))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    dist = k_reciprocal_rerank(q, g, k1=3, k2=2)
    assert dist.shape == (4, 12)
    m = evaluate_ranking(dist, q_pids, g_pids, np.zeros(4), np.ones(12))
    assert m["rank1"] == 1.0 and m["mAP"] == 1.0
    assert k_reciprocal_rerank(q, None, k1=2, k2=1).shape == (4, 4)
