"""The face service's work, without Ray: typed requests and results, and a batch processor.

A request carries one camera frame (pixels as numpy, so Serve moves them through the object
store without encoding). `FaceBatchProcessor` checks every frame on its own, sends only the
good ones to the models in one batched call, and returns one result per request: a frame that
cannot be used gets an error result and never fails the frames of the other cameras.

The second face model's work is apart: a `PatchRequest` carries the best face patches of a
camera's tracklets that are ready to be decided, and `PatchProcessor` answers one pooled vector
per tracklet, or that tracklet's error, so that one bad patch never fails another tracklet.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import structlog

from cluster.cameras.frames import CameraFrame
from cluster.tracking.patches import FacePatch, check_patch
from cluster.tracking.tracklet import pool_embeddings
from cluster.vision.errors import InvalidImageError
from cluster.vision.face import Face
from cluster.vision.frames import validate_frame
from cluster.vision.stage_times import StageTimes

if TYPE_CHECKING:
    from cluster.vision.pipeline import FacePipeline
    from cluster.vision.second_stage import SecondStage

log = structlog.get_logger(__name__)


@dataclass(frozen=True, eq=False)
class FrameRequest:
    """One frame sent to the face service; `sent_at` (wall clock) starts its queue-wait timer.

    drop_after: wall-clock time after which the frame is not worth its models' time any more (the
    forwarder sets its capture time plus `forwarding.max_frame_age_s`): a batch that starts later
    skips it and answers it as stale, so a saturated service never spends itself on frames whose
    result would come too late, and frame-to-result latency stays bounded at overload.
    """

    frame: CameraFrame
    sent_at: float = field(default_factory=time.time)
    drop_after: float | None = None


@dataclass(frozen=True, eq=False)
class FrameGroup:
    """Frames of one camera sent to the face service in one request, oldest first.

    One request per frame cost the forwarder and the replica more Python and object-store work
    than the frame's own hand-over (docs/benchmarks.md, "Where a frame's time goes"); the frames
    of a group still join the replica's batches one by one, beside other cameras' frames.
    """

    requests: tuple[FrameRequest, ...]

    def __post_init__(self) -> None:
        if not self.requests:
            raise ValueError("a FrameGroup needs at least one frame request")

    def __len__(self) -> int:
        return len(self.requests)


@dataclass(frozen=True)
class FrameTimings:
    """Seconds one frame spent in each step of the service.

    decode_s: what the camera spent decoding and converting this frame (before `sent_at`).
    queue_s: from `sent_at` until a replica received it (routing, transfer, replica queue).
    batch_wait_s: from then until its batch started. detect_s, align_s, embed_s: what its
    batch spent in each model stage (shared by every frame of the batch). total_s: `sent_at`
    until the result was ready.
    """

    queue_s: float
    batch_wait_s: float
    detect_s: float
    align_s: float
    embed_s: float
    total_s: float
    decode_s: float = 0.0


STAGES = ("decode", "queue", "batch_wait", "detect", "align", "embed", "total")
"""The steps of `FrameTimings` in the order a frame meets them (each is the field `<stage>_s`)."""


@dataclass(frozen=True, eq=False)
class FrameResult:
    """The faces of one frame, or why there are none (`error`), with where and when it was seen."""

    camera_id: str
    seq: int
    pts: float
    captured_at: float
    faces: tuple[Face, ...]
    error: str | None
    batch_size: int
    timings: FrameTimings
    stale: bool = False
    """Skipped unprocessed: its batch started after the request's `drop_after`. A drop, not a result."""

    @property
    def ok(self) -> bool:
        return self.error is None and not self.stale


class FaceBatchProcessor:
    """Runs a batch of frame requests from any cameras through one `FacePipeline` call."""

    def __init__(self, pipeline: "FacePipeline") -> None:
        self.pipeline = pipeline

    def process(
        self, requests: Sequence[FrameRequest], received_at: Sequence[float] | None = None
    ) -> list[FrameResult]:
        """One result per request, in order. `received_at`: when the replica got each request (default: now)."""
        started = time.time()
        received = list(received_at) if received_at is not None else [started] * len(requests)
        if len(received) != len(requests):
            raise ValueError(
                f"received_at has {len(received)} times for {len(requests)} requests; give one per request"
            )
        errors: dict[int, str] = {}
        good: list[int] = []
        stale = {i for i, r in enumerate(requests) if r.drop_after is not None and started > r.drop_after}
        for index, request in enumerate(requests):
            if index in stale:
                continue
            try:
                validate_frame(request.frame.pixels)
                good.append(index)
            except InvalidImageError as exc:
                errors[index] = f"camera {request.frame.camera_id} frame {request.frame.seq}: {exc}"
                log.warning("frame_refused", camera_id=request.frame.camera_id, seq=request.frame.seq, reason=str(exc))
        faces_of: dict[int, list[Face]] = {}
        times = StageTimes(0.0, 0.0, 0.0)
        if good:
            try:
                timed = self.pipeline.process_timed([requests[i].frame.pixels for i in good])
                faces_of = dict(zip(good, timed.faces, strict=True))
                times = timed.times
            except Exception as exc:
                log.exception("batch_failed", frames=len(good))
                errors.update({i: f"face models failed on this batch: {type(exc).__name__}: {exc}" for i in good})
        finished = time.time()
        results = []
        for index, request in enumerate(requests):
            frame = request.frame
            timings = FrameTimings(
                queue_s=max(0.0, received[index] - request.sent_at),
                batch_wait_s=max(0.0, started - received[index]),
                detect_s=times.detect_s,
                align_s=times.align_s,
                embed_s=times.embed_s,
                total_s=max(0.0, finished - request.sent_at),
                decode_s=frame.decode_s,
            )
            results.append(
                FrameResult(
                    camera_id=frame.camera_id,
                    seq=frame.seq,
                    pts=frame.pts,
                    captured_at=frame.captured_at,
                    faces=tuple(faces_of.get(index, ())),
                    error=errors.get(index),
                    batch_size=len(requests),
                    timings=timings,
                    stale=index in stale,
                )
            )
        return results


@dataclass(frozen=True, eq=False)
class PatchRequest:
    """The best face patches (best first) of each of one camera's tracklets that are ready to be decided."""

    camera_id: str
    tracklets: tuple[tuple[FacePatch, ...], ...]


@dataclass(frozen=True, eq=False)
class PatchResult:
    """Per tracklet of a `PatchRequest`, in order: its pooled unit vector by `model`, or why there is none.

    embeddings[i] is None exactly when errors[i] says why. embed_s: the model's seconds for the request.
    """

    camera_id: str
    model: str
    embeddings: tuple[np.ndarray | None, ...]
    errors: tuple[str | None, ...]
    embed_s: float

    def __post_init__(self) -> None:
        if len(self.embeddings) != len(self.errors) or any(
            (vector is None) == (error is None) for vector, error in zip(self.embeddings, self.errors)
        ):
            raise ValueError("a PatchResult needs, per tracklet, exactly one of an embedding and an error")


class PatchProcessor:
    """Embeds tracklets' face patches with the second model in one call and pools each tracklet's vectors.

    A patch that cannot be used is left out of its tracklet's pool (logged); a tracklet with no
    usable patch gets an error. Should the batched call fail, each tracklet is tried alone, so a
    patch that breaks the model fails only its own tracklet.
    """

    def __init__(self, second_stage: "SecondStage") -> None:
        self.second_stage = second_stage

    def process(self, request: PatchRequest) -> PatchResult:
        started = time.perf_counter()
        errors: dict[int, str] = {}
        usable: dict[int, list[FacePatch]] = {}
        for index, patches in enumerate(request.tracklets):
            kept = []
            for patch in patches:
                try:
                    if not isinstance(patch, FacePatch):
                        raise ValueError(f"expected a FacePatch, got {type(patch).__name__}")
                    check_patch(patch)
                    validate_frame(patch.pixels)
                    kept.append(patch)
                except ValueError as exc:
                    log.warning("face_patch_refused", camera_id=request.camera_id, tracklet=index, reason=str(exc))
            if kept:
                usable[index] = kept
            else:
                errors[index] = f"camera {request.camera_id} tracklet {index}: no usable face patch of {len(patches)}"
        pooled: dict[int, np.ndarray] = {}
        if usable:
            try:
                pooled = dict(zip(usable, self._pooled(list(usable.values())), strict=True))
            except Exception:
                log.exception("patch_batch_failed", camera_id=request.camera_id, tracklets=len(usable))
                for index, kept in usable.items():
                    try:
                        pooled[index] = self._pooled([kept])[0]
                    except Exception as exc:
                        errors[index] = f"the {self.second_stage.name} model failed: {type(exc).__name__}: {exc}"
        for index in [i for i, vector in pooled.items() if not np.all(np.isfinite(vector))]:
            del pooled[index]
            errors[index] = f"the {self.second_stage.name} model gave a non-finite embedding"
        count = len(request.tracklets)
        return PatchResult(
            camera_id=request.camera_id,
            model=self.second_stage.name,
            embeddings=tuple(pooled.get(i) for i in range(count)),
            errors=tuple(errors.get(i) for i in range(count)),
            embed_s=time.perf_counter() - started,
        )

    def _pooled(self, tracklets: list[list[FacePatch]]) -> list[np.ndarray]:
        """One model call for every patch; each tracklet's vectors pooled by the patches' qualities."""
        patches = [patch for tracklet in tracklets for patch in tracklet]
        vectors = self.second_stage.embed([p.pixels for p in patches], [p.landmarks[None] for p in patches])
        pooled, offset = [], 0
        for tracklet in tracklets:
            rows = vectors[offset : offset + len(tracklet)]
            pooled.append(pool_embeddings(rows, np.array([p.quality for p in tracklet])))
            offset += len(tracklet)
        return pooled
