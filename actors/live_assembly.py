"""LiveAssembly: the running parts of a live deployment: cameras -> faces -> tracklets -> watchlist -> alerts.

It starts the deployment's Coordinator (fusing sightings into the alert store) and a
`LivePipeline` whose forwarders run a `MatchingSink` each, bound to the deployment's frozen
watchlist version, its calibrated threshold and the time window; `stop()` stops the cameras
(their last tracklets are decided and delivered), then the Coordinator.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import ray
import structlog
from ray.actor import ActorHandle

from actors.camera_registry import NAMESPACE
from actors.coordinator import start_coordinator
from actors.face_service import APP_NAME
from actors.live_pipeline import LivePipeline
from actors.matching_sinks import MatchingSinkFactory, SecondStageLink
from cluster.cameras.config import CameraConfig
from cluster.config import LfrConfig
from cluster.deployment.plan import MatchingPlan, threshold_in_force
from cluster.fusion.coordination import CoordinatorSettings
from cluster.gallery.records import WatchlistVersion
from cluster.live.forwarding import StreamStats
from cluster.matching.scoring import match_scoring
from cluster.vision.pipeline import models_name

log = structlog.get_logger(__name__)

LAST_REDELIVERY_S = 60.0
"""How long a stopping deployment lets the Coordinator offer its dead letters to the store a last time."""


@dataclass
class LiveAssembly:
    pipeline: LivePipeline
    coordinator: ActorHandle

    @classmethod
    def start(
        cls,
        plan: MatchingPlan,
        version: WatchlistVersion,
        config: LfrConfig,
        fusion_cameras: Sequence[CameraConfig] | None = None,
    ) -> "LiveAssembly":
        """Start the Coordinator, then the cameras with their matching forwarders (driver connected to Ray).

        version: the plan's watchlist version, as the driver read it from the catalogue.
        fusion_cameras: the cameras whose walking times the Coordinator fuses over (None: the plan's), so
        that cameras started later by `LivePipeline.reload` fuse like the first."""
        if version.version_id != plan.watchlist_version:
            raise ValueError(f"the plan binds {plan.watchlist_version}, but version {version.version_id} was given")
        calibration = threshold_in_force(plan, version.calibration)
        fusion = match_scoring(config.face_models.models).fusion
        settings = CoordinatorSettings(
            deployment_id=plan.deployment_id,
            threshold=calibration.threshold,
            model=models_name(config.face_models),
            cameras=plan.cameras if fusion_cameras is None else tuple(fusion_cameras),
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
            database=config.database,
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
        """Stop the cameras (last tracklets decided and delivered), the face service and the Coordinator.

        The Coordinator offers its dead letters to the store a last time; what the store still
        refuses stays in the spool, for the next start to redeliver.
        """
        try:
            return self.pipeline.stop()
        finally:
            try:
                redelivery: ray.ObjectRef[int] = self.coordinator.redeliver.remote()
                waiting = ray.get(redelivery, timeout=LAST_REDELIVERY_S)
                if waiting:
                    log.error("dead_letters_left_for_the_next_start", alerts=waiting)
            except (ray.exceptions.RayError, TimeoutError) as exc:
                log.error("dead_letters_not_redelivered", error=type(exc).__name__)
            ray.kill(self.coordinator)
