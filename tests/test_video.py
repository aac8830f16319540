from __future__ import annotations

import cv2
import numpy as np
import pytest

from tracker.errors import InputError
from tracker.video import H264Writer, open_source


def make_video(path, n=12, size=(64, 48), fps=10.0):
    with H264Writer(path, size[0], size[1], fps, crf=18) as w:
        for i in range(n):
            img = np.full((size[1], size[0], 3), i * 20 % 255, np.uint8)
            w.write(img)
    return path


def test_video_streams_with_stride_and_offset(tmp_path):
    src = open_source(make_video(tmp_path / "cam.mp4"), offset=2.0, stride=3)
    assert src.camera == "cam" and (src.info.width, src.info.height) == (64, 48)
    assert src.info.fps == pytest.approx(10.0)
    frames = list(src)
    assert [f.index for f in frames] == [1, 4, 7, 10]
    assert frames[1].time == pytest.approx(2.0 + 0.3)
    assert frames[0].image.shape == (48, 64, 3)
    assert len(src.sample_images(3)) == 3


def test_h264_output_is_h264(tmp_path):
    import av

    path = make_video(tmp_path / "v.mp4")
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == 12


def test_folder_and_mot_sequence(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i:06d}.jpg"), np.zeros((20, 30, 3), np.uint8))
    src = open_source(folder, name="f")
    assert [f.index for f in src] == [1, 2, 3, 4, 5] and src.info.width == 30

    seq = tmp_path / "SEQ-01"
    seq.mkdir()
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=SEQ-01\nimDir=img1\nframeRate=7\nseqLength=4\nimWidth=480\nimHeight=360\n"
    )
    src = open_source(seq)
    assert not src.has_images and src.info.fps == 7
    frames = list(src)
    assert len(frames) == 4 and frames[0].image is None


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "zero-frames", "empty-folder"])
def test_bad_inputs_name_the_file(tmp_path, kind):
    path = tmp_path / "bad.mp4"
    if kind == "text":
        path.write_text("this is not a video\n" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "zero-frames":
        H264Writer(path, 32, 32, 10).close()
    elif kind == "empty-folder":
        path = tmp_path / "nothing"
        path.mkdir()
    with pytest.raises(InputError) as err:
        open_source(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_random_access_read(tmp_path):
    src = open_source(make_video(tmp_path / "cam.mp4"))
    frames = {f.index: f.image for f in src}
    assert np.abs(src.read(5).astype(int) - frames[5].astype(int)).mean() < 2
    assert src.read(99) is None


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with one tiny (wrong) data chunk: a file that
    could only be refused from its header, since it does not decode."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _frames(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    for i, (w, h) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{i:06d}.png"), np.full((h, w, 3), 40 * i % 255, np.uint8))
    return folder


def test_folder_of_frames_of_different_sizes_is_one_line(tmp_path):
    folder = _frames(tmp_path / "f", [(30, 20), (30, 20), (31, 20)])
    with pytest.raises(InputError) as err:
        open_source(folder)
    msg = str(err.value)
    assert (
        "frames of different sizes" in msg and "000000.png is 30x20" in msg and "000002.png is 31x20" in msg
    )


@pytest.mark.parametrize("bad", ["not-an-image", "bomb", "damaged"])
def test_folder_with_a_bad_image_names_it(tmp_path, bad):
    folder = _frames(tmp_path / "f", [(30, 20)] * 3)
    target = folder / "000001.png"
    if bad == "not-an-image":
        target.write_bytes(b"hello, not a picture" * 10)
    elif bad == "bomb":
        target.write_bytes(png_header(40000, 40000))
    else:  # a valid header, the data cut short: found when decoded
        noise = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
        data = cv2.imencode(".png", noise)[1].tobytes()
        target.write_bytes(data[: len(data) // 2])
    if bad == "damaged":
        src = open_source(folder)  # headers are all fine
        assert [f.index for f in src] == [1, 3]  # the damaged frame is skipped, and counted as not read
        assert src.read(2) is None and src.read(3).shape == (20, 30, 3)
        return
    with pytest.raises(InputError) as err:
        open_source(folder)
    assert str(target) in str(err.value) and "\n" not in str(err.value)
    assert ("over the limit" in str(err.value)) == (bad == "bomb")


@pytest.mark.parametrize("damage", ["cut", "flipped"])
def test_a_damaged_png_is_one_error_and_nothing_on_stderr(capfd, damage):
    """libpng prints its own line about a cut or corrupted PNG to stderr; the decoder refuses such data
    before libpng sees it, so the caller's one-line error is all that is printed."""
    from tracker.video import decode_image_bytes

    noise = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    data = cv2.imencode(".png", noise)[1].tobytes()
    assert decode_image_bytes(data, "q.png").shape == (24, 32, 3)
    if damage == "cut":
        data = data[:331]
    else:
        data = data[:60] + bytes([data[60] ^ 0xFF]) + data[61:]
    capfd.readouterr()
    with pytest.raises(InputError, match="q.png: a damaged PNG image"):
        decode_image_bytes(data, "q.png")
    assert capfd.readouterr().err == ""


def test_decoding_checks_the_pixel_budget_before_decoding(tmp_path, monkeypatch):
    import tracker.video
    from tracker.store import decode_image
    from tracker.video import decode_image_bytes, image_header

    assert image_header(png_header(8000, 8000)) == ("PNG", 8000, 8000)  # 64 megapixels: within the limit
    for data, size in [
        (png_header(10000, 10000), "10000x10000 pixels"),
        (png_header(18000, 18000), "18000x18000 pixels"),
        (png_header(40000, 40000), "40000x40000 pixels"),  # what made OpenCV raise (a traceback)
    ]:
        with pytest.raises(InputError, match=f"q.png: {size} is over the limit of 67 megapixels"):
            decode_image_bytes(data, "q.png")
        assert decode_image(data) is None
    ok, real = cv2.imencode(".png", np.zeros((1200, 1000, 3), np.uint8))  # a real image over a lower budget
    monkeypatch.setattr(tracker.video, "MAX_PIXELS", 1000 * 1000)
    with pytest.raises(InputError, match="1000x1200 pixels is over the limit"):
        decode_image_bytes(real.tobytes(), "q.png")
    monkeypatch.setattr(tracker.video, "MAX_PIXELS", 1200 * 1000)
    assert decode_image_bytes(real.tobytes(), "q.png").shape == (1200, 1000, 3)
    video = make_video(tmp_path / "v.mp4")  # 64 x 48
    monkeypatch.setattr(tracker.video, "MAX_PIXELS", 64 * 47)
    with pytest.raises(InputError, match="64x48 pixels is over the limit"):
        open_source(video)
    for junk in (b"", b"\x89PNG\r\n\x1a\n", b"GIF89a" + bytes(20), png_header(8000, 8000)):
        assert decode_image(junk) is None


def noisy_video(path, n=60, size=(160, 120), fps=10.0):
    """A video of random frames: its frame data, not its header, makes up most of the file."""
    rng = np.random.default_rng(0)
    with H264Writer(path, size[0], size[1], fps, crf=30) as w:
        for _ in range(n):
            w.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    return path


def test_a_truncated_video_streams_what_it_has(tmp_path):
    path = noisy_video(tmp_path / "cam.mp4", n=60)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.3)])
    src = open_source(path)
    assert src.info.frames_total == 60  # the header (moov atom first: faststart) still says 60
    assert 0 < len(list(src)) < 30


def test_camera_names_from_file_names_are_checked(tmp_path):
    bad = make_video(tmp_path / "lobby #2.mp4")
    with pytest.raises(InputError, match="camera name taken from the file name .*--names"):
        open_source(bad)
    assert open_source(bad, name="lobby 2").camera == "lobby 2"
    with pytest.raises(InputError, match="not a safe camera name"):
        open_source(bad, name="../x")


@pytest.mark.parametrize(
    "ini, message",
    [
        ("imDir=../../elsewhere\nseqLength=3\n", "outside the sequence folder"),
        ("seqLength=99999999999\n", "is over 10000000 frames"),
        ("seqLength=3\nframeRate=0\n", "frameRate must be in (0, 1000]"),
        ("seqLength=3\nimWidth=640\nimHeight=480\n", "imWidth x imHeight = 640x480, its frames are 30x20"),
        ("seqLength=3\nimWidth=90000\nimHeight=90000\n", "over the limit"),
    ],
)
def test_bad_seqinfo_is_one_line(tmp_path, ini, message):
    seq = tmp_path / "SEQ"
    _frames(seq / "img1", [])
    for i in range(1, 4):
        cv2.imwrite(str(seq / "img1" / f"{i:06d}.jpg"), np.zeros((20, 30, 3), np.uint8))
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ\n" + ini)
    with pytest.raises(InputError) as err:
        open_source(seq)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_image_checks_survive_ultralytics_patching_pillow(tmp_path):
    """ultralytics replaces PIL.Image.open with one that installs a HEIF plugin on an unknown file (and fails
    without it); header checks do not go through it."""
    pytest.importorskip("ultralytics")
    import ultralytics.utils.patches  # noqa: F401  (applies the patch, as building a YOLO detector does)

    from tracker.store import decode_image
    from tracker.video import image_header

    assert image_header(b"not an image" * 8) is None and decode_image(b"not an image" * 8) is None
    folder = _frames(tmp_path / "f", [(30, 20)] * 2)
    (folder / "000001.png").write_bytes(b"not an image" * 8)
    with pytest.raises(InputError, match="000001.png: not a readable image"):
        open_source(folder)
