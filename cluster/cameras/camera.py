"""A camera: one video source read in a background thread into sampled, size-capped frames.

The reader thread owns the PyAV container and the decoder; the consumer only ever touches the
drop-oldest queue, so a slow consumer costs frames, never the camera's place in its stream.
The source is opened again after an end of stream (live sources), an error or a timeout,
after an exponential, jittered backoff; too many failures within the restart budget's window
make the camera `failed`, and it then retries every `failed_retry_s` until the source returns.

`stop()` returns within `stop_timeout_s`: the reader checks its stop event between packets
and while it waits, and a blocking open or read gives up by itself after its timeout.
"""

import random
import threading
import time
from collections.abc import Iterator

import av
import numpy as np
import structlog
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from cluster.cameras.backoff import Backoff
from cluster.cameras.config import CameraConfig
from cluster.cameras.decoding import CorruptVideoError, DecodedFrame, decode_frames, rgb_pixels
from cluster.cameras.frame_queue import DropOldestQueue
from cluster.cameras.frames import CameraFrame, capped_size
from cluster.cameras.health import CameraHealth, CameraState
from cluster.cameras.pacer import RealtimePacer
from cluster.cameras.rate_meter import RateMeter
from cluster.cameras.restart_budget import FailureWindow
from cluster.cameras.sampler import FpsSampler
from cluster.cameras.source import SourceError, describe_read_error, open_source, redact

log = structlog.get_logger(__name__)

HEALTH_WINDOW_S = 5.0
"""fps_in and fps_out are averaged over this many seconds."""

STOP_GRACE_S = 1.0


class Camera:
    """Reads `config.source` in a background thread; `next_frames` hands out its sampled frames."""

    def __init__(self, config: CameraConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self._log = log.bind(camera_id=config.id)
        self._queue: DropOldestQueue[CameraFrame] = DropOldestQueue(config.queue_size)
        self._backoff = Backoff(config.backoff, rng)
        self._failure_window = FailureWindow(config.restart_budget)
        self._sampler = FpsSampler(config.sample_fps)
        self._lock = threading.Lock()
        self._lifecycle = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._state = CameraState.STOPPED
        self._since = time.time()
        self._fps_in = RateMeter(HEALTH_WINDOW_S, time.monotonic())
        self._fps_out = RateMeter(HEALTH_WINDOW_S, time.monotonic())
        self._frames_decoded = 0
        self._frames_sampled = 0
        self._frames_corrupt = 0
        self._reconnects = 0
        self._failures = 0
        self._last_error: str | None = None
        self._last_error_time: float | None = None
        self._last_frame_time: float | None = None
        self._has_streamed = False
        self._lost_stream = False
        self._failed = False

    @property
    def stop_timeout_s(self) -> float:
        """The longest `stop()` can take: the longest blocking call, plus a little."""
        return max(self.config.timeouts.open_s, self.config.timeouts.read_s) + STOP_GRACE_S

    def start(self) -> None:
        """Start reading; does nothing when the reader already runs.

        After a `stop()` whose reader was still inside a blocking call, this first waits (up to
        `stop_timeout_s`) for that reader to end, so two readers never share the camera.
        """
        with self._lifecycle:
            previous = self._thread
            if previous is not None and previous.is_alive():
                if not self._stopping.is_set():
                    return
                previous.join(self.stop_timeout_s)
            with self._lock:
                self._stopping = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stopping,), name=f"camera-{self.config.id}", daemon=True
                )
                self._set_state(CameraState.CONNECTING)
                self._thread.start()

    def stop(self, timeout_s: float | None = None) -> bool:
        """Stop reading; True when the reader ended within `timeout_s` (default `stop_timeout_s`).

        A reader still inside a blocking call after that ends by itself when the call times out;
        it has been told to stop and changes nothing any more.
        """
        with self._lifecycle:
            with self._lock:
                thread = self._thread
                self._stopping.set()
                self._set_state(CameraState.STOPPED)
            if thread is None:
                return True
            thread.join(self.stop_timeout_s if timeout_s is None else timeout_s)
            return not thread.is_alive()

    def next_frames(self, max_frames: int, timeout_s: float, newest_only: bool = False) -> list[CameraFrame]:
        """The oldest queued frames, up to `max_frames`; waits at most `timeout_s` when none is queued.

        newest_only: the newest `max_frames` frames; older ones are dropped and counted.
        """
        return self._queue.get_many(max_frames, timeout_s, newest_only)

    def health(self) -> CameraHealth:
        now = time.monotonic()
        with self._lock:
            return CameraHealth(
                camera_id=self.config.id,
                state=self._state,
                since=self._since,
                fps_in=self._fps_in.rate(now),
                fps_out=self._fps_out.rate(now),
                frames_decoded=self._frames_decoded,
                frames_sampled=self._frames_sampled,
                frames_dropped=self._queue.dropped,
                frames_corrupt=self._frames_corrupt,
                queue_length=len(self._queue),
                reconnects=self._reconnects,
                failures=self._failures,
                last_error=self._last_error,
                last_error_time=self._last_error_time,
                last_frame_time=self._last_frame_time,
            )

    def _set_state(self, state: CameraState) -> None:
        """Enter `state`; the caller holds the lock."""
        if state != self._state:
            self._state = state
            self._since = time.time()

    def _enter(self, stopping: threading.Event, state: CameraState) -> None:
        """Enter `state` unless this reader was told to stop (a stopped camera stays stopped)."""
        with self._lock:
            if not stopping.is_set():
                self._set_state(state)

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                ended = self._read_source(stopping)
            except SourceError as exc:
                self._back_off(stopping, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - whatever goes wrong, the camera retries rather than dies
                self._log.exception("camera_reader_error")
                self._back_off(stopping, f"unexpected error: {exc!r}")
                continue
            if ended:
                self._log.info("camera_source_finished", source=redact(self.config.source))
                self._enter(stopping, CameraState.STOPPED)
                return

    def _read_source(self, stopping: threading.Event) -> bool:
        """Read the source once to its end; True when that end is final (a file that does not loop)."""
        container = open_source(self.config)
        try:
            self._stream_frames(container, container.streams.video[0], stopping)
        finally:
            container.close()
        if stopping.is_set():
            return False
        if self.config.source_kind != "file":
            raise SourceError(f"{redact(self.config.source)} ended the stream (end of stream)")
        return not self.config.loop

    def _stream_frames(self, container: InputContainer, stream: VideoStream, stopping: threading.Event) -> None:
        opened_at = time.monotonic()
        pacer = RealtimePacer() if self.config.source_kind == "file" and self.config.realtime else None
        self._sampler.reset()
        first = True
        for decoded in self._decoded_frames(container, stream, stopping):
            frame, decode_s = decoded.frame, decoded.decode_s
            pts = frame.time if frame.time is not None else time.monotonic() - opened_at
            if pacer is not None:
                pacer.wait(pts, stopping)
            if stopping.is_set():
                return
            keep = self._sampler.accept(pts)
            converting = time.perf_counter()
            pixels = self._pixels(frame) if keep else None
            decode_s += time.perf_counter() - converting
            now, wall = time.monotonic(), time.time()
            with self._lock:
                if first:
                    self._stream_started()
                    first = False
                self._frames_decoded += 1
                self._fps_in.add(now)
                self._last_frame_time = wall
                seq = self._frames_sampled
                if pixels is not None:
                    self._frames_sampled += 1
                    self._fps_out.add(now)
            if pixels is not None:
                self._queue.put(CameraFrame(self.config.id, seq, pts, wall, pixels, decode_s))

    def _decoded_frames(
        self, container: InputContainer, stream: VideoStream, stopping: threading.Event
    ) -> Iterator[DecodedFrame]:
        """The shared decode loop over the stream: undecodable packets counted, failures raised as SourceError."""
        try:
            yield from decode_frames(container, stream, stopping=stopping, on_undecodable=self._count_corrupt)
        except CorruptVideoError as exc:
            raise SourceError(f"{redact(self.config.source)}: {exc} (corrupt stream)") from exc
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(describe_read_error(self.config, exc)) from exc

    def _count_corrupt(self) -> None:
        with self._lock:
            self._frames_corrupt += 1

    def _pixels(self, frame: VideoFrame) -> np.ndarray:
        width, height = capped_size(frame.width, frame.height, self.config.max_width, self.config.max_height)
        return rgb_pixels(frame, width, height)

    def _stream_started(self) -> None:
        """The first frame of a connection arrived; the caller holds the lock."""
        if self._has_streamed and self._lost_stream:
            self._reconnects += 1
        self._has_streamed = True
        self._lost_stream = False
        self._failed = False
        self._backoff.reset()
        self._failure_window.clear()
        if self._state != CameraState.STREAMING:
            self._set_state(CameraState.STREAMING)
            self._log.info("camera_streaming", source=redact(self.config.source), reconnects=self._reconnects)

    def _back_off(self, stopping: threading.Event, reason: str) -> None:
        """Record a failure and wait before the next attempt: backoff, or the slow retry once failed."""
        exhausted = self._failure_window.record(time.monotonic())
        with self._lock:
            if stopping.is_set():
                return
            self._failures += 1
            self._last_error = reason
            self._last_error_time = time.time()
            self._lost_stream = True
            self._failed = self._failed or exhausted
            if self._failed:
                delay, state = self.config.restart_budget.failed_retry_s, CameraState.FAILED
            else:
                delay, state = self._backoff.next_delay(), CameraState.BACKING_OFF
            self._set_state(state)
        self._log.warning("camera_source_failed", reason=reason, state=str(state), retry_in_s=round(delay, 2))
        stopping.wait(delay)
        with self._lock:
            if not stopping.is_set() and not self._failed:
                self._set_state(CameraState.CONNECTING)
