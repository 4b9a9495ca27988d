"""Configuration loads from YAML and names the bad key when it cannot."""

from pathlib import Path

import pytest

from cluster.config import ConfigError, LfrConfig, load_config

REPO = Path(__file__).resolve().parent.parent


def test_default_yaml_matches_the_built_in_defaults():
    """configs/default.yaml documents the defaults; it must not drift from the code."""
    assert load_config(REPO / "configs" / "default.yaml") == LfrConfig()


def test_no_path_gives_the_defaults():
    assert load_config(None) == LfrConfig()


@pytest.mark.parametrize(
    ("yaml_text", "expected_error"),
    [
        ("face_models:\n  detecter: {}\n", r"face_models\.detecter: Extra inputs"),
        ("face_models:\n  detector:\n    min_face_size: 5\n", r"face_models\.detector\.min_face_size"),
        ("face_models:\n  detector:\n    thresholds: [0.6, 1.5, 0.7]\n", r"rnet threshold must be within"),
        ("face_models:\n  detector:\n    pyramid_factor: 1.2\n", r"face_models\.detector\.pyramid_factor"),
        ("face_models:\n  device: tpu\n", r"face_models\.device"),
        ("face_models:\n  device: cpu\n  half: true\n", r"fp16 is only supported on cuda"),
        ("matching:\n  similarity_threshold: 2\n", r"matching\.similarity_threshold"),
        ("- just\n- a list\n", r"must hold a mapping"),
        ("face_models: [unclosed\n", r"not valid YAML"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path, yaml_text, expected_error):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=expected_error) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "absent.yaml")


def test_partial_file_keeps_other_defaults(tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text("face_models:\n  detector:\n    min_face_size: 40\n")
    config = load_config(path)
    assert config.face_models.detector.min_face_size == 40
    assert config.face_models.detector.thresholds == LfrConfig().face_models.detector.thresholds
