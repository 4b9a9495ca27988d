"""Validated configuration for lfr-cluster, loaded from YAML.

Each section is a pydantic model that forbids unknown keys, so a typo in a YAML file fails at
load time with the key's path instead of being silently ignored.
"""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from cluster.alerts.config import RetentionConfig
from cluster.audit.config import AuditConfig, DatabaseConfig
from cluster.cameras.config import CameraConfig, verify_cameras
from cluster.deployment import DeploymentConfig, verify_deployment
from cluster.fusion.config import FusionConfig
from cluster.gallery.config import GalleryConfig
from cluster.matching.rate import Rate
from cluster.section import Section
from cluster.service_config import FaceServiceConfig
from cluster.tracking.config import TrackingConfig
from cluster.vision.face import PRIMARY_MODEL


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the bad key."""


class DetectorConfig(Section):
    """MTCNN settings: the smallest face worth finding and how sure each stage must be."""

    min_face_size: int = Field(20, ge=12, le=1000, description="Smallest face side in pixels to look for.")
    thresholds: tuple[float, float, float] = Field(
        (0.6, 0.7, 0.7), description="Score thresholds of the P-, R- and O-Net stages."
    )
    pyramid_factor: float = Field(0.709, gt=0.1, lt=0.95, description="Scale step between pyramid levels.")
    max_pixels: int = Field(
        3840 * 2160,
        ge=64 * 64,
        description="Frames larger than this are detected on a downscaled copy; boxes are mapped back.",
    )

    @model_validator(mode="after")
    def _thresholds_in_range(self) -> "DetectorConfig":
        for stage, value in zip(("pnet", "rnet", "onet"), self.thresholds):
            if not 0.0 < value < 1.0:
                raise ValueError(f"thresholds: the {stage} threshold must be within (0, 1), got {value}")
        return self


class EmbedderConfig(Section):
    """Settings of the dlib ResNet embedder."""

    max_batch: int = Field(64, ge=1, le=4096, description="Most chips per forward pass.")
    channels_last: bool = Field(True, description="Use the channels-last memory layout.")


class SecondStageConfig(Section):
    """The second face model, run where it pays: enrolment, retrospective faces, a tracklet's best faces."""

    model: Literal["faceres"] = Field(
        "faceres", description="Name of the second model; every alert records it beside its score."
    )
    flip: bool = Field(False, description="Also embed the mirrored face and average both (twice the cost).")
    max_batch: int = Field(
        8, ge=1, le=4096, description="Most chips per forward pass (faceres on 2 cores: 124 faces/s at 8, 80 at 32)."
    )
    channels_last: bool = Field(True, description="Use the channels-last memory layout.")
    faces_per_tracklet: int = Field(
        3, ge=1, le=16, description="A live tracklet's best faces (by quality) given to the second model."
    )


class FaceModelsConfig(Section):
    """Where and how the face models run."""

    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto picks cuda when a GPU is visible, else cpu."
    )
    half: bool | Literal["auto"] = Field(
        "auto", description="fp16 on cuda; auto means on for cuda, off for cpu. Never on cpu."
    )
    threads: int | None = Field(None, ge=1, le=256, description="torch CPU threads; default: all cores.")
    detector: DetectorConfig = DetectorConfig()
    embedder: EmbedderConfig = EmbedderConfig()
    second_stage: SecondStageConfig | None = Field(
        SecondStageConfig(), description="The second face model fused with the first; null turns it off."
    )

    @property
    def models(self) -> tuple[str, ...]:
        """Names of the embedding models in use, the primary first: what a match score is fused from."""
        return (PRIMARY_MODEL,) + (() if self.second_stage is None else (self.second_stage.model,))

    @model_validator(mode="after")
    def _no_half_on_cpu(self) -> "FaceModelsConfig":
        if self.device == "cpu" and self.half is True:
            raise ValueError("half: fp16 is only supported on cuda; set half to false or auto")
        return self


class MatchingConfig(Section):
    """When a face counts as a watchlist person, and when two faces count as the same person."""

    target_fpir: Rate = Field(
        1 / 6000,
        gt=0.0,
        le=0.5,
        description=(
            "False alerts per passer-by not on the list that a watchlist may give; each frozen version's threshold"
            " is calibrated for this rate and its size."
        ),
    )
    similarity_threshold: float = Field(
        0.92,
        gt=0.0,
        lt=1.0,
        description="Primary-model cosine for one-to-one comparisons (lfr compare, social search listings).",
    )


class LfrConfig(Section):
    """The whole configuration file."""

    face_models: FaceModelsConfig = FaceModelsConfig()
    matching: MatchingConfig = MatchingConfig()
    face_service: FaceServiceConfig = FaceServiceConfig()
    tracking: TrackingConfig = TrackingConfig()
    fusion: FusionConfig = FusionConfig()
    gallery: GalleryConfig = GalleryConfig()
    database: DatabaseConfig = DatabaseConfig()
    audit: AuditConfig = AuditConfig()
    retention: RetentionConfig = RetentionConfig()
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
