"""LiveDeployment: the live pipeline with matching, i.e. cameras -> faces -> tracklets -> watchlist -> alerts.

It starts the deployment's Coordinator (fusing sightings into the alert store) and a
`LivePipeline` whose forwarders run a `MatchingSink` each, bound to the deployment's frozen
watchlist version, its calibrated threshold and the time window; `stop()` stops the cameras
(their last tracklets are decided and delivered), then the Coordinator.
"""

from dataclasses import dataclass

import ray
from ray.actor import ActorHandle

from actors.camera_registry import NAMESPACE
from actors.coordinator import start_coordinator
from actors.face_deployment import APP_NAME
from actors.live_pipeline import LivePipeline
from actors.matching_sinks import MatchingSinkFactory, SecondStageLink
from cluster.cameras.config import CameraConfig
from cluster.config import LfrConfig
from cluster.deployment import DeploymentWindow
from cluster.fusion.coordination import CoordinatorSettings
from cluster.gallery.catalogue import Catalogue
from cluster.matching.calibration import CalibratedThreshold
from cluster.matching.scoring import match_scoring
from cluster.stream_forwarding import StreamStats
from cluster.vision.pipeline import models_name


@dataclass(frozen=True)
class MatchingPlan:
    """What a live deployment matches against, and when; target_fpir is the false-alert rate it states."""

    deployment_id: str
    watchlist_version: str
    target_fpir: float
    window: DeploymentWindow
    cameras: tuple[CameraConfig, ...]


def threshold_in_force(plan: MatchingPlan, calibration: CalibratedThreshold | None) -> CalibratedThreshold:
    """The version's calibrated threshold, if it was calibrated for the rate the deployment states.

    A version frozen before calibration, or for another rate, is refused with what to do: a
    deployment never runs at a threshold nobody computed for its stated rate and list.
    """
    if calibration is None:
        raise ValueError(
            f"watchlist version {plan.watchlist_version} has no calibrated threshold (frozen before calibration);"
            f" run `lfr watchlist freeze {plan.watchlist_version.split('@')[0]} --target-fpir {plan.target_fpir:g}`"
            " and bind the deployment to the new version"
        )
    if abs(calibration.target_fpir - plan.target_fpir) > 1e-9 * max(1.0, plan.target_fpir):
        raise ValueError(
            f"deployment {plan.deployment_id} states FPIR {plan.target_fpir:g} but watchlist version"
            f" {plan.watchlist_version} was calibrated for {calibration.target_fpir:g}; freeze the watchlist with"
            f" --target-fpir {plan.target_fpir:g} and bind the deployment to that version"
        )
    return calibration


@dataclass
class LiveDeployment:
    pipeline: LivePipeline
    coordinator: ActorHandle

    @classmethod
    def start(cls, plan: MatchingPlan, config: LfrConfig) -> "LiveDeployment":
        """Start the Coordinator, then the cameras with their matching forwarders (driver connected to Ray)."""
        version = Catalogue(config.gallery.catalogue_path).version(plan.watchlist_version)
        calibration = threshold_in_force(plan, version.calibration)
        fusion = match_scoring(config.face_models.models).fusion
        settings = CoordinatorSettings(
            deployment_id=plan.deployment_id,
            threshold=calibration.threshold,
            model=models_name(config.face_models),
            cameras=plan.cameras,
            fusion=config.fusion,
            database=config.database,
            audit=config.audit,
            perfect_score=float(fusion.fuse({model: 1.0 for model in fusion.models})),
            target_fpir=calibration.target_fpir,
            expected_tpir=calibration.expected_tpir,
        )
        second = config.face_models.second_stage
        sinks = MatchingSinkFactory(
            gallery=config.gallery,
            watchlist_version=plan.watchlist_version,
            threshold=calibration.threshold,
            fusion=fusion,
            tracking=config.tracking,
            window=plan.window,
            namespace=NAMESPACE,
            second_stage=None if second is None else SecondStageLink(second, APP_NAME),
        )
        coordinator = start_coordinator(settings, namespace=NAMESPACE)
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
        target_fpir=deployment.stated_fpir(config.matching.target_fpir),
        window=deployment.window,
        cameras=cameras,
    )
