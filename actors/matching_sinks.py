"""Wiring the match stage into a camera's forwarder: the gallery search and the way to the Coordinator.

`MatchingSinkFactory` is what `LivePipeline` passes to each `StreamForwarder`: plain settings,
from which the forwarder builds its own gallery connection and `MatchingSink` (live objects are
never shipped between processes). `CoordinatorOutlet` sends sightings to the named Coordinator
without waiting, keeps the replies it has not seen yet, counts failures, and waits for all of
them when the camera stops, so that no sighting is still in the air when a run is scored.
"""

from collections import deque
from dataclasses import dataclass

import ray
import structlog
from ray.actor import ActorHandle

from actors.coordinator import COORDINATOR_NAME
from cluster.alerts.model import Sighting
from cluster.deployment import DeploymentWindow
from cluster.gallery.config import GalleryConfig
from cluster.gallery.gallery import Gallery
from cluster.live_matching import GalleryMatcher, MatchingSink
from cluster.tracking.config import TrackingConfig

log = structlog.get_logger(__name__)

FLUSH_TIMEOUT_S = 30.0


class CoordinatorOutlet:
    """Sends a camera's sightings to the Coordinator; see the module docstring."""

    def __init__(self, coordinator: ActorHandle, camera_id: str) -> None:
        self._coordinator = coordinator
        self._pending: deque[ray.ObjectRef] = deque()
        self._log = log.bind(camera_id=camera_id)
        self.sent = 0
        self.failed = 0

    def send(self, sightings: list[Sighting]) -> None:
        self._pending.append(self._coordinator.add_sightings.remote(sightings))
        self.sent += len(sightings)
        self._collect(timeout_s=0.0)

    def flush(self) -> None:
        self._collect(timeout_s=FLUSH_TIMEOUT_S)
        if self._pending:
            self.failed += len(self._pending)
            self._log.error("sightings_unconfirmed", calls=len(self._pending), waited_s=FLUSH_TIMEOUT_S)
            self._pending.clear()

    def _collect(self, timeout_s: float) -> None:
        if not self._pending:
            return
        done, waiting = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=timeout_s)
        for ref in done:
            try:
                ray.get(ref)
            except ray.exceptions.RayError as exc:
                self.failed += 1
                self._log.error("sightings_not_fused", error=type(exc).__name__)
        self._pending = deque(waiting)


@dataclass(frozen=True)
class MatchingSinkFactory:
    """Builds one camera's `MatchingSink` inside its forwarder."""

    gallery: GalleryConfig
    watchlist_version: str
    threshold: float
    tracking: TrackingConfig
    window: DeploymentWindow | None
    namespace: str

    def __call__(self, camera_id: str) -> MatchingSink:
        gallery = Gallery.open(self.gallery)
        version = gallery.watchlists.version(self.watchlist_version)
        coordinator = ray.get_actor(COORDINATOR_NAME, namespace=self.namespace)
        return MatchingSink(
            camera_id,
            GalleryMatcher(gallery.watchlists, version),
            self.threshold,
            CoordinatorOutlet(coordinator, camera_id),
            self.tracking,
            self.window,
        )
