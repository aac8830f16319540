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
