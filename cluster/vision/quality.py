"""Per-face quality: how useful a detection is for recognition.

A track keeps its best few faces by this score, so it must rank a large, sharp, frontal,
confidently detected face above a small, blurred, turned one. Each part lies in 0..1 and the
overall score is their geometric mean, so one very poor part (a profile, a smear) drags the
face down however good the rest is.
"""

from dataclasses import dataclass

import numpy as np

GOOD_EYE_DISTANCE_PX = 60.0
"""Inter-ocular distance at which extra resolution stops helping the 150x150 embedder."""
MIN_EYE_DISTANCE_PX = 8.0
"""Below this the eyes are a few pixels apart and identity is unreliable."""
SHARPNESS_SCALE = 150.0
"""Laplacian variance of a chip (0..255 grey) at which sharpness reaches 1 - 1/e."""
MAX_YAW_RATIO = 0.6
"""Nose offset from the eye midline, over eye distance, at which a face counts as profile."""
MAX_PITCH_DEVIATION = 0.45
"""How far the nose may sit from its frontal height between eyes and mouth (fraction)."""
FRONTAL_NOSE_HEIGHT = 0.5
"""Nose height between the eye line (0) and the mouth line (1) in a frontal face."""


@dataclass(frozen=True)
class FaceQuality:
    """Quality of one face; every field in 0..1, higher is better."""

    size: float
    sharpness: float
    pose: float
    detection: float
    overall: float


def _size_score(eye_distance: float) -> float:
    span = GOOD_EYE_DISTANCE_PX - MIN_EYE_DISTANCE_PX
    return float(np.clip((eye_distance - MIN_EYE_DISTANCE_PX) / span, 0.0, 1.0))


def _sharpness_score(chip: np.ndarray) -> float:
    grey = chip.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
    return float(1.0 - np.exp(-laplacian.var() / SHARPNESS_SCALE))


def _pose_score(landmarks: np.ndarray) -> float:
    left_eye, right_eye, nose, left_mouth, right_mouth = landmarks.astype(np.float64)
    eye_mid = (left_eye + right_eye) / 2.0
    mouth_mid = (left_mouth + right_mouth) / 2.0
    eye_axis = right_eye - left_eye
    eye_distance = np.linalg.norm(eye_axis)
    face_axis = mouth_mid - eye_mid
    face_height = np.linalg.norm(face_axis)
    if eye_distance < 1e-6 or face_height < 1e-6:
        return 0.0
    yaw = abs(np.dot(nose - eye_mid, eye_axis / eye_distance)) / eye_distance
    nose_height = np.dot(nose - eye_mid, face_axis / face_height) / face_height
    pitch = abs(nose_height - FRONTAL_NOSE_HEIGHT)
    yaw_score = 1.0 - min(yaw / MAX_YAW_RATIO, 1.0)
    pitch_score = 1.0 - min(pitch / MAX_PITCH_DEVIATION, 1.0)
    return float(yaw_score * pitch_score)


def face_quality(landmarks: np.ndarray, chip: np.ndarray, detector_score: float) -> FaceQuality:
    """Score one face from its frame landmarks (5, 2), its aligned chip and its detector score."""
    eye_distance = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    parts = (
        _size_score(eye_distance),
        _sharpness_score(chip),
        _pose_score(landmarks),
        float(np.clip(detector_score, 0.0, 1.0)),
    )
    overall = float(np.prod(np.maximum(parts, 1e-6)) ** (1.0 / len(parts)))
    return FaceQuality(*parts, overall=overall)
