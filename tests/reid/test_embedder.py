import http.server
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.reid.conftest import SMALL_H, SMALL_W, person_crop
from tracker.config import ModelsConfig, ReidConfig
from tracker.errors import InputError
from tracker.reid import Embedder, build_embedder
from tracker.reid.weights import DownloadError, download, sha256_file


def _crops():
    return [person_crop(i % 4, 60 + 17 * i, 20 + 5 * i, seed=i) for i in range(5)]


def test_none_and_histogram():
    assert build_embedder(ReidConfig(embedder="none")) is None
    e = build_embedder(ReidConfig(embedder="histogram"))
    assert isinstance(e, Embedder) and e.info()["embedder"] == "histogram" and e.info()["fallback"] is None


def test_invalid_settings_are_input_errors():
    with pytest.raises(InputError, match="reid.embedder"):
        ReidConfig(embedder="osnet")
    with pytest.raises(InputError, match="reid.variant"):
        ReidConfig(variant="v2")
    with pytest.raises(InputError, match="reid.batch_size: must be >= 1"):
        ReidConfig(batch_size=0)
    with pytest.raises(InputError, match="reid.weights"):
        build_embedder(ReidConfig(weights="/nonexistent/mgn.pth"))


def test_auto_offline_falls_back_at_once_with_one_warning(caplog):
    start = time.monotonic()
    with caplog.at_level(logging.WARNING):
        e = build_embedder(ReidConfig(), ModelsConfig(offline=True))
    assert time.monotonic() - start < 2.0
    assert e.name == "histogram" and "offline" in e.info()["fallback"]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    assert "histogram" in warnings[0].getMessage() and "reid.weights" in warnings[0].getMessage()
    with pytest.raises(InputError, match="no MGN checkpoint"):
        build_embedder(ReidConfig(embedder="mgn"), ModelsConfig(offline=True))


def test_unresolvable_host_fails_at_once():
    start = time.monotonic()
    e = build_embedder(ReidConfig(url="http://reid-weights.invalid/market_mgn_R50-ibn.pth"))
    assert e.name == "histogram" and "download failed" in e.info()["fallback"]
    assert time.monotonic() - start < 15.0


def test_mgn_embedder_from_checkpoint(small_checkpoint):
    e = build_embedder(ReidConfig(weights=str(small_checkpoint), batch_size=2, threads=1))
    info = e.info()
    assert info["embedder"] == "mgn" and info["variant"] == "paper" and info["input"] == [SMALL_H, SMALL_W]
    assert info["sha256"] == sha256_file(small_checkpoint)[:16] and info["device"] == "cpu"
    assert info["precision"] == "fp32" and info["fallback"] is None
    crops = _crops()
    f = e.embed(crops)
    assert f.shape == (5, 2048) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)
    # Batches are formed by crop size; every crop still gets its own features, in the caller's order.
    np.testing.assert_allclose(f[::-1], e.embed(crops[::-1]), atol=1e-5)
    np.testing.assert_allclose(f[3:4], e.embed([crops[3]]), atol=1e-5)
    assert e.embed([]).shape == (0, 2048)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files; ``/short`` promises 1000 bytes and sends 10 (a connection cut mid-download)."""

    def do_GET(self):
        if self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_auto_downloads_into_the_model_cache(http_server, small_checkpoint, monkeypatch, tmp_path):
    base, root = http_server
    (root / "mgn.safetensors").write_bytes(small_checkpoint.read_bytes())
    models = ModelsConfig(cache_dir=str(tmp_path / "cache"))
    digest = sha256_file(small_checkpoint)
    cfg = ReidConfig(url=f"{base}/mgn.safetensors", sha256=digest[:10], threads=1)
    e = build_embedder(cfg, models)
    cached = tmp_path / "cache" / "reid" / "mgn.safetensors"
    assert e.name == "mgn" and cached.is_file() and e.info()["weights"] == str(cached.resolve())
    assert e.info()["sha256"] == digest[:16]
    assert list(cached.parent.iterdir()) == [cached]  # no partial files left behind
    # Second time: from the cache, even offline.
    assert build_embedder(cfg, ModelsConfig(offline=True, cache_dir=models.cache_dir)).name == "mgn"


def test_bad_download_leaves_nothing_and_falls_back(http_server, monkeypatch, tmp_path):
    base, root = http_server
    (root / "w.pth").write_bytes(b"\x80" + b"x" * 5000)
    with pytest.raises(DownloadError, match="sha256"):
        download(f"{base}/w.pth", tmp_path / "w.pth", sha256="0000", progress=False)
    with pytest.raises(DownloadError):
        download(f"{base}/short", tmp_path / "short.pth", progress=False)
    assert not list(tmp_path.glob("*.pth*"))  # neither the target nor a partial file
    e = build_embedder(ReidConfig(url=f"{base}/missing.pth", download=True))
    assert e.name == "histogram" and "404" in e.info()["fallback"]
    e = build_embedder(ReidConfig(url=f"{base}/w.pth", download=False))
    assert e.name == "histogram" and "disabled" in e.info()["fallback"]


@pytest.mark.cuda
def test_cuda_half_precision_matches_cpu(small_checkpoint):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    crops = _crops() * 7
    cpu = build_embedder(ReidConfig(weights=str(small_checkpoint), device="cpu", threads=1)).embed(crops)
    for precision, min_cosine in (("fp32", 0.999), ("fp16", 0.99), ("bf16", 0.98)):
        for channels_last in (True, False):
            gpu = build_embedder(
                ReidConfig(
                    weights=str(small_checkpoint),
                    device="cuda",
                    precision=precision,
                    batch_size=8,
                    channels_last=channels_last,
                )
            )
            f = gpu.embed(crops)
            assert f.shape == cpu.shape and (f * cpu).sum(1).min() > min_cosine, (precision, channels_last)
            assert gpu.info()["device"].startswith("cuda") and gpu.info()["precision"] == precision


def test_weights_file_is_used_as_given(small_checkpoint):
    e = build_embedder(ReidConfig(embedder="mgn", weights=str(small_checkpoint), threads=1, flip=True))
    assert e.info()["weights"] == str(Path(small_checkpoint).resolve()) and e.info()["flip"] is True


def test_out_of_memory_halves_the_batch(small_checkpoint, monkeypatch, caplog):
    e = build_embedder(ReidConfig(weights=str(small_checkpoint), batch_size=8, threads=1))
    real_run = e._run

    def run(x):
        if len(x) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_run(x)

    monkeypatch.setattr(e, "_run", run)
    with caplog.at_level(logging.WARNING):
        f = e.embed(_crops())
    assert f.shape == (5, 2048) and e.batch_size == 2
    assert "batch size lowered to 2" in caplog.text


def test_auto_prefers_the_trained_mobilenet_mgn_in_the_model_cache(monkeypatch, tmp_path):
    from tracker.reid.checkpoint import save_model
    from tracker.reid.mobilenet import MGNMobileNetV2
    from tracker.reid.weights import OWN_MGN_FILE

    monkeypatch.setenv("MULTICAM_TRACKER_OFFLINE", "1")
    monkeypatch.setenv("MULTICAM_TRACKER_HOME", str(tmp_path / "cache"))
    own = tmp_path / "cache" / "reid" / OWN_MGN_FILE
    own.parent.mkdir(parents=True)
    torch.manual_seed(0)
    save_model(own, MGNMobileNetV2(), height=SMALL_H, width=SMALL_W)
    (own.parent / "market_mgn_R50-ibn.pth").write_bytes(b"\x80 would be fast-reid's download")
    e = build_embedder(ReidConfig(threads=1))
    assert e.name == "mgn" and e.info()["weights"] == str(own.resolve())
    assert e.info()["variant"] == "mobilenetv2"
    assert e.embed(_crops()).shape == (5, 2048)
