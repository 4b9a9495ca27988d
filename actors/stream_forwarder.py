"""StreamForwarder: feeds one camera's frames to the face service and hands the results to a sink.

One small async actor per camera, so a slow or dead camera only ever stalls itself. It keeps at
most `max_in_flight` requests open at the service and takes from its `CameraActor` only the
newest frames it has room for, so frames the service cannot take are dropped inside the camera
without being copied out (a 1080p frame is 6 MB); a `ForwardingWindow` holds the few that wait
for a slot, drops the oldest (and the stale) and counts every drop. A frame that grows stale in
the service's queue is skipped there (`FrameRequest.drop_after`) and counted here as a stale drop.
A request that fails (a replica died, a timeout) ends at once with a counted failure and frees its
slot; the camera is never held up by it. While no result comes, a `SilenceTicker` moves the sink's clock on, so
what the sink keeps for a time (tracklets awaiting a decision) expires on time.
"""

import asyncio
import time
from collections.abc import Callable

import ray
import structlog
from ray.actor import ActorHandle
from ray.serve.handle import DeploymentHandle

from actors.metrics import CameraStreamMetrics
from cluster.cameras.frames import CameraFrame
from cluster.cameras.health import CameraHealth
from cluster.live.config import ForwardingConfig
from cluster.live.face_service import FrameGroup, FrameRequest
from cluster.live.forwarding import ForwardingWindow, StreamMeter, StreamStats
from cluster.live.matching import MatchingSummary
from cluster.live.silence import SilenceTicker
from cluster.live.sinks import ResultSink

log = structlog.get_logger(__name__)

PULL_WAIT_S = 0.2
"""How long one pull waits for a frame; also how quickly `stop()` takes effect."""
CAMERA_CALL_SLACK_S = 5.0
"""A pull unanswered this long after its wait is over means the camera actor is gone or stuck."""
CAMERA_RETRY_S = 0.5
STOP_DRAIN_S = 5.0
"""How long `stop()` lets open requests finish before it abandons them."""
STOP_STEP_S = 1.0
METRICS_EVERY_S = 2.0
"""How often the camera's health, the forwarding and the match stage's counts are reported as metrics."""


@ray.remote(num_cpus=0, max_restarts=0)
class StreamForwarder:
    def __init__(
        self,
        camera_id: str,
        camera: ActorHandle,
        service: DeploymentHandle,
        forwarding: ForwardingConfig,
        sink_factory: Callable[[str], ResultSink[object]],
    ) -> None:
        self._camera = camera
        self._service = service
        self._forwarding = forwarding
        self._window = ForwardingWindow(forwarding)
        self._meter = StreamMeter(camera_id)
        self._sink = sink_factory(camera_id)
        self._ticker = SilenceTicker(self._sink)
        self._ticker_task: asyncio.Task | None = None
        self._log = log.bind(camera_id=camera_id)
        self._requests: set[asyncio.Task] = set()
        self._slot_freed = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._metrics = CameraStreamMetrics(camera_id)
        self._metrics_task: asyncio.Task | None = None

    async def start(self) -> None:
        """Start forwarding; does nothing while it runs."""
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.create_task(self._pull_loop())
        if self._ticker_task is None or self._ticker_task.done():
            self._ticker_task = asyncio.create_task(self._ticker.run())
        if self._metrics_task is None or self._metrics_task.done():
            self._metrics_task = asyncio.create_task(self._report_metrics())

    async def stop(self) -> StreamStats:
        """Stop pulling, let open requests finish for a moment, abandon the rest (counted as failed); final figures."""
        for task in (self._loop_task, self._ticker_task, self._metrics_task):
            if task is not None:
                task.cancel()
                await asyncio.wait([task], timeout=STOP_STEP_S)
        if self._requests:
            _, left = await asyncio.wait(list(self._requests), timeout=STOP_DRAIN_S)
            for task in left:
                task.cancel()
            if left:
                await asyncio.wait(left, timeout=STOP_STEP_S)
        try:
            self._sink.close()
        except Exception:
            self._log.exception("result_sink_close_failed")
        return self._meter.stats(self._window)

    async def sink_summary(self) -> object:
        """The result sink's own figures (what it matched, counted, deleted), of the sink's summary type."""
        return self._sink.summary()

    async def stats(self, since: float | None = None) -> StreamStats:
        """Current figures; latency percentiles over results after `since` (wall clock) when given."""
        return self._meter.stats(self._window, since=since)

    async def _report_metrics(self) -> None:
        """Every METRICS_EVERY_S: the camera's health (None when it does not answer), forwarding, matching."""
        while True:
            health: CameraHealth | None
            try:
                health = await asyncio.wait_for(self._camera.health.remote(), CAMERA_CALL_SLACK_S)
            except (ray.exceptions.RayError, TimeoutError):
                health = None
            try:
                self._metrics.camera(health)
                self._metrics.forwarding(self._meter.stats(self._window))
                summary = self._sink.summary()
                if isinstance(summary, MatchingSummary):
                    self._metrics.matching(summary)
            except Exception:
                self._log.exception("metrics_report_failed")
            await asyncio.sleep(METRICS_EVERY_S)

    async def _pull_loop(self) -> None:
        while True:
            room = self._window.room
            if room == 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                frames: list[CameraFrame] = await asyncio.wait_for(
                    self._camera.next_frames.remote(room, PULL_WAIT_S, True), PULL_WAIT_S + CAMERA_CALL_SLACK_S
                )
            except (ray.exceptions.RayError, TimeoutError) as exc:
                self._log.warning("camera_pull_failed", error=type(exc).__name__, retry_s=CAMERA_RETRY_S)
                await asyncio.sleep(CAMERA_RETRY_S)
                continue
            now = time.time()
            for frame in frames:
                self._meter.frame_in(now)
                self._window.offer(frame)
                self._send_ready()

    def _send_ready(self) -> None:
        """Send every frame that has a free slot, up to `max_frames_per_request` of them per request."""
        while frames := self._window.next_group(time.time(), self._forwarding.max_frames_per_request):
            for _ in frames:
                self._meter.frame_sent()
            max_age_s = self._forwarding.max_frame_age_s
            group = FrameGroup(tuple(FrameRequest(frame, drop_after=frame.captured_at + max_age_s) for frame in frames))
            task = asyncio.create_task(self._request(group))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _request(self, group: FrameGroup) -> None:
        try:
            results = await asyncio.wait_for(self._service.frames.remote(group), self._forwarding.request_timeout_s)
        except asyncio.CancelledError:
            for _ in group.requests:
                self._meter.failure("abandoned at stop")
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no message'}"
            for _ in group.requests:
                self._meter.failure(reason)
            self._log.warning("face_request_failed", seqs=[r.frame.seq for r in group.requests], reason=reason)
        else:
            answered_at = time.time()
            self._ticker.heard()
            for request, result in zip(group.requests, results, strict=True):
                self._meter.result(result, answered_at)
                if result.stale:
                    self._window.stale_at_service()
                    continue
                self._metrics.frame_latency.observe(
                    max(0.0, answered_at - request.frame.captured_at), tags=self._metrics.tags
                )
                try:
                    self._sink.accept(result, request.frame.pixels)
                except Exception:
                    self._log.exception("result_sink_failed", seq=result.seq)
        finally:
            for _ in group.requests:
                self._window.done()
            self._slot_freed.set()
            if self._loop_task is not None and not self._loop_task.done():
                self._send_ready()
