import json

import pytest

from tracker.reid.cli import reid_eval
from tracker.reid.evaluation import evaluate_folder
from tracker.reid.histogram import HistogramEmbedder

# Measured: the histogram descriptor reaches 54.7 % tracklet-level cross-camera Rank-1 on MARS-mini
# (64 tracklets of 16 people; chance 4.1 %). The test asserts a margin below that.
MARS_MINI_MIN_RANK1 = 0.40


def _run(argv):
    with pytest.raises(SystemExit) as done:
        reid_eval(argv)
    return done.value.code


def test_reid_eval_market_mini_end_to_end(eval_data, small_checkpoint, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    code = _run(
        [
            "--data",
            str(eval_data / "reid-mini-market1501"),
            "--weights",
            str(small_checkpoint),
            "--json",
            str(out),
            "--no-progress",
            "--batch-size",
            "16",
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["level"] == "images" and result["query_images"] == 32 and result["gallery_images"] == 32
    # Two queries have their only gallery match in their own camera: excluded by the Market protocol.
    assert result["num_queries"] == 30 and result["num_skipped"] == 2
    for key in ("rank1", "rank5", "rank10", "mAP", "mINP"):
        assert 0.0 <= result[key] <= 1.0
    assert result["rank1"] <= result["rank5"] <= result["rank10"]
    assert result["embedder"]["embedder"] == "mgn" and result["embedder"]["input"] == [96, 32]
    printed = capsys.readouterr().out
    assert "Rank-1" in printed and "30 queries evaluated" in printed


def test_histogram_tracklet_rank1_on_mars_mini(eval_data):
    result = evaluate_folder(eval_data / "reid-mini-mars", HistogramEmbedder(), cross_camera=True)
    print(
        f"MARS-mini cross-camera tracklet Rank-1 {result['rank1']:.3f} mAP {result['mAP']:.3f} "
        f"(chance {result['chance_rank1']:.3f}, {result['num_queries']} queries)"
    )
    assert result["level"] == "tracklets" and result["tracklets"] == 64 and result["num_queries"] == 64
    assert result["chance_rank1"] < 0.05
    assert result["rank1"] >= MARS_MINI_MIN_RANK1


def test_reid_eval_bad_input_exits_2(tmp_path, capsys):
    assert _run(["--data", str(tmp_path / "missing"), "--embedder", "histogram"]) == 2
    assert "reid-eval: error:" in capsys.readouterr().err


def test_reid_eval_table_with_rerank_histogram_and_model_card(eval_data, tmp_path, capsys):
    import torch

    from tracker.reid.checkpoint import read_checkpoint, save_model
    from tracker.reid.mobilenet import MGNMobileNetV2

    torch.manual_seed(0)
    weights = save_model(
        tmp_path / "mgn.safetensors", MGNMobileNetV2(), height=64, width=32, card={"backbone": "mobilenetv2"}
    )
    out = tmp_path / "rows.json"
    code = _run(
        [
            "--data",
            str(eval_data / "reid-mini-market1501"),
            "--weights",
            str(weights),
            "--rerank",
            "both",
            "--with-histogram",
            "--json",
            str(out),
            "--write-card",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    rows = json.loads(out.read_text())
    assert [(r["embedder"]["embedder"], r["rerank"]) for r in rows] == [
        ("mgn", False),
        ("mgn", True),
        ("histogram", False),
        ("histogram", True),
    ]
    assert all(r["num_queries"] == 30 and r["images_per_s"] > 0 for r in rows)
    printed = capsys.readouterr().out
    assert "Rank-1" in printed and printed.count("reid-mini-market1501") == 4
    assert "recorded the scores" in printed
    _, meta = read_checkpoint(weights)
    scores = meta["card"]["test_scores"]
    assert meta["card"]["backbone"] == "mobilenetv2" and len(scores) == 2
    assert {s["rerank"] for s in scores} == {False, True} and "standard" in scores[0]["protocol"]
    assert scores[0]["rank1"] == pytest.approx(rows[0]["rank1"], abs=1e-4)
