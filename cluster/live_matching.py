"""The live pipeline's match stage: one camera's results -> tracklets -> watchlist search -> sightings.

`MatchingSink` is the result sink a camera's forwarder runs. It feeds every frame's faces to
that camera's `Tracker`, searches the tracklets that have enough evidence against the
deployment's watchlist in one batched call, answers the tracker (which deletes a non-match on
the spot) and hands the sightings of possible matches to its outlet (the Coordinator, in the
cluster). Frames captured outside the deployment's window are not tracked or matched at all;
only their count is kept. `GalleryMatcher` is the search: the deployment's frozen watchlist
version in Milvus, one round trip per batch of tracklets.

When the watchlist cannot be searched (the gallery is down), the tracklets stay awaiting a
decision and the search is retried with the next frames; the tracker deletes them if no
decision comes within its decision timeout, so an outage costs possible matches, never privacy.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import structlog

from cluster.alerts.model import Sighting
from cluster.deployment import DeploymentWindow
from cluster.face_service import FrameResult
from cluster.gallery.records import WatchlistVersion
from cluster.gallery.watchlists import Watchlists
from cluster.tracking.candidate import Candidate, WatchlistMatcher
from cluster.tracking.config import TrackingConfig
from cluster.tracking.matching import match_and_decide
from cluster.tracking.tracker import ReadyTracklet, Tracker, TrackerCounts, TrackerHoldings

log = structlog.get_logger(__name__)

SEARCH_RETRY_S = 1.0
"""After a failed watchlist search, wait this long before searching again."""


class SightingOutlet(Protocol):
    """Where a camera's sightings go (the Coordinator): `send` must not block, `flush` waits for what was sent."""

    def send(self, sightings: list[Sighting]) -> None: ...

    def flush(self) -> None: ...


class GalleryMatcher:
    """Searches a frozen watchlist version in the gallery; candidates as the tracker takes them."""

    def __init__(self, watchlists: Watchlists, version: WatchlistVersion, top_k: int | None = None) -> None:
        self._watchlists = watchlists
        self._version = version
        self._top_k = top_k

    def match(self, embeddings: np.ndarray) -> list[list[Candidate]]:
        found = self._watchlists.search(embeddings, self._version, top_k=self._top_k)
        return [
            [Candidate(c.entry.person_id, c.entry.watchlist_id, c.similarity) for c in candidates]
            for candidates in found
        ]


@dataclass(frozen=True)
class MatchingSummary:
    """What one camera's match stage did: counts only, nothing of any face."""

    camera_id: str
    tracker: TrackerCounts
    holdings: TrackerHoldings
    frames_outside_window: int
    sightings: int
    search_failures: int
    awaiting_search: int


class MatchingSink:
    """Tracks, matches and reports one camera's faces; see the module docstring."""

    def __init__(
        self,
        camera_id: str,
        matcher: WatchlistMatcher,
        threshold: float,
        outlet: SightingOutlet,
        tracking: TrackingConfig | None = None,
        window: DeploymentWindow | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.camera_id = camera_id
        self._tracker = Tracker(camera_id, tracking)
        self._matcher = matcher
        self._threshold = threshold
        self._outlet = outlet
        self._window = window
        self._clock = clock
        self._awaiting: list[ReadyTracklet] = []
        self._retry_at = 0.0
        self._outside_window = 0
        self._sightings = 0
        self._search_failures = 0
        self._log = log.bind(camera_id=camera_id)

    def accept(self, result: FrameResult, pixels: np.ndarray) -> None:
        if self._window is not None and not self._window.allows(result.captured_at):
            self._outside_window += 1
            return
        update = self._tracker.update(result, pixels)
        self._search(update.ready)

    def close(self) -> None:
        """The camera stopped: end every track, decide what has evidence (the rest is dropped), deliver."""
        self._search(self._tracker.close().ready, retry_now=True)
        self._outlet.flush()

    def summary(self) -> MatchingSummary:
        return MatchingSummary(
            camera_id=self.camera_id,
            tracker=self._tracker.counts(),
            holdings=self._tracker.holdings(),
            frames_outside_window=self._outside_window,
            sightings=self._sightings,
            search_failures=self._search_failures,
            awaiting_search=len(self._awaiting),
        )

    def _search(self, ready: Sequence[ReadyTracklet], retry_now: bool = False) -> None:
        self._awaiting = [t for t in self._awaiting if self._tracker.is_awaiting(t.tracklet_id)]
        self._awaiting.extend(ready)
        if not self._awaiting or (not retry_now and self._clock() < self._retry_at):
            return
        batch, self._awaiting = self._awaiting, []
        try:
            sightings = match_and_decide(self._tracker, batch, self._matcher, self._threshold)
        except Exception as exc:
            self._search_failures += 1
            self._retry_at = self._clock() + SEARCH_RETRY_S
            self._awaiting = batch
            self._log.warning("watchlist_search_failed", tracklets=len(batch), error=f"{type(exc).__name__}: {exc}")
            return
        if sightings:
            self._sightings += len(sightings)
            self._outlet.send(sightings)
