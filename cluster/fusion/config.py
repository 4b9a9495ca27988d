"""Fusion thresholds: named defaults and the `fusion` section that overrides them."""

from pydantic import Field, model_validator

from cluster.section import Section

FUSION_THRESHOLD = 0.94
"""Cosine between a sighting's pooled embedding and an alert's at or above which they are one person.

Both already matched the same watchlist entry; this keeps apart two people who did (a true
match and a look-alike). On lfw10, pooled embeddings of 4 photos: same person >= 0.968, two
people <= 0.936 (99th percentile 0.924).
"""
SUPPRESSION_THRESHOLD = 0.95
"""Cosine between a sighting's embedding and a rejected alert's pooled one at or above which the sighting is
the person the officer rejected ("not this person"), and is counted instead of alerted.

Suppressing the wrong person hides a wanted one for the rest of the deployment, so this errs
high. It is the lowest cosine (in steps of 0.005) at which at most 1 in 2000 pairs of different
people who both match one third person's face (primary cosine >= 0.92, as two people matching
one watchlist entry do) would be taken for one person, on the impostor cohort
(cluster/matching/data/cohort.npz, 137 people in no test set): 1 pair in 3032 reaches 0.95 (3
reach 0.945, none 0.955); of all 283,340 impostor photo pairs, 1 reaches 0.95. Same-person photos taken on
different occasions reach it in half the pairs, a pool of two photos against a third in 82%;
sightings of one passer-by in one deployment (same day, clothes and cameras) are closer still.
`cluster.evaluation.suppression_calibration` recomputes it; a test holds it to the cohort.
"""
MIN_TRAVEL_FRACTION = 0.5
"""A gap between two cameras shorter than this fraction of the walking time is impossible.

Nobody covers a walking route faster than running at twice walking pace; slower is always
possible (people stop, shop, wait at crossings).
"""
MAX_GAP_S = 900.0
"""Longest gap between sightings on different cameras that still fuses."""
SAME_CAMERA_WINDOW_S = 300.0
"""Longest gap between two sightings on one camera (a track lost and found again) that still fuses."""
OPEN_WINDOW_S = 1800.0
"""How long after its last sighting an alert stays in memory, open for fusion."""


class FusionConfig(Section):
    """When a sighting joins an open alert instead of raising a new one."""

    fusion_threshold: float = Field(
        FUSION_THRESHOLD, gt=0.0, lt=1.0, description="Cosine of a sighting to an alert's embedding to fuse."
    )
    min_travel_fraction: float = Field(
        MIN_TRAVEL_FRACTION,
        gt=0.0,
        le=1.0,
        description="Gaps shorter than this fraction of the shortest walking time between two cameras cannot fuse.",
    )
    max_gap_s: float = Field(MAX_GAP_S, gt=0.0, le=86_400.0, description="Longest gap between cameras that fuses.")
    same_camera_window_s: float = Field(
        SAME_CAMERA_WINDOW_S, ge=0.0, le=86_400.0, description="Longest gap on one camera that fuses."
    )
    open_window_s: float = Field(
        OPEN_WINDOW_S, gt=0.0, le=7 * 86_400.0, description="How long an alert stays open after its last sighting."
    )
    suppression_threshold: float = Field(
        SUPPRESSION_THRESHOLD,
        gt=0.0,
        lt=1.0,
        description=(
            "Cosine of a sighting to a rejected alert's pooled embedding at or above which it is the person the"
            " officer rejected and is counted, not alerted, for the rest of the deployment."
        ),
    )

    @model_validator(mode="after")
    def _window_holds_the_gaps(self) -> "FusionConfig":
        longest = max(self.max_gap_s, self.same_camera_window_s)
        if self.open_window_s < longest:
            raise ValueError(
                f"open_window_s ({self.open_window_s:g}) must be at least max_gap_s and same_camera_window_s"
                f" ({longest:g}): an alert would close before a gap it accepts could end"
            )
        return self
