"""Wiring the match stage into a camera's forwarder: the gallery search and the way to the Coordinator.

`MatchingSinkFactory` is what `LivePipeline` passes to each `StreamForwarder`: plain settings,
from which the forwarder builds its own gallery connection and `MatchingSink` (live objects are
never shipped between processes). `CoordinatorOutlet` sends sightings to the named Coordinator
without waiting, keeps the replies it has not seen yet, counts failures, and waits for all of
them when the camera stops, so that no sighting is still in the air when a run is scored.

`ServeSecondStage` is the sink's way to the second face model: the face service's
`embed_patches`, through a Serve handle. The sink runs on the forwarder's event loop, where a
Serve call may not be waited for synchronously (Serve refuses, and it would stall the camera),
so each call is sent and waited for, with a timeout, on one thread of the client's own; the
sink gets a future and picks the answer up with a later frame. Nothing here imports the models:
forwarders stay free of torch.
"""

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import ray
import structlog
from ray import serve
from ray.actor import ActorHandle
from ray.serve.handle import DeploymentHandle

from actors.coordinator import COORDINATOR_NAME
from actors.metrics import GALLERY_SEARCH, histogram
from cluster.alerts.model import Sighting
from cluster.database.config import DatabaseConfig
from cluster.deployment.window import DeploymentWindow
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.config import GalleryConfig
from cluster.gallery.gallery import Gallery
from cluster.live.face_service import PatchRequest, PatchResult
from cluster.live.matching import GalleryMatcher, MatchingSink
from cluster.matching.fusion import ScoreFusion
from cluster.tracking.config import TrackingConfig
from cluster.tracking.patches import FacePatch
from cluster.vision.config import SecondStageConfig

log = structlog.get_logger(__name__)

FLUSH_TIMEOUT_S = 30.0
SECOND_STAGE_TIMEOUT_S = 10.0
"""A second-model call unanswered this long fails (and is retried); the face service answers in well under a
second, even behind a full queue of frames, so this only catches a replica that is gone or stuck."""


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


class ServeSecondStage:
    """The second face model behind the face service's Serve handle (`SecondStageClient`); see the module docstring."""

    def __init__(self, handle: DeploymentHandle, camera_id: str, config: SecondStageConfig, timeout_s: float) -> None:
        self._handle = handle
        self._camera_id = camera_id
        self._config = config
        self._timeout_s = timeout_s
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"second-stage-{camera_id}")
        self._log = log.bind(camera_id=camera_id)

    @property
    def model(self) -> str:
        return self._config.model

    @property
    def faces_per_tracklet(self) -> int:
        return self._config.faces_per_tracklet

    def submit(self, tracklets: Sequence[Sequence[FacePatch]]) -> Future[list[np.ndarray | None]]:
        request = PatchRequest(self._camera_id, tuple(tuple(patches) for patches in tracklets))
        return self._thread.submit(self._embed, request)

    def _embed(self, request: PatchRequest) -> list[np.ndarray | None]:
        response = self._handle.embed_patches.remote(request)
        try:
            result: PatchResult = response.result(timeout_s=self._timeout_s)
        except TimeoutError:
            response.cancel()
            raise
        if result.model != self.model or len(result.embeddings) != len(request.tracklets):
            raise RuntimeError(
                f"the face service answered {len(result.embeddings)} {result.model} embeddings for"
                f" {len(request.tracklets)} tracklets; expected one {self.model} embedding each (is the face service"
                " configured with the same second_stage as the match stage?)"
            )
        for index, error in enumerate(result.errors):
            if error is not None:
                self._log.warning("second_stage_tracklet_failed", tracklet=index, error=error)
        return list(result.embeddings)


@dataclass(frozen=True)
class SecondStageLink:
    """How a camera's match stage reaches the second face model: its settings and the face service's app."""

    config: SecondStageConfig
    face_app: str
    timeout_s: float = SECOND_STAGE_TIMEOUT_S

    def client(self, camera_id: str) -> ServeSecondStage:
        """The client for one camera, built inside its forwarder (Serve handles are made where they are used)."""
        return ServeSecondStage(serve.get_app_handle(self.face_app), camera_id, self.config, self.timeout_s)


@dataclass(frozen=True)
class MatchingSinkFactory:
    """Builds one camera's `MatchingSink` inside its forwarder.

    second_stage: how to reach the second face model, None when it is off; when on, every match
    score needs it (the fusion refuses a score without it), so the factory refuses a fusion and a
    second stage that disagree, and a tracking section that keeps fewer faces than the model takes.
    """

    gallery: GalleryConfig
    database: DatabaseConfig
    watchlist_version: str
    threshold: float
    fusion: ScoreFusion
    tracking: TrackingConfig
    window: DeploymentWindow | None
    namespace: str
    second_stage: SecondStageLink | None

    def __post_init__(self) -> None:
        second = () if self.second_stage is None else (self.second_stage.config.model,)
        if tuple(self.fusion.models[1:]) != second:
            raise ValueError(
                f"the match score fuses {', '.join(self.fusion.models)} but the match stage embeds with"
                f" {', '.join(self.fusion.models[:1] + second)}: build the fusion from face_models.models"
            )
        if self.second_stage is not None and self.second_stage.config.faces_per_tracklet > self.tracking.best_faces:
            raise ValueError(
                f"face_models.second_stage.faces_per_tracklet ({self.second_stage.config.faces_per_tracklet}) must not"
                f" exceed tracking.best_faces ({self.tracking.best_faces}): a tracklet keeps only its best faces"
            )

    def __call__(self, camera_id: str) -> MatchingSink:
        gallery = Gallery.open(self.gallery, Catalogue.from_config(self.database))
        version = gallery.watchlists.version(self.watchlist_version)
        coordinator = ray.get_actor(COORDINATOR_NAME, namespace=self.namespace)
        return MatchingSink(
            camera_id,
            GalleryMatcher(gallery.watchlists, version, fusion=self.fusion, threshold=self.threshold),
            self.threshold,
            CoordinatorOutlet(coordinator, camera_id),
            self.tracking,
            self.window,
            second_stage=None if self.second_stage is None else self.second_stage.client(camera_id),
            observe_search=_search_timer(camera_id),
        )


def _search_timer(camera_id: str) -> Callable[[float], None]:
    """Observes a watchlist search's seconds in the camera's `lfr_gallery_search_seconds` (made in this process)."""
    search_seconds = histogram(GALLERY_SEARCH)
    tags = {"camera_id": camera_id}
    return lambda seconds: search_seconds.observe(seconds, tags=tags)
