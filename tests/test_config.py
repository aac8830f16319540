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
    with pytest.raises(InputError, match=r"c.yaml.track: unknown key 'max_agee'"):
        load_config(p)


def test_wrong_type_and_bad_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("detect:\n  conf: high\n")
    with pytest.raises(InputError, match="detect.conf: expected float"):
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
