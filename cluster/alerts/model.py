"""The typed objects that flow from the tracker through the Coordinator to the alert store and API.

A `Sighting` is one camera's evidence that a watchlist person passed: a tracklet whose pooled
embedding matched a watchlist entry. An `Alert` fuses the sightings of one person across
cameras into the one thing a control-room officer adjudicates. Nothing here exists for a face
that matched nobody: those never become sightings.
"""

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from cluster.vision.face import EMBEDDING_SIZE

COSINE_ROUNDING = 1e-4
"""How far past +-1 a float32 cosine may stray by rounding."""


class AlertState(enum.StrEnum):
    """Where an alert is in its life: new -> acknowledged -> confirmed or rejected."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self in (AlertState.CONFIRMED, AlertState.REJECTED)


@dataclass(frozen=True, eq=False)
class Sighting:
    """One camera's evidence that a watchlist person was seen.

    sighting_id: unique (`camera_id:tracklet_id`), so a resent sighting is recognised.
    embedding: (128,) float32 L2-normalised pooled primary-model embedding of the tracklet's best faces;
        None once deleted (an officer rejected the alert: see `cluster.alerts.suppression`). A
        sighting from a camera always carries one.
    similarity: the match score that decided it, on the scale of the threshold in force (the
        fused score of every model when the watchlist version is calibrated, else a cosine).
    model_scores: each model's cosine to the watchlist entry, by model name.
    first_seen / last_seen: frame capture times (unix seconds) of the tracklet's span.
    crop_jpeg: the best face crop as JPEG, kept only because this is a possible match.
    box: (4,) x1 y1 x2 y2 of the best face in its frame.
    """

    sighting_id: str
    camera_id: str
    person_id: str
    watchlist_id: str
    similarity: float
    first_seen: float
    last_seen: float
    frames: int
    embedding: np.ndarray | None
    crop_jpeg: bytes | None = None
    box: np.ndarray | None = None
    model_scores: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.embedding is not None and np.shape(self.embedding) != (EMBEDDING_SIZE,):
            raise ValueError(f"Sighting.embedding: expected shape ({EMBEDDING_SIZE},), got {np.shape(self.embedding)}")
        if self.box is not None and np.shape(self.box) != (4,):
            raise ValueError(f"Sighting.box: expected shape (4,), got {np.shape(self.box)}")
        if not math.isfinite(self.similarity):
            raise ValueError(f"Sighting.similarity must be a finite match score, got {self.similarity}")
        for model, cosine in self.model_scores.items():
            if not math.isfinite(cosine) or not -1.0 - COSINE_ROUNDING <= cosine <= 1.0 + COSINE_ROUNDING:
                raise ValueError(f"Sighting.model_scores[{model!r}] must be a cosine in -1..1, got {cosine}")
        if self.last_seen < self.first_seen:
            raise ValueError(f"Sighting {self.sighting_id}: last_seen {self.last_seen} is before first_seen")
        if self.frames < 1:
            raise ValueError(f"Sighting {self.sighting_id}: frames must be >= 1, got {self.frames}")


@dataclass(frozen=True)
class Adjudication:
    """A person's decision on an alert: who, what, why and when."""

    state: AlertState
    officer: str
    reason: str
    at: float


@dataclass(frozen=True, eq=False)
class Alert:
    """One consolidated alert: a watchlist person seen by one or more cameras.

    confidence grows with the number of cameras and frames that agree (see the fusion module).
    threshold and model record what was in force when the alert was raised; target_fpir and
    expected_tpir what the threshold was calibrated for (None for an uncalibrated threshold).
    """

    alert_id: str
    deployment_id: str
    person_id: str
    watchlist_id: str
    state: AlertState
    sightings: tuple[Sighting, ...]
    confidence: float
    created_at: float
    updated_at: float
    threshold: float
    model: str
    adjudications: tuple[Adjudication, ...] = ()
    held: bool = False
    target_fpir: float | None = None
    expected_tpir: float | None = None

    @property
    def cameras(self) -> tuple[str, ...]:
        """Cameras that saw this person, in the order they first did."""
        ordered = sorted(self.sightings, key=lambda s: s.first_seen)
        return tuple(dict.fromkeys(s.camera_id for s in ordered))

    @property
    def first_seen(self) -> float:
        return min(s.first_seen for s in self.sightings)

    @property
    def last_seen(self) -> float:
        return max(s.last_seen for s in self.sightings)
