"""FaceService: the Serve deployment that batches frames from every camera through the face models.

A thin shell over `FaceBatchProcessor`: the models are built in the replica's `__init__` from
the config (never passed in), one `@serve.batch` method gathers frames from all cameras, and the
batch runs in a worker thread so the replica keeps answering health checks and collecting the
next batch meanwhile. That worker is one dedicated thread that also builds the models: torch's
OpenMP thread pool belongs to the thread that calls it, so calling torch from changing threads
leaves idle pools spinning against the working one (about 30% slower on 2 cores). Batch size and
wait are the deployment's `user_config`, changed by `reconfigure` without a restart. Frames
arrive as numpy inside `FrameRequest`: Serve passes Python objects through the object store, no
encoding.

`embed_patches` runs the second face model on the best face patches of tracklets that are ready
to be decided (`PatchProcessor`), on the same model thread, queued behind the frame batch in
progress. It is not batched across cameras: each camera asks about once a second, for a few
faces, so gathering would only add waiting.
"""

import asyncio
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog
from pydantic import Field
from ray import serve
from ray.serve.deployment import Application

from actors.metrics import (
    FACE_BATCH,
    FACE_ERRORS,
    FACE_FACES,
    FACE_FRAMES,
    FACE_QUEUE,
    FACE_REPLICAS,
    FACE_STAGE,
    counter,
    gauge,
    histogram,
)
from cluster.config import load_config
from cluster.live.config import BatchingConfig, FaceServiceConfig, ReplicaPlan, plan_replicas
from cluster.live.face_service import (
    STAGES,
    FaceBatchProcessor,
    FrameGroup,
    FrameRequest,
    FrameResult,
    PatchProcessor,
    PatchRequest,
    PatchResult,
)
from cluster.processes import process_memory
from cluster.section import Section
from cluster.vision.config import FaceModelsConfig
from cluster.vision.pipeline import FacePipeline

log = structlog.get_logger(__name__)

APP_NAME = "faces"
DEPLOYMENT_NAME = "FaceService"
HEALTH_CHECK_PERIOD_S = 2.0
HEALTH_CHECK_TIMEOUT_S = 10.0


class _ServiceMetrics:
    """A replica's metrics (specs in `actors.metrics`): stage seconds, batch sizes, frames, faces, errors, queue."""

    def __init__(self) -> None:
        self.stage_seconds = histogram(FACE_STAGE)
        self.batch_frames = histogram(FACE_BATCH)
        self.frames = counter(FACE_FRAMES)
        self.faces = counter(FACE_FACES)
        self.errors = counter(FACE_ERRORS)
        self.queue = gauge(FACE_QUEUE)
        self.replicas = gauge(FACE_REPLICAS)
        self.held = 0
        self.refresh()

    def refresh(self) -> None:
        """Set the gauges again: Ray exports a gauge only for a while after it was last set, so a replica
        idle or steady for longer would vanish from its node's metrics."""
        self.replicas.set(1.0)
        self.queue.set(float(self.held))

    def hold(self, change: int) -> None:
        """A frame request arrived (+1) or was answered (-1)."""
        self.held += change
        self.queue.set(float(self.held))

    def record(self, results: list[FrameResult]) -> None:
        if not results:
            return
        self.batch_frames.observe(len(results))
        for result in results:
            if result.stale:
                continue
            tags = {"camera_id": result.camera_id}
            self.frames.inc(1, tags=tags)
            if result.faces:
                self.faces.inc(len(result.faces), tags=tags)
            if not result.ok:
                self.errors.inc(1, tags=tags)
            t = result.timings
            for stage in STAGES:
                seconds = getattr(t, f"{stage}_s")
                self.stage_seconds.observe(seconds, tags={"stage": stage})


@serve.deployment(
    name=DEPLOYMENT_NAME,
    health_check_period_s=HEALTH_CHECK_PERIOD_S,
    health_check_timeout_s=HEALTH_CHECK_TIMEOUT_S,
    graceful_shutdown_timeout_s=5.0,
)
class FaceService:
    def __init__(self, models: FaceModelsConfig) -> None:
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="face-models")
        self._processor = self._model_thread.submit(lambda: FaceBatchProcessor(FacePipeline(models))).result()
        second_stage = self._processor.pipeline.second_stage
        self._patches = None if second_stage is None else PatchProcessor(second_stage)
        self._metrics = _ServiceMetrics()

    def reconfigure(self, user_config: dict) -> None:
        """Apply new batching settings (the deployment's user_config) to the running replica."""
        batching = BatchingConfig.model_validate(user_config)
        self._batched.set_max_batch_size(batching.max_batch_size)  # type: ignore[misc, attr-defined]  # see _batched
        self._batched.set_batch_wait_timeout_s(batching.batch_wait_timeout_s)  # type: ignore[misc, attr-defined]
        log.info("face_batching_set", **batching.model_dump())

    def check_health(self) -> None:
        """Serve's health check, every HEALTH_CHECK_PERIOD_S: it also keeps the replica's gauges exported."""
        self._metrics.refresh()

    def resident_bytes(self) -> int:
        """This replica's resident memory (Linux), so that a run can show it stays flat under load."""
        return process_memory().resident_bytes

    async def __call__(self, request: FrameRequest) -> FrameResult:
        """One frame's faces (see `frames`)."""
        return (await self.frames(FrameGroup((request,))))[0]

    async def frames(self, group: FrameGroup) -> list[FrameResult]:
        """The faces of each frame of one camera's group, in order: one request, but each frame joins the
        batches on its own (Serve's size-weighted batching busy-waits whenever a group does not fit)."""
        self._metrics.hold(len(group))
        try:
            received = time.time()
            batched: list[Awaitable[FrameResult]] = [self._batched(r, received) for r in group.requests]  # type: ignore[misc, call-arg]
            return list(await asyncio.gather(*batched))
        finally:
            self._metrics.hold(-len(group))

    async def embed_patches(self, request: PatchRequest) -> PatchResult:
        """One pooled second-model vector per tracklet of the request (or its error), run on the model thread."""
        if self._patches is None:
            raise RuntimeError(
                "this face service runs no second face model (face_models.second_stage is null), so it cannot embed"
                " face patches; the match stage must not ask it for them"
            )
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._model_thread, self._patches.process, request)
        self._metrics.stage_seconds.observe(result.embed_s, tags={"stage": "second_stage"})
        return result

    # Serve's stubs type @serve.batch for methods of one batched argument and leave out the setters it attaches
    # (set_max_batch_size, set_batch_wait_timeout_s); Serve batches each argument at run time.
    @serve.batch(  # type: ignore[arg-type]
        max_batch_size=BatchingConfig().max_batch_size, batch_wait_timeout_s=BatchingConfig().batch_wait_timeout_s
    )
    async def _batched(self, requests: list[FrameRequest], received_at: list[float]) -> list[FrameResult]:  # type: ignore[misc]
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._model_thread, self._processor.process, requests, received_at)
        self._metrics.record(results)
        return results


def face_app(models: FaceModelsConfig, service: FaceServiceConfig, plan: ReplicaPlan) -> Application:
    """The face deployment bound to its config and sized by `plan` (see `plan_replicas`)."""
    replica_models = models.model_copy(update={"device": plan.device, "threads": plan.torch_threads})
    actor_options = {"num_cpus": plan.num_cpus, "num_gpus": plan.num_gpus, **service.placement.replicas.ray_options()}
    options: dict = {
        "ray_actor_options": actor_options,
        "max_ongoing_requests": service.max_ongoing_requests,
        "user_config": service.batching.model_dump(),
    }
    if service.autoscaling is None:
        options["num_replicas"] = plan.num_replicas
    else:
        options["autoscaling_config"] = service.autoscaling.model_dump()
    # mypy does not apply class decorators: at run time FaceService is the Deployment that @serve.deployment made of it.
    return FaceService.options(**options).bind(replica_models)  # type: ignore[attr-defined]


class DeclaredFaceApp(Section):
    """The `args` of `app_from_config` in a declarative Serve config (the Helm chart's RayService)."""

    config: Path = Field(description="The lfr configuration file the replicas take their models and batching from.")
    gpus: int = Field(0, ge=0, le=4096, description="GPUs the face service may use in all; 0: replicas run on CPU.")
    cores: int | None = Field(None, ge=1, le=4096, description="Cores of a CPU replica's node (default: this node's).")


def app_from_config(args: dict[str, Any]) -> Application:
    """The face service built from a configuration file, for a Serve config that names it by import path.

    A RayService declares its applications instead of calling `serve.run`, so the builder gets only
    the file's path and the GPU count; the Serve config may still override replicas and resources.
    """
    declared = DeclaredFaceApp.model_validate(args)
    config = load_config(declared.config)
    plan = plan_replicas(config.face_service, gpus=declared.gpus, cores=declared.cores)
    return face_app(config.face_models, config.face_service, plan)
