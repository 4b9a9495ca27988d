""" "Not this person", the rule: is a sighting the person an officer rejected against the same entry?

A sighting is suppressed when a suppression of its own deployment covers its watchlist entry and
its embedding is within `threshold` (cosine) of the suppression's pooled embedding. Both tests
matter: another person who matches the same entry (a second look-alike, or the wanted person
after their look-alike was rejected) is still alerted unless their face is as close to the
rejected one as the same person's would be, and a suppression never reaches another deployment
or another entry. The threshold's choice is explained at `cluster.fusion.config.SUPPRESSION_THRESHOLD`.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from cluster.alerts.model import Sighting
from cluster.alerts.suppression import SuppressedSighting, Suppression


@dataclass(frozen=True)
class SuppressionMatch:
    """The suppression a sighting falls under, and how close its face is to the rejected one."""

    suppression: Suppression
    similarity: float

    def suppressed(self, sighting: Sighting) -> SuppressedSighting:
        """What is kept of the sighting: times, camera and frames, for the count; no face."""
        return SuppressedSighting(
            sighting_id=sighting.sighting_id,
            suppression_id=self.suppression.alert_id,
            deployment_id=self.suppression.deployment_id,
            camera_id=sighting.camera_id,
            first_seen=sighting.first_seen,
            last_seen=sighting.last_seen,
            frames=sighting.frames,
            similarity=self.similarity,
        )


@dataclass(frozen=True)
class SuppressionRule:
    """Decides whether a sighting of `deployment_id` is a rejected person seen again."""

    deployment_id: str
    threshold: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and 0.0 < self.threshold < 1.0):
            raise ValueError(f"suppression threshold must be a cosine in (0, 1), got {self.threshold}")

    def match(self, sighting: Sighting, suppressions: Iterable[Suppression]) -> SuppressionMatch | None:
        """The closest suppression of this deployment and entry at or above the threshold, or None."""
        if sighting.embedding is None:
            raise ValueError(f"sighting {sighting.sighting_id} has no embedding; a camera's sightings always carry one")
        embedding = np.asarray(sighting.embedding, dtype=np.float32)
        best: SuppressionMatch | None = None
        for suppression in suppressions:
            if suppression.deployment_id != self.deployment_id or not suppression.covers(sighting):
                continue
            similarity = float(suppression.embedding @ embedding)
            if similarity >= self.threshold and (best is None or similarity > best.similarity):
                best = SuppressionMatch(suppression, similarity)
        return best
