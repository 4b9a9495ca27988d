"""LivePipeline: cameras -> face service -> per-camera results, started and stopped as one.

Run from a driver that is connected to Ray (`ray.init`, namespace `lfr`). It deploys the face
service on Serve (no HTTP proxy: the forwarders call it through a handle), starts the cameras
through a `CameraRegistry` and one `StreamForwarder` per camera, and tears all of it down again
in `stop()`, which also returns each camera's final figures.

The pipeline is generic in its sinks' summary type: started with the default sink, its
summaries are `SinkSummary`s; with a factory of `MatchingSink`s, `MatchingSummary`s.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar, overload

import ray
import structlog
from ray import serve
from ray.actor import ActorHandle
from ray.serve.handle import DeploymentHandle
from ray.serve.schema import ApplicationStatus
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from actors.camera_registry import REGISTRY_NAME, CameraRegistry, ReloadResult
from actors.face_service import APP_NAME, face_app
from actors.stream_forwarder import StreamForwarder
from cluster.cameras.config import CAMERA_ACTOR_CPUS, CameraConfig
from cluster.cameras.status import CameraStatus
from cluster.live.config import FaceServiceConfig, ForwardingConfig, ReplicaPlan, plan_replicas
from cluster.live.forwarding import StreamStats
from cluster.live.placement import NodePlacement
from cluster.live.sinks import ResultSink, SinkSummary, SummarySink
from cluster.vision.config import FaceModelsConfig

log = structlog.get_logger(__name__)

CALL_TIMEOUT_S = 30.0
START_TIMEOUT_S = 180.0
"""Starting actors starts worker processes that import torch and the models' code: on a loaded laptop
that takes far longer than a call, so starts (cameras, forwarders) get their own, generous limit."""
MIN_REPLICA_CPUS = 0.1
"""The least share of a logical CPU a face replica reserves (see `plan_replicas`)."""

SummaryT = TypeVar("SummaryT")


def deploy_face_service(
    models: FaceModelsConfig, service: FaceServiceConfig, camera_count: int = 0
) -> tuple[DeploymentHandle, ReplicaPlan]:
    """Start Serve if needed (no HTTP proxy) and deploy, or update in place, the face service.

    The replicas reserve no more logical CPUs than the cameras leave free, so both can be scheduled.
    """
    serve.start(proxy_location="Disabled")
    resources = ray.cluster_resources()
    free_cpus = resources.get("CPU", 0.0) - camera_count * CAMERA_ACTOR_CPUS
    if free_cpus < MIN_REPLICA_CPUS:
        raise RuntimeError(
            f"{camera_count} cameras reserve {camera_count * CAMERA_ACTOR_CPUS:g} logical CPUs and the face service"
            f" needs at least {MIN_REPLICA_CPUS:g}, but the cluster has {resources.get('CPU', 0.0):g}: some cameras"
            " would never be scheduled; run fewer cameras, add nodes, or start Ray with more logical CPUs"
            " (ray start --num-cpus N) if decoding is cheap enough"
        )
    plan = plan_replicas(service, int(resources.get("GPU", 0)), free_cpus=free_cpus)
    handle = serve.run(face_app(models, service, plan), name=APP_NAME, route_prefix=None)
    log.info("face_service_deployed", replicas=plan.num_replicas, threads=plan.torch_threads, device=plan.device)
    return handle, plan


def attach_face_service(service: FaceServiceConfig, camera_count: int = 0) -> tuple[DeploymentHandle, ReplicaPlan]:
    """The face service the platform declared (`face_service.declared`): wait until it runs, deploy nothing.

    A RayService's controller owns that application: a `serve.run` here would replace it with our
    own build until the controller put its declared one back, restarting every replica twice.
    """
    waiting = Retrying(
        stop=stop_after_delay(service.declared_wait_s),
        wait=wait_fixed(2.0),
        retry=retry_if_result(lambda status: status != ApplicationStatus.RUNNING),
    )
    try:
        waiting(_declared_app_status)
    except RetryError as error:
        raise RuntimeError(
            f"face_service.declared is set, but the Serve application {APP_NAME!r} is"
            f" {error.last_attempt.result() or 'absent'} after {service.declared_wait_s:g} s: deploy it (the chart's"
            " RayService declares it in serveConfigV2; `kubectl describe rayservice` says why it is not running),"
            " or unset face_service.declared to let the live run deploy it"
        ) from None
    resources = ray.cluster_resources()
    plan = plan_replicas(
        service,
        int(resources.get("GPU", 0)),
        free_cpus=resources.get("CPU", 0.0) - camera_count * CAMERA_ACTOR_CPUS,
    )
    plan = replace(plan, num_replicas=_running_replicas())
    log.info("face_service_attached", replicas=plan.num_replicas, device=plan.device)
    return serve.get_app_handle(APP_NAME), plan


def _declared_app_status() -> str | None:
    application = serve.status().applications.get(APP_NAME)
    return None if application is None else application.status


def _running_replicas() -> int:
    application = serve.status().applications[APP_NAME]
    return sum(
        count
        for deployment in application.deployments.values()
        for state, count in deployment.replica_states.items()
        if state == "RUNNING"
    )


@dataclass
class LivePipeline(Generic[SummaryT]):
    """The running cameras, their forwarders and the face service handle."""

    registry: ActorHandle
    service: DeploymentHandle
    plan: ReplicaPlan
    forwarders: dict[str, ActorHandle]
    forwarding: ForwardingConfig
    sink_factory: Callable[[str], ResultSink[SummaryT]]
    placement: NodePlacement = field(default_factory=NodePlacement)
    """Where the cameras' forwarders run: beside their cameras, so that frames stay on the node that decoded them."""
    sink_summaries: list[SummaryT] = field(default_factory=list)
    """Each camera's result-sink figures, in camera-id order, filled by `stop()`."""
    owns_service: bool = True
    """False when the platform declared the face service: `stop()` leaves it running."""

    @overload
    @classmethod
    def start(
        cls,
        cameras: list[CameraConfig],
        models: FaceModelsConfig,
        service: FaceServiceConfig,
        sink_factory: None = None,
        registry_name: str = REGISTRY_NAME,
    ) -> "LivePipeline[SinkSummary]": ...

    @overload
    @classmethod
    def start(
        cls,
        cameras: list[CameraConfig],
        models: FaceModelsConfig,
        service: FaceServiceConfig,
        sink_factory: Callable[[str], ResultSink[SummaryT]],
        registry_name: str = REGISTRY_NAME,
    ) -> "LivePipeline[SummaryT]": ...

    @classmethod
    def start(
        cls,
        cameras: list[CameraConfig],
        models: FaceModelsConfig,
        service: FaceServiceConfig,
        sink_factory: Callable[[str], ResultSink[Any]] | None = None,
        registry_name: str = REGISTRY_NAME,
    ) -> "LivePipeline[Any]":
        """Deploy the face service, start the cameras, each with a sink from `sink_factory` (default `SummarySink`)."""
        if not cameras:
            raise ValueError("no cameras to run: list at least one under `cameras:` in the configuration")
        if service.declared:
            handle, plan = attach_face_service(service, service.cameras_to_plan_for(len(cameras)))
        else:
            handle, plan = deploy_face_service(models, service, service.cameras_to_plan_for(len(cameras)))
        cameras_placement = service.placement.cameras
        try:
            # mypy does not apply class decorators: at run time CameraRegistry is an ActorClass.
            registry = CameraRegistry.options(name=registry_name, **cameras_placement.ray_options()).remote(  # type: ignore[attr-defined]
                CAMERA_ACTOR_CPUS, cameras_placement
            )
        except ValueError as exc:
            raise RuntimeError(
                f"a camera registry ('{registry_name}') already runs on this cluster, probably `lfr cameras run`;"
                " stop it first, the live pipeline starts its own cameras"
            ) from exc
        ray.get(registry.reload.remote(cameras), timeout=START_TIMEOUT_S)
        factory: Callable[[str], ResultSink[Any]] = SummarySink if sink_factory is None else sink_factory
        pipeline = cls(
            registry,
            handle,
            plan,
            {},
            service.forwarding,
            factory,
            cameras_placement,
            owns_service=not service.declared,
        )
        pipeline._start_forwarders([camera.id for camera in cameras])
        log.info("live_pipeline_started", cameras=len(cameras))
        return pipeline

    def _start_forwarders(self, camera_ids: list[str]) -> None:
        """One forwarder per camera, pulling from the camera's actor in the registry."""
        started: list[ActorHandle] = []
        for camera_id in camera_ids:
            actor_ref: ray.ObjectRef[ActorHandle] = self.registry.actor.remote(camera_id)
            actor = ray.get(actor_ref, timeout=CALL_TIMEOUT_S)
            forwarder = StreamForwarder.options(**self.placement.ray_options()).remote(
                camera_id, actor, self.service, self.forwarding, self.sink_factory
            )
            self.forwarders[camera_id] = forwarder
            started.append(forwarder)
        ray.get([forwarder.start.remote() for forwarder in started], timeout=START_TIMEOUT_S)

    def _stop_forwarders(self, camera_ids: list[str]) -> list[StreamStats]:
        """Stop and end the cameras' forwarders (their sinks decide what they hold); their final figures."""
        forwarders = [self.forwarders.pop(camera_id) for camera_id in camera_ids if camera_id in self.forwarders]
        final: list[StreamStats] = ray.get(
            [forwarder.stop.remote() for forwarder in forwarders], timeout=CALL_TIMEOUT_S
        )
        for forwarder in forwarders:
            ray.kill(forwarder, no_restart=True)
        return final

    def reload(self, cameras: list[CameraConfig]) -> ReloadResult:
        """Make the running cameras match `cameras`: forwarders of removed or changed cameras stop first."""
        changes_ref: ray.ObjectRef[ReloadResult] = self.registry.changes.remote(cameras)
        coming = ray.get(changes_ref, timeout=CALL_TIMEOUT_S)
        self._stop_forwarders([*coming.removed, *coming.restarted])
        result = ray.get(self.registry.reload.remote(cameras), timeout=START_TIMEOUT_S)
        self._start_forwarders([*result.added, *result.restarted])
        log.info("live_pipeline_reloaded", added=result.added, removed=result.removed, restarted=result.restarted)
        return result

    def stats(self, since: float | None = None, timeout_s: float = 15.0) -> list[StreamStats]:
        """Each camera's figures, in camera-id order; latency percentiles over results after `since` if given."""
        refs = [self.forwarders[cid].stats.remote(since) for cid in sorted(self.forwarders)]
        return ray.get(refs, timeout=timeout_s)

    def current_sink_summaries(self, timeout_s: float = 15.0) -> list[SummaryT]:
        """Each camera's result-sink figures now, in camera-id order."""
        refs = [self.forwarders[cid].sink_summary.remote() for cid in sorted(self.forwarders)]
        return ray.get(refs, timeout=timeout_s)

    def camera_health(self, timeout_s: float = 15.0) -> list:
        """Each camera's health as its registry sees it (None for a camera whose actor did not answer)."""
        statuses: list[CameraStatus] = ray.get(self.registry.list.remote(), timeout=timeout_s)
        return [status.health for status in statuses]

    def stop(self, remove_service: bool = True) -> list[StreamStats]:
        """Stop forwarding and the cameras (and the service unless told not to); the final figures per camera."""
        refs = [self.forwarders[cid].stop.remote() for cid in sorted(self.forwarders)]
        final: list[StreamStats] = ray.get(refs, timeout=CALL_TIMEOUT_S)
        self.sink_summaries = self.current_sink_summaries(CALL_TIMEOUT_S)
        for forwarder in self.forwarders.values():
            ray.kill(forwarder, no_restart=True)
        ray.get(self.registry.stop_all.remote(), timeout=CALL_TIMEOUT_S)
        ray.kill(self.registry, no_restart=True)
        if remove_service and self.owns_service:
            serve.delete(APP_NAME)
        log.info("live_pipeline_stopped", cameras=len(final))
        return final
