"""Validated configuration for lfr-cluster, loaded from YAML.

Each section is a pydantic model that forbids unknown keys, so a typo in a YAML file fails at
load time with the key's path instead of being silently ignored.
"""

from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from cluster.alerts.config import RetentionConfig
from cluster.audit.config import AuditConfig
from cluster.cameras.config import CameraConfig, verify_cameras
from cluster.control_room.config import ServeConfig
from cluster.database.config import DatabaseConfig
from cluster.deployment.config import DeploymentConfig, verify_deployment
from cluster.fusion.config import FusionConfig
from cluster.gallery.config import GalleryConfig
from cluster.live.config import FaceServiceConfig
from cluster.matching.config import MatchingConfig
from cluster.section import Section
from cluster.social.config import SocialPostsConfig
from cluster.tracking.config import TrackingConfig
from cluster.vision.config import FaceModelsConfig


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the bad key."""


class LfrConfig(Section):
    """The whole configuration file."""

    face_models: FaceModelsConfig = FaceModelsConfig()
    matching: MatchingConfig = MatchingConfig()
    face_service: FaceServiceConfig = FaceServiceConfig()
    tracking: TrackingConfig = TrackingConfig()
    fusion: FusionConfig = FusionConfig()
    gallery: GalleryConfig = GalleryConfig()
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    audit: AuditConfig = AuditConfig()
    retention: RetentionConfig = RetentionConfig()
    serve: ServeConfig = ServeConfig()
    social: SocialPostsConfig = SocialPostsConfig()
    deployment: DeploymentConfig | None = None
    cameras: list[CameraConfig] = Field([], description="The deployment's cameras; see configs/west_end.yaml.")

    @field_validator("cameras")
    @classmethod
    def _cameras_fit_together(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        verify_cameras(cameras)
        return cameras

    @model_validator(mode="after")
    def _deployment_uses_known_cameras(self) -> "LfrConfig":
        if self.deployment is not None:
            verify_deployment(self.deployment, self.cameras)
        return self


def _format_errors(path: Path, error: ValidationError) -> str:
    lines = [f"invalid configuration in {path}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def load_config(path: Path | str | None = None) -> LfrConfig:
    """Read and validate a YAML configuration; the built-in defaults when no path is given."""
    if path is None:
        return LfrConfig()
    config_path = Path(path)
    try:
        text = config_path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {config_path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{config_path} must hold a mapping of sections, got {type(data).__name__}")
    try:
        return LfrConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(config_path, exc)) from exc
