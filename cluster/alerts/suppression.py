""" "Not this person": what a rejected alert leaves behind so that its person is not alerted again.

When an officer rejects an alert, the person its sightings show (that fused track) is, for the
rest of the deployment, not to be alerted again against the same watchlist entry. A
`Suppression` records that person as one vector: the frame-weighted pool of the rejected
alert's sighting embeddings, the same pooled embedding fusion compares sightings with. The
sightings' own embeddings are deleted at once; this pool is the only copy of the face that stays,
and only until the deployment stops (or retention finds it older than `retention.suppression_hours`).

Who counts as the same person is decided by `cluster.fusion.suppression`, not here.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from cluster.alerts.model import Sighting
from cluster.vision.face import EMBEDDING_SIZE


@dataclass(frozen=True, eq=False)
class Suppression:
    """A rejected alert's person, not to be alerted again against its entry in its deployment.

    alert_id: the rejected alert (one suppression each). embedding: the pooled, L2-normalised
    embedding of its sightings.
    """

    alert_id: str
    deployment_id: str
    person_id: str
    watchlist_id: str
    embedding: np.ndarray
    created_at: float
    officer: str

    def __post_init__(self) -> None:
        if np.shape(self.embedding) != (EMBEDDING_SIZE,):
            raise ValueError(
                f"Suppression.embedding: expected shape ({EMBEDDING_SIZE},), got {np.shape(self.embedding)}"
            )

    def covers(self, sighting: Sighting) -> bool:
        """Whether the sighting is in this suppression's deployment scope: the same watchlist entry."""
        return sighting.person_id == self.person_id and sighting.watchlist_id == self.watchlist_id


@dataclass(frozen=True)
class SuppressedSighting:
    """A sighting kept from becoming an alert by a suppression: counted (no face kept), not alerted."""

    sighting_id: str
    suppression_id: str
    deployment_id: str
    camera_id: str
    first_seen: float
    last_seen: float
    frames: int
    similarity: float
    """Cosine between the sighting's embedding and the suppression's."""


def pooled_embedding(sightings: Iterable[Sighting]) -> np.ndarray | None:
    """The frame-weighted mean of the sightings' embeddings, L2-normalised; None if none has one."""
    total = np.zeros(EMBEDDING_SIZE, dtype=np.float64)
    for sighting in sightings:
        if sighting.embedding is not None:
            total += sighting.frames * np.asarray(sighting.embedding, dtype=np.float64)
    norm = math.sqrt(float(total @ total))
    if norm == 0.0 or not math.isfinite(norm):
        return None
    return (total / norm).astype(np.float32)
