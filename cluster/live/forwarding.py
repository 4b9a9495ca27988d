"""One camera's side of the live pipeline, without Ray: what to send next, and what happened.

`ForwardingWindow` holds the frames a camera produced while its requests are all in flight: at
most `waiting_frames`, dropping the oldest beyond that, and frames that grew older than
`max_frame_age_s` before their turn. Its `room` tells the forwarder how many frames to take from
the camera, so that a saturated service leaves the surplus to be dropped in the camera (never
copied out of it); those show as gaps in the frames' seq numbers and are counted too. So a
saturated service costs frames (counted), never latency. `StreamMeter` turns what came back into
the numbers of the status line and the run summary, in bounded memory.
"""

import time
from collections import deque
from dataclasses import astuple, dataclass, fields

import numpy as np

from cluster.cameras.frames import CameraFrame
from cluster.live.config import ForwardingConfig
from cluster.live.face_service import FrameResult, FrameTimings

RATE_WINDOW_S = 5.0
"""fps and faces/s are averaged over this many seconds."""

LATENCY_SAMPLES = 1024
"""Latency percentiles are over this many most recent results."""


class ForwardingWindow:
    """Frames waiting for a free request slot, and the slots in use; the caller owns the clock."""

    def __init__(self, config: ForwardingConfig) -> None:
        self.config = config
        self._waiting: deque[CameraFrame] = deque()
        self.in_flight = 0
        self.dropped_full = 0
        self.dropped_stale = 0
        self.dropped_at_camera = 0
        self._last_seq: int | None = None

    @property
    def room(self) -> int:
        """How many new frames could be sent or held now: free request slots plus free waiting places."""
        free_slots = max(0, self.config.max_in_flight - self.in_flight)
        return free_slots + self.config.waiting_frames - len(self._waiting)

    def offer(self, frame: CameraFrame) -> None:
        """Queue a new frame; when the queue is full the oldest waiting frame is dropped and counted.

        A jump in seq means the camera dropped frames this consumer never took: counted too. A seq
        that goes back (the camera actor restarted) starts counting afresh.
        """
        if self._last_seq is not None and frame.seq > self._last_seq + 1:
            self.dropped_at_camera += frame.seq - self._last_seq - 1
        self._last_seq = frame.seq
        if len(self._waiting) >= self.config.waiting_frames:
            self._waiting.popleft()
            self.dropped_full += 1
        self._waiting.append(frame)

    def next_to_send(self, now: float) -> CameraFrame | None:
        """The oldest fresh waiting frame if a request slot is free (taking the slot), else None."""
        if self.in_flight >= self.config.max_in_flight:
            return None
        while self._waiting:
            frame = self._waiting.popleft()
            if now - frame.captured_at > self.config.max_frame_age_s:
                self.dropped_stale += 1
                continue
            self.in_flight += 1
            return frame
        return None

    def next_group(self, now: float, limit: int) -> list[CameraFrame]:
        """Up to `limit` fresh waiting frames, oldest first, one request slot taken for each: one request's worth."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        group: list[CameraFrame] = []
        while len(group) < limit and (frame := self.next_to_send(now)) is not None:
            group.append(frame)
        return group

    def stale_at_service(self) -> None:
        """A frame sent in time came back unprocessed, too old when its batch started: a stale drop too."""
        self.dropped_stale += 1

    def done(self) -> None:
        """A request ended (answered or failed): its slot is free."""
        if self.in_flight == 0:
            raise RuntimeError("done() called with no request in flight; call it once per frame sent")
        self.in_flight -= 1

    @property
    def waiting(self) -> int:
        return len(self._waiting)


@dataclass(frozen=True)
class StreamStats:
    """One camera's live pipeline figures: counts since the start, rates over the last few seconds.

    latencies_s: the frame-to-result latencies the percentiles are over (after `since`, of the most
    recent LATENCY_SAMPLES), so that a load test can pool every camera's.
    """

    camera_id: str
    frames_in: int
    frames_sent: int
    results_ok: int
    results_error: int
    failed_requests: int
    results_stale: int
    """Frames sent that the service skipped as too old by their batch (also counted in dropped_stale)."""
    dropped_full: int
    dropped_stale: int
    dropped_at_camera: int
    in_flight: int
    faces: int
    fps_in: float
    fps_out: float
    faces_per_s: float
    latency_p50_s: float | None
    latency_p99_s: float | None
    max_batch_size: int
    mean_timings: FrameTimings | None
    last_failure: str | None
    latencies_s: tuple[float, ...] = ()
    overhead_p50_s: float | None = None
    """Median service time per frame beyond the model stages and the batch wait (routing, transfer, Python)."""

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.dropped_stale + self.dropped_at_camera


class StreamMeter:
    """Counts, rates and frame-to-result latencies of one camera's stream."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self.frames_in = 0
        self.frames_sent = 0
        self.results_ok = 0
        self.results_error = 0
        self.failed_requests = 0
        self.results_stale = 0
        self.faces = 0
        self.max_batch_size = 0
        self.last_failure: str | None = None
        self._arrivals: deque[float] = deque()
        self._completions: deque[tuple[float, int]] = deque()
        self._latencies: deque[tuple[float, float]] = deque(maxlen=LATENCY_SAMPLES)
        self._overheads: deque[tuple[float, float]] = deque(maxlen=LATENCY_SAMPLES)
        self._timing_sums = np.zeros(len(fields(FrameTimings)))
        self._timed = 0

    def frame_in(self, now: float) -> None:
        self.frames_in += 1
        self._arrivals.append(now)

    def frame_sent(self) -> None:
        self.frames_sent += 1

    def result(self, result: FrameResult, now: float) -> None:
        """A result came back: latency from capture to now, faces, and the service's timings.

        A stale one (skipped by the service) is only counted: it has no faces, and its latency and
        timings are not those of a processed frame."""
        if result.stale:
            self.results_stale += 1
            return
        if result.ok:
            self.results_ok += 1
        else:
            self.results_error += 1
        self.faces += len(result.faces)
        self.max_batch_size = max(self.max_batch_size, result.batch_size)
        self._completions.append((now, len(result.faces)))
        self._latencies.append((now, max(0.0, now - result.captured_at)))
        t = result.timings
        self._overheads.append((now, max(0.0, t.total_s - t.batch_wait_s - t.detect_s - t.align_s - t.embed_s)))
        self._timing_sums += astuple(t)
        self._timed += 1

    def failure(self, reason: str) -> None:
        """A request got no result (replica died, timeout): counted, never silently lost."""
        self.failed_requests += 1
        self.last_failure = reason

    def stats(self, window: ForwardingWindow, now: float | None = None, since: float | None = None) -> StreamStats:
        """The figures now; latency percentiles over results that came after `since` (wall clock) if given."""
        now = time.time() if now is None else now
        horizon = now - RATE_WINDOW_S
        while self._arrivals and self._arrivals[0] < horizon:
            self._arrivals.popleft()
        while self._completions and self._completions[0][0] < horizon:
            self._completions.popleft()
        latencies = np.array([latency for at, latency in self._latencies if since is None or at >= since])
        overheads = np.array([overhead for at, overhead in self._overheads if since is None or at >= since])
        mean = FrameTimings(*(self._timing_sums / self._timed)) if self._timed else None
        return StreamStats(
            camera_id=self.camera_id,
            frames_in=self.frames_in,
            frames_sent=self.frames_sent,
            results_ok=self.results_ok,
            results_error=self.results_error,
            failed_requests=self.failed_requests,
            results_stale=self.results_stale,
            dropped_full=window.dropped_full,
            dropped_stale=window.dropped_stale,
            dropped_at_camera=window.dropped_at_camera,
            in_flight=window.in_flight,
            faces=self.faces,
            fps_in=len(self._arrivals) / RATE_WINDOW_S,
            fps_out=len(self._completions) / RATE_WINDOW_S,
            faces_per_s=sum(faces for _, faces in self._completions) / RATE_WINDOW_S,
            latency_p50_s=float(np.percentile(latencies, 50)) if len(latencies) else None,
            latency_p99_s=float(np.percentile(latencies, 99)) if len(latencies) else None,
            max_batch_size=self.max_batch_size,
            mean_timings=mean,
            last_failure=self.last_failure,
            latencies_s=tuple(float(latency) for latency in latencies),
            overhead_p50_s=float(np.percentile(overheads, 50)) if len(overheads) else None,
        )
