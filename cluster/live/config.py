"""Configuration of the face service (the Serve deployment) and of the live pipeline that feeds it.

`FaceServiceConfig` is the `face_service` section of `LfrConfig`.
Validators do no I/O: how many cores and GPUs there are is decided at run time (`plan_replicas`).
"""

import math
import os
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from cluster.live.placement import PlacementConfig
from cluster.section import Section


class BatchingConfig(Section):
    """How the deployment gathers frames from all cameras into one model call.

    Changing it on a running deployment (`reconfigure`) does not restart the replicas.
    """

    max_batch_size: int = Field(8, ge=1, le=256, description="Most frames per model call.")
    batch_wait_timeout_s: float = Field(
        0.05, ge=0.0, le=5.0, description="How long a partial batch waits for more frames before it runs."
    )


class AutoscalingConfig(Section):
    """Serve autoscaling of the face replicas, on requests in flight per replica."""

    min_replicas: int = Field(1, ge=0, le=1024)
    max_replicas: int = Field(1, ge=1, le=1024)
    target_ongoing_requests: float = Field(
        16.0, gt=0.0, le=10_000.0, description="Requests in flight per replica that autoscaling aims for."
    )
    upscale_delay_s: float = Field(
        30.0, ge=0.0, le=3600.0, description="How long the load must stay high before a replica is added."
    )
    downscale_delay_s: float = Field(
        600.0, ge=0.0, le=86_400.0, description="How long the load must stay low before a replica is removed."
    )

    @model_validator(mode="after")
    def _min_within_max(self) -> "AutoscalingConfig":
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})")
        return self


class ForwardingConfig(Section):
    """How each camera feeds the service: few requests in flight, the oldest frames dropped when saturated."""

    max_in_flight: int = Field(
        4,
        ge=1,
        le=256,
        description="Requests one camera may have open; all cameras together need about two batches' worth"
        " so that one batch fills while the other runs.",
    )
    waiting_frames: int = Field(
        1, ge=1, le=256, description="Frames held while all requests are in flight; beyond it the oldest drop."
    )
    max_frame_age_s: float = Field(
        2.0, gt=0.0, le=600.0, description="A frame older than this when its turn comes is dropped, not sent."
    )
    request_timeout_s: float = Field(
        10.0, gt=0.0, le=600.0, description="A request unanswered after this counts as failed."
    )
    max_frames_per_request: int = Field(
        4,
        ge=1,
        le=256,
        description="Frames of one camera sent together in one request when several are ready; each request"
        " costs the forwarder and the replica a few milliseconds. Each frame still joins the batches on its own.",
    )


class FaceServiceConfig(Section):
    """The face deployment: replicas, their resources, batching, and the live pipeline's bounds."""

    replicas: int | Literal["auto"] = Field(
        "auto", description="auto: one per GPU, else one on the CPU. Ignored when autoscaling is set."
    )
    threads_per_replica: int | Literal["auto"] = Field(
        "auto", description="torch threads (and logical CPUs) per CPU replica; auto: the cores split across replicas."
    )
    max_ongoing_requests: int = Field(64, ge=1, le=100_000, description="Requests one replica accepts at once.")
    batching: BatchingConfig = BatchingConfig()
    autoscaling: AutoscalingConfig | None = None
    forwarding: ForwardingConfig = ForwardingConfig()
    placement: PlacementConfig = PlacementConfig()
    latency_bound_s: float = Field(
        3.0, gt=0.0, le=600.0, description="Frame-to-result latency p99 the pipeline is sized to stay under."
    )
    declared: bool = Field(
        False,
        description="The platform declares the face service (the Helm chart's RayService runs"
        " actors.face_service:app_from_config): the live run waits for that application and uses it,"
        " and never deploys, updates or deletes it.",
    )
    declared_wait_s: float = Field(
        600.0, gt=0.0, le=3600.0, description="How long the live run waits for a declared face service to run."
    )
    planned_cameras: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="The most cameras this run will hold at once: the face replicas leave logical CPUs for that"
        " many, so cameras added while it runs (`lfr cameras add`, a reload, a load test's next step) can still be"
        " scheduled. None: the cameras it starts with, and a camera added beyond them may wait for a CPU.",
    )

    def cameras_to_plan_for(self, starting: int) -> int:
        """How many cameras the replicas leave logical CPUs for: `planned_cameras`, or the `starting` ones."""
        return max(starting, self.planned_cameras or 0)

    @model_validator(mode="after")
    def _batches_fit(self) -> "FaceServiceConfig":
        if isinstance(self.replicas, int) and self.replicas < 1:
            raise ValueError(f"replicas must be at least 1 or 'auto', got {self.replicas}")
        if isinstance(self.threads_per_replica, int) and not 1 <= self.threads_per_replica <= 256:
            raise ValueError(f"threads_per_replica must be within 1..256 or 'auto', got {self.threads_per_replica}")
        if self.batching.max_batch_size > self.max_ongoing_requests:
            raise ValueError(
                f"batching.max_batch_size ({self.batching.max_batch_size}) exceeds max_ongoing_requests"
                f" ({self.max_ongoing_requests}): a replica could never fill a batch; raise max_ongoing_requests"
            )
        if self.forwarding.max_frame_age_s >= self.latency_bound_s:
            raise ValueError(
                f"forwarding.max_frame_age_s ({self.forwarding.max_frame_age_s}) must be below latency_bound_s"
                f" ({self.latency_bound_s}): a frame sent at that age has no time left to be processed"
            )
        return self


MAX_AUTO_CPU_REPLICAS = 4
"""Most CPU replicas `replicas: auto` starts (each holds its own ~1 GiB of torch and models); more cores
give each replica more threads."""


@dataclass(frozen=True)
class ReplicaPlan:
    """How many face replicas run and what each one reserves."""

    num_replicas: int
    num_cpus: float
    num_gpus: float
    torch_threads: int
    device: Literal["cpu", "cuda"]


def plan_replicas(
    service: FaceServiceConfig, gpus: int, cores: int | None = None, free_cpus: float | None = None
) -> ReplicaPlan:
    """One replica per GPU (fp16 there) when GPUs exist; on CPU, torch threads x replicas never exceed the cores.

    free_cpus: the cluster's logical CPUs left once the cameras have theirs. A replica reserves
    at most its share of them, so that on a small machine the cameras can still be scheduled.
    With `replicas: auto` and `threads_per_replica: auto` a CPU gets single-threaded replicas,
    one per core the cameras leave (up to MAX_AUTO_CPU_REPLICAS, beyond which each replica gets
    more threads): cameras decode all the time, and a torch thread that has to share its core
    stalls every other thread of its parallel loop (on 2 cores with 3 cameras, one 2-thread
    replica served 19 frames/s where a 1-thread one served 30), while replicas of one thread each
    stall nobody but themselves and so use the core one replica would leave idle
    (docs/benchmarks.md, "Where a frame's time goes").

    With autoscaling, CPU replicas are sized for `max_replicas`, so that a scaled-up service
    still does not oversubscribe the cores.
    """
    cores = cores or os.cpu_count() or 1
    if gpus > 0:
        replicas = gpus if service.replicas == "auto" else service.replicas
        threads = 1 if service.threads_per_replica == "auto" else service.threads_per_replica
        return ReplicaPlan(replicas, num_cpus=float(threads), num_gpus=1.0, torch_threads=threads, device="cuda")
    model_cores = cores if free_cpus is None else max(1, min(cores, math.ceil(free_cpus)))
    if service.autoscaling is not None:
        replicas = service.autoscaling.max_replicas
    elif service.replicas != "auto":
        replicas = service.replicas
    elif service.threads_per_replica != "auto":
        replicas = 1
    else:
        replicas = min(MAX_AUTO_CPU_REPLICAS, model_cores)
    if service.threads_per_replica != "auto":
        threads = service.threads_per_replica
    else:
        threads = max(1, model_cores // replicas)
    reserved = float(threads) if free_cpus is None else max(0.1, min(float(threads), free_cpus / replicas))
    return ReplicaPlan(replicas, num_cpus=reserved, num_gpus=0.0, torch_threads=threads, device="cpu")
