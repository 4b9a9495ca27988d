"""CameraActors against the real RTSP replay server (GStreamer, cluster/replay/rtsp_server.py) on 127.0.0.1.

Two server instances: the one that gets killed serves one camera; the other serves two
cameras that must not notice. The videos are 25 fps H.264 whose frames carry their index.
"""

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray

from actors.camera_actor import CameraActor
from cluster.cameras.health import CameraState
from cluster.replay.rtsp_server import RtspReplayServer
from loadtest.counter_video import read_counter, write_counter_video
from tests.camera_sources import camera_config
from tests.waiting import scaled

pytestmark = pytest.mark.slow

SOURCE_FPS = 25
SAMPLE_FPS = 5
CALL_TIMEOUT_S = 30


@dataclass(frozen=True)
class Arrival:
    seq: int
    counter: int
    captured_at: float


class Collector:
    """Pulls a camera actor's frames in a thread, as the face service will, keeping only what tests need."""

    def __init__(self, actor) -> None:
        self.actor = actor
        self.arrivals: list[Arrival] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pull, daemon=True)
        self._thread.start()

    def _pull(self) -> None:
        while not self._stop.is_set():
            frames = ray.get(self.actor.next_frames.remote(32, 0.5), timeout=CALL_TIMEOUT_S)
            self.arrivals += [Arrival(f.seq, read_counter(f.pixels), f.captured_at) for f in frames]

    def between(self, start: float, end: float) -> list[Arrival]:
        return [a for a in list(self.arrivals) if start <= a.captured_at < end]

    def wait_for_frames(self, count: int, after: float, timeout_s: float) -> list[Arrival]:
        budget_s = scaled(timeout_s)
        deadline = time.monotonic() + budget_s
        while time.monotonic() < deadline:
            fresh = [a for a in list(self.arrivals) if a.captured_at >= after]
            if len(fresh) >= count:
                return fresh
            time.sleep(0.05)
        pytest.fail(f"fewer than {count} frames within {budget_s:.0f} s")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("rtsp")
    return [write_counter_video(folder / f"cam{i}.mp4", seconds=6, fps=SOURCE_FPS) for i in range(2)]


@pytest.fixture
def cameras(ray_session):
    """Start camera actors with pulling consumers; everything is stopped after the test."""
    started: list[tuple[object, Collector]] = []

    def start(url: str, camera_id: str) -> Collector:
        config = camera_config(
            url,
            id=camera_id,
            sample_fps=SAMPLE_FPS,
            timeouts={"open_s": 3.0, "read_s": 2.0},
            backoff={"initial_s": 0.1, "max_s": 0.5, "jitter": 0.2},
            restart_budget={"max_failures": 1000, "window_s": 60, "failed_retry_s": 30},
        )
        actor = CameraActor.remote(config)
        collector = Collector(actor)
        started.append((actor, collector))
        return collector

    yield start
    for actor, collector in started:
        collector.close()
        ray.kill(actor)


def health(collector: Collector):
    return ray.get(collector.actor.health.remote(), timeout=CALL_TIMEOUT_S)


def test_live_rtsp_frames_arrive_at_the_configured_fps(cameras, videos):
    with RtspReplayServer(videos[:1]) as server:
        camera = cameras(server.urls[0], "live")
        first = camera.wait_for_frames(1, 0, timeout_s=15)[0]
        start = first.captured_at + 1.0
        time.sleep(max(0.0, start + 4.0 - time.time()) + 0.3)
        window = camera.between(start, start + 4.0)
        rate = len(window) / 4.0
        assert SAMPLE_FPS - 0.75 <= rate <= SAMPLE_FPS + 0.75, f"{rate:.2f} frames/s over 4 s"
        steps = [(b.counter - a.counter) % (6 * SOURCE_FPS) for a, b in zip(window, window[1:], strict=False)]
        regular = sum(step in (4, 5, 6) for step in steps)
        assert regular >= 0.8 * len(steps), (
            "every 5th source frame, give or take one at a timestamp boundary (the server may glitch at its"
            f" loop point): counters {[a.counter for a in window]}"
        )
        assert [a.seq for a in window] == list(range(window[0].seq, window[0].seq + len(window)))
        state = health(camera)
        assert state.state == CameraState.STREAMING and state.frames_dropped == 0
        assert SOURCE_FPS - 3 <= state.fps_in <= SOURCE_FPS + 3


def test_killed_server_backs_off_reconnects_and_the_others_keep_their_rate(cameras, videos):
    with RtspReplayServer(videos[:1]) as doomed, RtspReplayServer(videos) as steady:
        victim = cameras(doomed.urls[0], "victim")
        others = [cameras(url, f"steady_{i}") for i, url in enumerate(steady.urls)]
        for camera in (victim, *others):
            camera.wait_for_frames(5, 0, timeout_s=20)

        doomed.kill()
        killed_at = time.time()
        deadline = time.monotonic() + scaled(10)
        while (state := health(victim)).failures == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state.state in (CameraState.BACKING_OFF, CameraState.CONNECTING), state
        assert state.last_error and "rtsp://127.0.0.1:" in state.last_error, state
        last_before = max(a.captured_at for a in victim.arrivals)
        time.sleep(max(0.0, killed_at + 4.0 - time.time()))
        outage = (killed_at + 0.5, killed_at + 3.5)
        assert not victim.between(*outage), "no frames while the server is down"
        for camera in others:
            rate = len(camera.between(*outage)) / 3.0
            assert SAMPLE_FPS - 1.0 <= rate <= SAMPLE_FPS + 1.0, f"{rate:.2f} frames/s during the other's outage"
        state = health(victim)
        assert "connection refused" in state.last_error and state.reconnects == 0

        doomed.start()
        back_at = time.time()
        first_after = victim.wait_for_frames(1, after=back_at, timeout_s=10)[0]
        assert first_after.captured_at - back_at <= 3.0, "the first new frame comes within 3 s of the server's return"
        state = health(victim)
        assert state.state == CameraState.STREAMING and state.reconnects == 1
        assert state.failures >= 2, "the lost stream and at least one refused connection"
        assert first_after.captured_at - last_before >= 4.0, "the gap shows in the frame times"
        assert first_after.seq > max(a.seq for a in victim.between(0, killed_at)), "seqs go on across reconnection"
        for camera in others:
            assert health(camera).failures == 0 and health(camera).reconnects == 0
