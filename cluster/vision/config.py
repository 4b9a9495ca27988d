"""Configuration of the face models (the `face_models` section): detector, embedder, second stage, device."""

from typing import Literal

from pydantic import Field, model_validator

from cluster.section import Section
from cluster.vision.face import PRIMARY_MODEL


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
    compile: Literal["inductor", "cudagraphs"] | None = Field(
        None,
        description="Run the nets under torch.compile (inductor: with CUDA graphs on a GPU); each new input shape"
        " compiles on first use. null: plain eager torch.",
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
