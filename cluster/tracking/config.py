"""Tracking thresholds: named defaults and the `tracking` section that overrides them.

The defaults assume faces sampled at about 5 frames per second from CCTV, where a walking
person's face moves up to about two face widths between frames.
"""

from pydantic import Field, model_validator

from cluster.section import Section

BEST_FACES = 5
"""Faces a tracklet keeps (its best by quality); the rest are forgotten as better ones arrive."""
MIN_FACES_FOR_DECISION = 3
"""Kept faces a live tracklet needs before it is searched against the watchlist."""
MIN_POOLED_QUALITY = 0.25
"""Mean quality of the kept faces below which a tracklet is never searched. lfw10 photos score
0.58 (median); street video faces of 30-75 px score 0.15-0.42 (size and sharpness pull them
down), and at 0.25 they are still matched right at the 0.92 threshold (`lfr demo`: all watchlist
people alerted, no false alert), while 0.45 let no street tracklet be searched at all."""
MIN_ENROL_QUALITY = 0.15
"""A face below this quality never joins a tracklet; it only moves its track's box."""
MIN_ENROL_FACE_PX = 24.0
"""A face whose box is narrower or shorter than this never joins a tracklet."""
MAX_MISSED_FRAMES = 10
"""A track unseen in this many consecutive frames (that had results) has ended."""
MAX_UNSEEN_S = 3.0
"""A track unseen for this many seconds has ended, however few frames arrived meanwhile."""
ASSOCIATION_MIN_SIMILARITY = 0.85
"""Cosine below which a face cannot continue a track that has an appearance (lfw10: same person >= 0.89)."""
ASSOCIATION_MAX_SPEED = 10.0
"""Fastest a face is expected to move, in face sizes per second, beyond where its velocity predicts."""
ASSOCIATION_MIN_RADIUS = 1.0
"""Smallest search radius around a track's predicted centre, in face sizes, however short the time step."""
ASSOCIATION_MAX_SIZE_RATIO = 1.6
"""Largest ratio between a track's face size and a candidate face's size."""
DECISION_TIMEOUT_S = 30.0
"""A tracklet whose watchlist decision has not come back in this time is deleted unmatched."""


class TrackingConfig(Section):
    """How faces are linked into tracklets, when a tracklet is searched, and which faces are never kept."""

    enrol_faces: bool = Field(
        True,
        description="False: faces are counted and followed by their boxes only; none is kept or searched"
        " (for example outside the deployment's authorised window).",
    )
    best_faces: int = Field(BEST_FACES, ge=1, le=64, description="Faces a tracklet keeps, its best by quality.")
    min_faces_for_decision: int = Field(
        MIN_FACES_FOR_DECISION, ge=1, le=64, description="Kept faces a live tracklet needs before it is searched."
    )
    min_pooled_quality: float = Field(
        MIN_POOLED_QUALITY, ge=0.0, le=1.0, description="Mean quality of the kept faces needed for a search."
    )
    min_enrol_quality: float = Field(
        MIN_ENROL_QUALITY, ge=0.0, le=1.0, description="Faces below this quality never join a tracklet."
    )
    min_enrol_face_px: float = Field(
        MIN_ENROL_FACE_PX, ge=0.0, le=4096.0, description="Faces with a box side below this never join a tracklet."
    )
    max_missed_frames: int = Field(MAX_MISSED_FRAMES, ge=1, le=10_000)
    max_unseen_s: float = Field(MAX_UNSEEN_S, gt=0.0, le=3600.0)
    association_min_similarity: float = Field(ASSOCIATION_MIN_SIMILARITY, ge=-1.0, lt=1.0)
    association_max_speed: float = Field(
        ASSOCIATION_MAX_SPEED, gt=0.0, le=1000.0, description="Face sizes per second beyond the predicted motion."
    )
    association_min_radius: float = Field(ASSOCIATION_MIN_RADIUS, gt=0.0, le=100.0)
    association_max_size_ratio: float = Field(ASSOCIATION_MAX_SIZE_RATIO, gt=1.0, le=100.0)
    decision_timeout_s: float = Field(DECISION_TIMEOUT_S, gt=0.0, le=3600.0)

    @model_validator(mode="after")
    def _decision_reachable(self) -> "TrackingConfig":
        if self.min_faces_for_decision > self.best_faces:
            raise ValueError(
                f"min_faces_for_decision ({self.min_faces_for_decision}) must not exceed best_faces"
                f" ({self.best_faces}): a tracklet keeps only best_faces faces, so it could never be searched"
            )
        return self
