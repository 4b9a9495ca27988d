"""Deployment configuration: the example file loads, bad deployments name the YAML path, and the window holds."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from cluster.alerts.config import RetentionConfig
from cluster.audit.config import AuditConfig
from cluster.cameras.config import CameraConfig
from cluster.config import LfrConfig
from cluster.database.config import DatabaseConfig
from cluster.deployment.config import DeploymentConfig, verify_deployment
from cluster.deployment.plan import plan_from_config, threshold_in_force
from cluster.deployment.window import DeploymentWindow
from cluster.matching.calibration import CalibratedThreshold
from cluster.matching.config import MatchingConfig

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "configs" / "deployments" / "west_end_demo.yaml"
BST = timezone(timedelta(hours=1))


def deployment_fields(**changes) -> dict:
    fields = {
        "id": "west_end_test",
        "place": "Oxford Street, London W1",
        "starts_at": "2025-06-14T12:00:00+01:00",
        "ends_at": "2025-06-14T18:00:00+01:00",
        "cameras": ["oxford_st_2", "oxford_circus"],
        "watchlist_id": "west_end_wanted",
        "watchlist_version": "2025-06-14.1",
        "purpose": "wanted_for_offences",
        "signage_notice": "Live facial recognition in use today.",
        "authorised_by": "Superintendent A. Example",
        "reason": "Test deployment.",
    }
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not None}


def cameras(*ids: str) -> list[CameraConfig]:
    return [CameraConfig(id=i, source=f"rtsp://127.0.0.1:8554/{i}", signage_notice="LFR in use") for i in ids]


def test_example_deployment_file_loads_and_fits_its_cameras():
    config = LfrConfig.model_validate(yaml.safe_load(EXAMPLE.read_text()))
    deployment = config.deployment
    assert deployment is not None and deployment.id == "west_end_demo_2025_06_14"
    assert set(deployment.cameras) == {camera.id for camera in config.cameras}
    assert deployment.starts_at == datetime(2025, 6, 14, 11, 0, tzinfo=UTC)
    assert deployment.window.ends_at - deployment.window.starts_at == 6 * 3600
    assert deployment.stated_fpir(config.matching.target_fpir) == 1 / 6000
    assert config.retention.days == 31 and config.database.url.endswith(".sqlite3")


def test_example_file_without_a_deployment_keeps_the_defaults():
    data = yaml.safe_load(EXAMPLE.read_text())
    del data["deployment"], data["retention"], data["audit"], data["database"]
    config = LfrConfig.model_validate(data)
    assert config.deployment is None and config.retention == RetentionConfig()


@pytest.mark.parametrize(
    ("changes", "expected_error"),
    [
        ({"starts_at": "2025-06-14T12:00:00"}, r"starts_at\n.*timezone"),
        ({"ends_at": "2025-06-14T11:00:00+01:00"}, r"ends_at \(2025-06-14T11:00:00\+01:00\) must be after starts_at"),
        ({"ends_at": "2025-06-14T12:00:00+01:00"}, r"must be after starts_at"),
        ({"cameras": []}, r"cameras\n.*at least 1 item"),
        ({"cameras": ["oxford_st_2", "oxford_st_2"]}, r"cameras\[1\]: 'oxford_st_2' is listed twice"),
        ({"signage_notice": "   "}, r"signage_notice\n.*must not be blank"),
        ({"authorised_by": None}, r"authorised_by\n.*Field required"),
        ({"reason": ""}, r"reason\n.*at least 1 character"),
        ({"watchlist_version": None}, r"watchlist_version\n.*Field required"),
        ({"target_fpir": 0.9}, r"target_fpir\n.*less than or equal to 0.5"),
        ({"target_fpir": 0}, r"target_fpir\n.*greater than 0"),
        ({"similarity_threshold": 0.9}, r"similarity_threshold\n.*Extra inputs are not permitted"),
        ({"id": "West End!"}, r"id\n.*pattern"),
        ({"signage": "typo"}, r"signage\n.*Extra inputs are not permitted"),
        ({"purpose": None}, r"purpose\n.*Field required"),
        ({"purpose": "crowd_control"}, r"purpose\n.*'wanted_for_offences', 'court_order_conditions'"),
    ],
)
def test_bad_deployment_names_the_field(changes, expected_error):
    with pytest.raises(ValidationError, match=expected_error):
        DeploymentConfig.model_validate(deployment_fields(**changes))


def test_unknown_cameras_name_the_yaml_path():
    deployment = DeploymentConfig.model_validate(deployment_fields(cameras=["oxford_st_2", "bond_st", "soho_sq"]))
    with pytest.raises(ValueError) as caught:
        verify_deployment(deployment, cameras("oxford_st_2", "oxford_circus"))
    message = str(caught.value)
    assert "deployment.cameras[1]: unknown camera 'bond_st'; known: oxford_circus, oxford_st_2" in message
    assert "deployment.cameras[2]: unknown camera 'soho_sq'" in message
    with pytest.raises(ValueError, match=r"deployments\[3\]\.cameras\[0\]: .* known: \(no cameras configured\)"):
        verify_deployment(deployment, [], path="deployments[3]")


def test_config_rejects_a_deployment_on_unknown_cameras():
    data = yaml.safe_load(EXAMPLE.read_text())
    data["deployment"]["cameras"].append("marble_arch")
    with pytest.raises(ValidationError, match=r"deployment\.cameras\[3\]: unknown camera 'marble_arch'"):
        LfrConfig.model_validate(data)


@pytest.mark.parametrize(
    ("at", "active"),
    [
        (datetime(2025, 6, 14, 11, 59, 59, 999999, tzinfo=BST), False),
        (datetime(2025, 6, 14, 12, 0, tzinfo=BST), True),
        (datetime(2025, 6, 14, 11, 0, tzinfo=UTC), True),
        (datetime(2025, 6, 14, 16, 59, 59, tzinfo=UTC), True),
        (datetime(2025, 6, 14, 18, 0, tzinfo=BST), False),
        (datetime(2025, 6, 15, 3, 0, tzinfo=timezone(timedelta(hours=10))), False),
    ],
)
def test_nothing_is_matched_outside_the_window(at, active):
    deployment = DeploymentConfig.model_validate(deployment_fields())
    assert deployment.is_active(at) is active
    assert deployment.window.allows(at.timestamp()) is active


def test_window_takes_frame_capture_times_and_refuses_naive_datetimes():
    window = DeploymentWindow(starts_at=1000.0, ends_at=2000.0)
    assert [window.allows(t) for t in (999.999, 1000.0, 1999.999, 2000.0, float("nan"))] == [
        False,
        True,
        True,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="must end after it starts"):
        DeploymentWindow(starts_at=2000.0, ends_at=2000.0)
    with pytest.raises(ValueError, match="timezone-aware"):
        DeploymentConfig.model_validate(deployment_fields()).is_active(datetime(2025, 6, 14, 13, 0))


def test_stated_rate_defaults_to_the_matching_section():
    default = MatchingConfig().target_fpir
    assert DeploymentConfig.model_validate(deployment_fields()).stated_fpir(default) == default
    own = DeploymentConfig.model_validate(deployment_fields(target_fpir=1e-3))
    assert own.stated_fpir(default) == 1e-3


def calibrated(target_fpir: float) -> CalibratedThreshold:
    return CalibratedThreshold(4.2, target_fpir, 250, 1e-7, 0.6, "1.00 x dlib_resnet_v1", "digest")


def test_a_deployment_runs_only_at_a_threshold_calibrated_for_its_stated_rate():
    """A version frozen before calibration, or for another rate, is refused with the freeze command to run."""
    plan = plan_from_config(LfrConfig.model_validate(yaml.safe_load(EXAMPLE.read_text())))
    assert threshold_in_force(plan, calibrated(plan.target_fpir)).threshold == 4.2
    with pytest.raises(ValueError, match=r"no calibrated threshold .*lfr watchlist freeze .* --target-fpir"):
        threshold_in_force(plan, None)
    with pytest.raises(ValueError, match=r"calibrated for 0.001; freeze the watchlist with --target-fpir"):
        threshold_in_force(plan, calibrated(1e-3))


@pytest.mark.parametrize(
    ("section", "fields", "expected_error"),
    [
        (DatabaseConfig, {"url": "mysql://db/lfr"}, "unsupported database 'mysql'"),
        (DatabaseConfig, {"url": "sqlite://"}, "in-memory SQLite database loses every record"),
        (AuditConfig, {"hmac_key_env": "lower case"}, "hmac_key_env"),
        (AuditConfig, {"hmac_key": "secret"}, "Extra inputs are not permitted"),
    ],
)
def test_database_and_audit_sections_name_the_bad_key(section, fields, expected_error):
    with pytest.raises(ValidationError, match=expected_error):
        section.model_validate(fields)


def test_a_configured_deployment_plans_what_the_live_run_matches():
    """`lfr run` matches with the deployment's cameras, frozen version, threshold and window, nothing else."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["cameras"].append({**data["cameras"][0], "id": "not_deployed", "neighbours": []})
    config = LfrConfig.model_validate(data)
    plan = plan_from_config(config)
    assert [camera.id for camera in plan.cameras] == list(config.deployment.cameras)
    assert plan.watchlist_version == config.deployment.watchlist_version
    assert plan.target_fpir == config.deployment.stated_fpir(config.matching.target_fpir)
    assert plan.window == config.deployment.window
    with pytest.raises(ValueError, match="no deployment in the configuration"):
        plan_from_config(LfrConfig())
