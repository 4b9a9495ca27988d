"""A live match stage against an empty watchlist, for benchmarks and tests of the live pipeline.

Every camera's faces are tracked and every ready tracklet goes through the real `MatchingSink`,
the second face model included when linked, then a watchlist on which nobody is: each tracklet is
decided as a non-match and deleted, as nearly every passer-by is in a real deployment. No gallery
and no Coordinator are needed, so the figures show the cost of tracking and of the second model
alone. This module imports no model code: the factory is unpickled inside the forwarders, which
must stay free of torch.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from actors.matching_sinks import SecondStageLink
from cluster.alerts.model import Sighting
from cluster.live.matching import MatchingSink
from cluster.tracking.candidate import Candidate


class EmptyWatchlist:
    """The matcher protocol over a watchlist with nobody on it: no candidate for anyone."""

    def match(self, embeddings: np.ndarray, extra: Mapping[str, np.ndarray] | None = None) -> list[list[Candidate]]:
        return [[] for _ in embeddings]


class NoOutlet:
    """Where sightings would go; an empty watchlist makes none."""

    def send(self, sightings: list[Sighting]) -> None:
        raise RuntimeError(f"{len(sightings)} sightings against an empty watchlist; the matcher is broken")

    def flush(self) -> None:
        """Nothing is ever sent, so nothing is waited for."""


@dataclass(frozen=True)
class PasserBySinks:
    """Builds each camera's `MatchingSink` against an empty watchlist, with the second model when linked."""

    second_stage: SecondStageLink | None

    def __call__(self, camera_id: str) -> MatchingSink:
        client = None if self.second_stage is None else self.second_stage.client(camera_id)
        return MatchingSink(camera_id, EmptyWatchlist(), 1.0, NoOutlet(), second_stage=client)
