"""An alert's confidence in 0..1: more cameras and more frames that agree make it higher.

Each camera is one piece of evidence, worth

    e_c = CAMERA_EVIDENCE * (1 - exp(-frames_c / FRAMES_SCALE)) * (1 + margin_c) / 2

where frames_c counts the frames of that camera's sightings in the alert and margin_c places
its best match score between the threshold (0) and the score of two identical faces (1: a
cosine of 1, or the fused score of cosines of 1; `perfect`). Cameras count as
independent witnesses, so

    confidence = 1 - prod_c (1 - e_c)

One camera never exceeds CAMERA_EVIDENCE (0.6); a second camera that agrees always raises the
figure, and so does every further frame, with diminishing returns. Examples at margin 0.5:
one camera with 10 frames 0.39, two cameras 0.63, three cameras 0.77.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

CAMERA_EVIDENCE = 0.6
"""The most one camera can contribute, however long it watched."""
FRAMES_SCALE = 5.0
"""Frames at which a camera's evidence reaches 63% of its most."""


@dataclass(frozen=True)
class CameraEvidence:
    """What one camera contributed to an alert: frames of agreeing sightings and their best similarity."""

    frames: int
    best_similarity: float


def camera_evidence_weight(evidence: CameraEvidence, threshold: float, perfect: float = 1.0) -> float:
    """e_c of the module docstring, in 0..CAMERA_EVIDENCE."""
    margin = min(1.0, max(0.0, (evidence.best_similarity - threshold) / max(perfect - threshold, 1e-9)))
    frames = 1.0 - math.exp(-max(0, evidence.frames) / FRAMES_SCALE)
    return CAMERA_EVIDENCE * frames * (1.0 + margin) / 2.0


def alert_confidence(cameras: Iterable[CameraEvidence], threshold: float, perfect: float = 1.0) -> float:
    """1 - prod(1 - e_c) over the cameras of an alert; 0 with no camera."""
    doubt = 1.0
    for evidence in cameras:
        doubt *= 1.0 - camera_evidence_weight(evidence, threshold, perfect)
    return 1.0 - doubt
