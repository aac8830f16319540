from __future__ import annotations

import pytest

from tracker.config import PipelineConfig, load_config, override
from tracker.errors import InputError


def test_defaults_and_repo_configs_load():
    from tests.conftest import REPO

    assert load_config(None) == PipelineConfig()
    for path in sorted((REPO / "configs").glob("*.yaml")):
        load_config(path)


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("track:\n  max_agee: 3\n")
    with pytest.raises(InputError, match=r"c.yaml: track: unknown key 'max_agee'"):
        load_config(p)


def test_wrong_type_and_bad_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("detect:\n  conf: high\n")
    with pytest.raises(InputError, match="c.yaml: detect.conf: expected float"):
        load_config(p)
    p.write_text("detect: [\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_nested_values_and_override(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("detect:\n  detector: hog\n  motion:\n    history: 50\nvideo:\n  offsets: [0, 1.5]\n")
    cfg = load_config(p)
    assert cfg.detect.detector == "hog" and cfg.detect.motion.history == 50
    assert cfg.video.offsets == (0.0, 1.5)
    cfg2 = override(cfg, **{"detect.detector": "motion", "track.min_hits": None})
    assert cfg2.detect.detector == "motion" and cfg2.track == cfg.track


def test_default_yaml_is_the_builtin_defaults():
    """configs/default.yaml documents every setting; regenerate it with `track-cameras --print-config`."""
    from tests.conftest import REPO
    from tracker.config import dump_yaml

    text = (REPO / "configs" / "default.yaml").read_text()
    assert text == dump_yaml(PipelineConfig())
    assert load_config(REPO / "configs" / "default.yaml") == PipelineConfig()


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("video:\n  stride: 0\n", "c.yaml: video.stride: must be >= 1, got 0"),
        ("video:\n  offsets: [.nan, 0]\n", "c.yaml: video.offsets: must be finite seconds"),
        ("video:\n  names: [a, ../b]\n", "c.yaml: video.names: '../b' is not a safe camera name"),
        ("detect:\n  batch: -5\n", "c.yaml: detect.batch: must be >= 1 and <= 4096, got -5"),
        ("detect:\n  conf: 1.5\n", "c.yaml: detect.conf: must be >= 0 and <= 1"),
        ("detect:\n  device: gpu\n", "c.yaml: detect.device: must be auto, cpu, cuda or cuda:N"),
        ("detect:\n  motion:\n    scale: 0\n", "c.yaml: detect.motion.scale: must be > 0 and <= 1"),
        ("track:\n  low_thresh: 0.7\n", "c.yaml: track.high_thresh: must be >= 0.7, got 0.5"),
        ("track:\n  max_age: .inf\n", "c.yaml: track.max_age: must be a finite number"),
        ("reid:\n  precision: fp8\n", "c.yaml: reid.precision: must be one of auto, fp32, fp16, bf16"),
        ("associate:\n  knn: 0\n", "c.yaml: associate.knn: must be >= 1"),
        (
            "execution:\n  chunk_seconds: 1\n",
            "c.yaml: execution.chunk_overlap: must be > 0 and < 1.0, got 2.0",
        ),
    ],
)
def test_values_out_of_range_name_the_file_and_key(tmp_path, yaml_text, message):
    """Every section checks its own values where it is defined, in one style."""
    p = tmp_path / "c.yaml"
    p.write_text(yaml_text)
    with pytest.raises(InputError) as err:
        load_config(p)
    assert str(err.value).startswith(str(p)) and message.split("c.yaml: ")[1] in str(err.value)


def test_a_section_is_checked_once_with_all_its_overrides():
    cfg = override(PipelineConfig(), **{"execution.chunk_seconds": 1.0, "execution.chunk_overlap": 0.5})
    assert (cfg.execution.chunk_seconds, cfg.execution.chunk_overlap) == (1.0, 0.5)
    with pytest.raises(InputError, match="execution.chunk_overlap"):
        override(PipelineConfig(), **{"execution.chunk_seconds": 1.0})


def test_flags_are_overrides_that_name_the_flag(tmp_path):
    from tracker.cli import _join_negative_values, _parser, config_from_args

    args = _parser().parse_args(
        [
            "--calibration",
            "scene.json",
            "--offline",
            "--names",
            "a",
            "b",
            "--offsets",
            "0,1.5",
            "--frame-stride",
            "2",
            "--no-associate",
            "--device",
            "cpu",
        ]
    )
    cfg = config_from_args(args)
    assert cfg.associate.calibration == "scene.json" and cfg.models.offline
    assert cfg.video.names == ("a", "b") and cfg.video.offsets == (0.0, 1.5) and cfg.video.stride == 2
    assert not cfg.associate.enabled and cfg.detect.device == cfg.reid.device == "cpu"
    bad = _parser().parse_args(["--frame-stride", "0"])
    with pytest.raises(InputError, match=r"^--frame-stride: video.stride: must be >= 1, got 0$"):
        config_from_args(bad)
    with pytest.raises(
        InputError, match=r"^--names: video.names: '\.\./\.\./evil' is not a safe camera name"
    ):
        config_from_args(_parser().parse_args(["--names", "../../evil", "b"]))
    negative = _parser().parse_args(_join_negative_values(["--offsets", "-1.5,0"]))
    assert config_from_args(negative).video.offsets == (-1.5, 0.0)
    with pytest.raises(InputError, match=r"^--offsets: video.offsets: must be finite"):
        config_from_args(_parser().parse_args(_join_negative_values(["--offsets", "-1e12,0"])))
    (tmp_path / "c.yaml").write_text("video:\n  stride: 0\n")
    with pytest.raises(InputError, match=r"c.yaml: video.stride"):  # a config value is named as one
        config_from_args(_parser().parse_args(["--config", str(tmp_path / "c.yaml")]))
