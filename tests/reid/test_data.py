import pytest

from tracker.errors import InputError
from tracker.reid.data import (
    find_eval_split,
    find_train_records,
    group_tracklets,
    parse_market_name,
    parse_mars_name,
    read_images,
)


def test_name_parsing():
    assert parse_market_name("0002_c1s1_000451_03.jpg") == (2, 1)
    assert parse_market_name("-1_c3s2_012345_00.jpg") == (-1, 3)
    assert parse_market_name("0005_c2_f0046182.jpg") == (5, 2)  # DukeMTMC-reID
    assert parse_market_name("frame.jpg") is None
    assert parse_mars_name("0004C1T0002F017.jpg") == (4, 1, 2, 17)
    assert parse_mars_name("0004_c1s1_000451_03.jpg") is None


def test_market_mini_layout(eval_data):
    split = find_eval_split(eval_data / "reid-mini-market1501")
    assert split.kind == "images" and len(split.query) == 32 and len(split.gallery) == 32
    assert {r.pid for r in split.query} == {r.pid for r in split.gallery}
    assert all(1 <= r.cam <= 6 for r in split.query)
    train = find_train_records(eval_data / "reid-mini-market1501")
    assert len(train) == 32 and not {r.pid for r in train} & {r.pid for r in split.query}
    img = read_images([split.query[0].path])[0]
    assert img.dtype.name == "uint8" and img.ndim == 3 and img.shape[2] == 3


def test_mars_mini_layout(eval_data):
    split = find_eval_split(eval_data / "reid-mini-mars")
    assert split.kind == "tracklets" and not split.gallery
    groups = group_tracklets(split.query)
    assert len(groups) == 64 and len({key[0] for key in groups}) == 16
    assert sum(len(v) for v in groups.values()) == len(split.query) == 1783 + 2070


def test_missing_or_unrecognised_folders(tmp_path):
    with pytest.raises(InputError, match="not found"):
        find_eval_split(tmp_path / "nope")
    (tmp_path / "x.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="no crops named"):
        find_eval_split(tmp_path)
