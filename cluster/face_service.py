"""The face service's work, without Ray: typed requests and results, and a batch processor.

A request carries one camera frame (pixels as numpy, so Serve moves them through the object
store without encoding). `FaceBatchProcessor` checks every frame on its own, sends only the
good ones to the models in one batched call, and returns one result per request: a frame that
cannot be used gets an error result and never fails the frames of the other cameras.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from cluster.cameras.frames import CameraFrame
from cluster.vision.errors import InvalidImageError
from cluster.vision.face import Face
from cluster.vision.frames import validate_frame
from cluster.vision.stage_times import StageTimes

if TYPE_CHECKING:
    from cluster.vision.pipeline import FacePipeline

log = structlog.get_logger(__name__)


@dataclass(frozen=True, eq=False)
class FrameRequest:
    """One frame sent to the face service; `sent_at` (wall clock) starts its queue-wait timer."""

    frame: CameraFrame
    sent_at: float = field(default_factory=time.time)


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

    @property
    def ok(self) -> bool:
        return self.error is None


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
        for index, request in enumerate(requests):
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
                )
            )
        return results
