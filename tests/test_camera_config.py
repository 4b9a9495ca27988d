"""Camera configuration: bounds per camera, consistency across cameras, errors that name the YAML path."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from cluster.cameras.config import CameraConfig, verify_cameras
from cluster.config import ConfigError, LfrConfig, load_config

REPO = Path(__file__).resolve().parent.parent


def camera(**fields) -> dict:
    """A valid camera's fields, with `fields` replacing or adding some."""
    return {"id": "oxford_st_1", "source": "rtsp://127.0.0.1:8554/cam0", "signage_notice": "LFR in use", **fields}


def test_west_end_example_loads():
    config = load_config(REPO / "configs" / "west_end.yaml")
    assert [c.id for c in config.cameras] == ["oxford_st_1", "oxford_st_2", "oxford_st_3", "oxford_circus"]
    assert all(c.source_kind == "rtsp" and c.signage_notice and c.location for c in config.cameras)
    assert config.cameras[2].max_width == 1280


def test_defaults_are_sane():
    config = CameraConfig.model_validate(camera())
    assert config.sample_fps == 5 and config.queue_size >= 1 and not config.loop and config.realtime
    assert 0 < config.timeouts.read_s <= config.timeouts.open_s
    assert config.backoff.initial_s <= config.backoff.max_s
    assert LfrConfig().cameras == []


@pytest.mark.parametrize(
    ("fields", "expected_error"),
    [
        ({"id": "Oxford St"}, r"id\n.*should match pattern"),
        ({"id": "oxford__st"}, r"id\n.*should match pattern"),
        ({"source": "udp://239.0.0.1:1234"}, r"unsupported source scheme 'udp://'"),
        ({"signage_notice": "   "}, r"the public must be told"),
        ({"signage_notice": ""}, r"signage_notice"),
        ({"sample_fps": 0}, r"sample_fps"),
        ({"sample_fps": 61}, r"sample_fps"),
        ({"max_width": 8}, r"max_width"),
        ({"location": {"name": "Soho", "lat": 91, "lon": 0}}, r"location\.lat"),
        ({"location": {"name": "Soho", "lat": 51.5, "lon": -181}}, r"location\.lon"),
        ({"neighbours": [{"camera_id": "oxford_st_2", "walking_seconds": 0}]}, r"walking_seconds"),
        ({"neighbours": [{"camera_id": "oxford_st_1", "walking_seconds": 60}]}, r"cannot be its own neighbour"),
        (
            {"neighbours": [{"camera_id": "soho", "walking_seconds": 60}, {"camera_id": "soho", "walking_seconds": 9}]},
            r"neighbours\[1\]\.camera_id: 'soho' is listed twice",
        ),
        ({"loop": True}, r"only file sources can loop"),
        ({"realtime": False}, r"only file sources can be read faster"),
        ({"backoff": {"initial_s": 5, "max_s": 1}}, r"must not exceed max_s"),
        ({"timeouts": {"read_s": 0}}, r"timeouts\.read_s"),
        ({"queue_size": 0}, r"queue_size"),
        ({"fps": 5}, r"fps\n.*Extra inputs"),
    ],
)
def test_bad_camera_is_refused_with_the_field(fields, expected_error):
    with pytest.raises(ValidationError, match=expected_error):
        CameraConfig.model_validate(camera(**fields))


def test_signage_is_required():
    with pytest.raises(ValidationError, match="signage_notice\n.*Field required"):
        CameraConfig.model_validate({"id": "a", "source": "rtsp://127.0.0.1/x"})


@pytest.mark.parametrize(
    ("source", "kind", "path"),
    [
        ("rtsp://127.0.0.1:8554/cam0", "rtsp", None),
        ("rtsps://cam.example/stream", "rtsp", None),
        ("http://127.0.0.1:8080/live.ts", "http", None),
        ("/data/my clip.mp4", "file", Path("/data/my clip.mp4")),
        ("clips/a.mp4", "file", Path("clips/a.mp4")),
        ("file:///data/my%20clip.mp4", "file", Path("/data/my clip.mp4")),
    ],
)
def test_source_kinds(source, kind, path):
    config = CameraConfig.model_validate(camera(source=source))
    assert config.source_kind == kind
    if path is None:
        with pytest.raises(ValueError, match="not a file"):
            _ = config.file_path
    else:
        assert config.file_path == path


def network(*cameras: dict) -> list[CameraConfig]:
    return [CameraConfig.model_validate(c) for c in cameras]


def test_verify_accepts_one_sided_and_agreeing_neighbours():
    verify_cameras(
        network(
            camera(id="a", neighbours=[{"camera_id": "b", "walking_seconds": 100}]),
            camera(
                id="b",
                neighbours=[{"camera_id": "a", "walking_seconds": 150}, {"camera_id": "c", "walking_seconds": 50}],
            ),
            camera(id="c"),
        )
    )


@pytest.mark.parametrize(
    ("cameras", "expected_error"),
    [
        ((camera(id="a"), camera(id="b"), camera(id="a")), r"cameras\[2\]\.id: duplicate id 'a' \(also cameras\[0\]\)"),
        (
            (camera(id="a"), camera(id="b", neighbours=[{"camera_id": "x", "walking_seconds": 9}])),
            r"cameras\[1\]\.neighbours\[0\]\.camera_id: unknown camera 'x'; known: a, b",
        ),
        (
            (
                camera(id="a", neighbours=[{"camera_id": "b", "walking_seconds": 60}]),
                camera(id="b", neighbours=[{"camera_id": "a", "walking_seconds": 3600}]),
            ),
            r"cameras\[0\]\.neighbours\[0\]\.walking_seconds: 60 s from 'a' to 'b' but 3600 s back",
        ),
    ],
)
def test_verify_names_the_yaml_path(cameras, expected_error):
    with pytest.raises(ValueError, match=expected_error):
        verify_cameras(network(*cameras))


def test_load_config_reports_cross_camera_errors_with_their_path(tmp_path):
    path = tmp_path / "cameras.yaml"
    path.write_text(
        "cameras:\n"
        "  - {id: a, source: rtsp://127.0.0.1/a, signage_notice: LFR in use}\n"
        "  - {id: b, source: rtsp://127.0.0.1/b, signage_notice: LFR in use,\n"
        "     neighbours: [{camera_id: x, walking_seconds: 30}]}\n"
    )
    with pytest.raises(ConfigError, match=r"cameras\[1\]\.neighbours\[0\]\.camera_id: unknown camera 'x'") as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_load_config_reports_a_bad_camera_field_with_its_index(tmp_path):
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras:\n  - {id: a, source: rtsp://127.0.0.1/a, signage_notice: x, sample_fps: 100}\n")
    with pytest.raises(ConfigError, match=r"cameras\.0\.sample_fps"):
        load_config(path)
