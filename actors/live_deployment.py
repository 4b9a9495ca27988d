"""LiveDeployment: the live pipeline with matching, i.e. cameras -> faces -> tracklets -> watchlist -> alerts.

It starts the deployment's Coordinator (fusing sightings into the alert store) and a
`LivePipeline` whose forwarders run a `MatchingSink` each, bound to the deployment's frozen
watchlist version, threshold and time window; `stop()` stops the cameras (their last tracklets
are decided and delivered), then the Coordinator.
"""

from dataclasses import dataclass

import ray
from ray.actor import ActorHandle

from actors.camera_registry import NAMESPACE
from actors.coordinator import start_coordinator
from actors.live_pipeline import LivePipeline
from actors.matching_sinks import MatchingSinkFactory
from cluster.cameras.config import CameraConfig
from cluster.config import LfrConfig
from cluster.deployment import DeploymentWindow
from cluster.fusion.coordination import CoordinatorSettings
from cluster.stream_forwarding import StreamStats
from cluster.vision.pipeline import MODEL_NAME


@dataclass(frozen=True)
class MatchingPlan:
    """What a live deployment matches against, and when."""

    deployment_id: str
    watchlist_version: str
    threshold: float
    window: DeploymentWindow
    cameras: tuple[CameraConfig, ...]


@dataclass
class LiveDeployment:
    pipeline: LivePipeline
    coordinator: ActorHandle

    @classmethod
    def start(cls, plan: MatchingPlan, config: LfrConfig) -> "LiveDeployment":
        """Start the Coordinator, then the cameras with their matching forwarders (driver connected to Ray)."""
        settings = CoordinatorSettings(
            deployment_id=plan.deployment_id,
            threshold=plan.threshold,
            model=MODEL_NAME,
            cameras=plan.cameras,
            fusion=config.fusion,
            database=config.database,
            audit=config.audit,
        )
        coordinator = start_coordinator(settings, namespace=NAMESPACE)
        sinks = MatchingSinkFactory(
            gallery=config.gallery,
            watchlist_version=plan.watchlist_version,
            threshold=plan.threshold,
            tracking=config.tracking,
            window=plan.window,
            namespace=NAMESPACE,
        )
        try:
            pipeline = LivePipeline.start(list(plan.cameras), config.face_models, config.face_service, sinks)
        except BaseException:
            ray.kill(coordinator)
            raise
        return cls(pipeline, coordinator)

    def stop(self) -> list[StreamStats]:
        """Stop the cameras (last tracklets decided and delivered), the face service and the Coordinator."""
        try:
            return self.pipeline.stop()
        finally:
            ray.kill(self.coordinator)


def plan_from_config(config: LfrConfig) -> MatchingPlan:
    """The matching plan of the configured deployment (its cameras, watchlist version, threshold, window)."""
    deployment = config.deployment
    if deployment is None:
        raise ValueError("no deployment in the configuration: add a `deployment:` section to match faces")
    cameras = tuple(camera for camera in config.cameras if camera.id in deployment.cameras)
    return MatchingPlan(
        deployment_id=deployment.id,
        watchlist_version=deployment.watchlist_version,
        threshold=deployment.threshold(config.matching.similarity_threshold),
        window=deployment.window,
        cameras=cameras,
    )
