"""The RTSP replay server end to end: the real GStreamer child, real files, PyAV clients over RTSP/TCP.

Three cameras on one server cover the three paths through it: an H.264 MP4 without B-frames
(passed through; x264's zerolatency tune cuts its frames into slices), an H.264 MP4 with
B-frames (passed through; decode order differs from display order) and an MS-MPEG4 AVI
(decoded and re-encoded). Two more servers re-encode the first MP4 and cap its frame rate.
The MP4 frames carry their index (loadtest/counter_video.py), so tests can see which frame
arrived when, and whether the loop skips or repeats any.
"""

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from cluster.replay import rtsp_server
from cluster.replay.rtsp_server import DEBIAN_PYTHON, RtspReplayServer, RtspServerError
from loadtest.counter_video import read_counter, write_counter_video
from tests.paths import DATA
from tests.waiting import scaled


def _gi_problem() -> str | None:
    if not DEBIAN_PYTHON.is_file():
        return f"{DEBIAN_PYTHON} is missing"
    probe = subprocess.run([str(DEBIAN_PYTHON), "-I", "-c", "import gi"], capture_output=True, text=True, timeout=30)
    return probe.stderr.strip() if probe.returncode else None


if (_problem := _gi_problem()) is not None:
    pytest.skip(
        f"{DEBIAN_PYTHON} cannot import gi ({_problem}): install loadtest/debian-packages.txt",
        allow_module_level=True,
    )

AVI_CLIP = DATA / "video" / "vtest_3s.avi"
FPS = 25
AVI_FPS = 10
CLIP_SECONDS = 3
CLIP_FRAMES = FPS * CLIP_SECONDS
WIDTH, HEIGHT = 640, 360
WATCH_SECONDS = 4.5
"""Longer than the clips, so every recording spans a loop."""
SETTLE_SECONDS = 1.0
"""PyAV probes the first frames while opening and then hands them over at once: rates start after that."""
RATE_TOLERANCE = 0.15
RESTART_TARGET_SECONDS = 3.0
CLIENT_SOCKET_TIMEOUT_S = 5.0
"""How long a client waits on the server for any one reply, on an idle machine."""
CLIENT_GIVE_UP_SECONDS = 15.0
MAX_CLIENT_SKEW_FRAMES = 6
"""Two decoding clients in one busy process drift apart by a few frames at worst (1/4 s)."""


@dataclass(frozen=True)
class Arrival:
    """One decoded frame as a client saw it."""

    counter: int | None
    arrived: float
    keyframe: bool


@dataclass(frozen=True)
class Recording:
    """What one client received from one camera."""

    arrivals: list[Arrival]
    width: int
    height: int
    profile: str

    def after(self, seconds: float) -> list[Arrival]:
        start = self.arrivals[0].arrived + seconds
        return [a for a in self.arrivals if a.arrived >= start]


def client_options() -> dict[str, str]:
    """PyAV's options for an RTSP client over TCP, its socket timeout (in microseconds) stretched by load."""
    return {"rtsp_transport": "tcp", "timeout": str(round(scaled(CLIENT_SOCKET_TIMEOUT_S) * 1e6))}


def watch(url: str, seconds: float, read_counters: bool = True) -> Recording:
    """Decode `url` for `seconds` after its first frame; PyAV's socket timeout bounds every read."""
    container = av.open(url, options=client_options())
    try:
        stream = container.streams.video[0]
        arrivals: list[Arrival] = []
        for frame in container.decode(stream):
            counter = read_counter(frame.to_ndarray(format="rgb24")) if read_counters else None
            arrivals.append(Arrival(counter, time.monotonic(), frame.key_frame))
            if arrivals[-1].arrived - arrivals[0].arrived >= seconds:
                break
        codec = stream.codec_context
        return Recording(arrivals, codec.width, codec.height, codec.profile or "")
    finally:
        container.close()


def write_bframe_counter_video(path: Path) -> Path:
    """Like write_counter_video, but High profile with B-frames, so that decode order differs from display order."""
    options = {"preset": "fast", "profile": "high", "x264-params": f"keyint={FPS}:bframes=2:scenecut=0"}
    return write_counter_video(path, seconds=CLIP_SECONDS, fps=FPS, width=WIDTH, height=HEIGHT, x264_options=options)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("rtsp_clips")
    return {
        "mp4": write_counter_video(folder / "counter.mp4", seconds=CLIP_SECONDS, fps=FPS, width=WIDTH, height=HEIGHT),
        "mp4_bframes": write_bframe_counter_video(folder / "counter_bframes.mp4"),
        "avi": AVI_CLIP,
    }


@pytest.fixture(scope="module")
def server(clips) -> Iterator[RtspReplayServer]:
    with RtspReplayServer([clips["mp4"], clips["mp4_bframes"], clips["avi"]]) as running:
        yield running


@pytest.fixture(scope="module")
def recordings(server, clips) -> dict[str, Recording]:
    """Every path through the server, recorded at once: the three cameras, re-encoded H.264, an fps cap."""
    with (
        RtspReplayServer([clips["mp4"]], reencode=True) as reencoding,
        RtspReplayServer([clips["mp4"]], fps_cap=10) as capped,
        ThreadPoolExecutor(max_workers=5) as pool,
    ):
        watches = {
            "mp4": pool.submit(watch, server.urls[0], WATCH_SECONDS),
            "mp4_bframes": pool.submit(watch, server.urls[1], WATCH_SECONDS),
            "avi": pool.submit(watch, server.urls[2], WATCH_SECONDS, read_counters=False),
            "mp4_reencoded": pool.submit(watch, reencoding.urls[0], WATCH_SECONDS),
            "mp4_capped_10fps": pool.submit(watch, capped.urls[0], WATCH_SECONDS),
        }
        return {name: future.result(timeout=WATCH_SECONDS + CLIENT_GIVE_UP_SECONDS) for name, future in watches.items()}


EXPECTED = {
    # name: (width, height, frames per second)
    "mp4": (WIDTH, HEIGHT, FPS),
    "mp4_bframes": (WIDTH, HEIGHT, FPS),
    "avi": (768, 576, AVI_FPS),
    "mp4_reencoded": (WIDTH, HEIGHT, FPS),
    "mp4_capped_10fps": (WIDTH, HEIGHT, 10),
}
COUNTED = ["mp4", "mp4_bframes", "mp4_reencoded"]


@pytest.mark.slow
def test_urls_name_each_video_in_order_on_loopback(server):
    assert server.urls == [f"rtsp://127.0.0.1:{server.port}/cam{i}" for i in range(3)]
    assert server.running


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_camera_serves_frames_pyav_decodes(recordings, name):
    width, height, _ = EXPECTED[name]
    recording = recordings[name]
    assert (recording.width, recording.height) == (width, height)
    assert len(recording.arrivals) > 10


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_camera_runs_at_real_time(recordings, name, record_property):
    steady = recordings[name].after(SETTLE_SECONDS)
    rate = (len(steady) - 1) / (steady[-1].arrived - steady[0].arrived)
    record_property(f"{name}_fps", round(rate, 2))
    expected = EXPECTED[name][2]
    assert abs(rate - expected) <= RATE_TOLERANCE * expected, f"{rate:.2f} frames/s, expected {expected}"


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_camera_keeps_delivering_past_the_end_of_its_file(recordings, name):
    arrivals = recordings[name].arrivals
    fps = EXPECTED[name][2]
    assert arrivals[-1].arrived - arrivals[0].arrived >= WATCH_SECONDS - 0.1
    assert len(arrivals) > fps * CLIP_SECONDS, "more frames than the file holds"


@pytest.mark.slow
@pytest.mark.parametrize("name", COUNTED)
def test_loop_is_seamless_no_frame_skipped_or_repeated(recordings, name):
    """Regression: rtph264pay repeating SPS/PPS before each IDR slice split two-slice keyframes in two,
    and a B-frame file's first DTS lies before its loop segment (those frames were dropped)."""
    counters = [a.counter for a in recordings[name].arrivals]
    assert all(0 <= c < CLIP_FRAMES for c in counters), f"counters outside the clip: {sorted(set(counters))[-5:]}"
    steps = [(b - a) % CLIP_FRAMES for a, b in zip(counters, counters[1:], strict=False)]
    assert set(steps) == {1}, f"steps between consecutive frames: {sorted(set(steps))}"
    assert any(b < a for a, b in zip(counters, counters[1:], strict=False)), "the recording spans a loop"


@pytest.mark.slow
def test_fps_cap_drops_frames_evenly(recordings):
    counters = [a.counter for a in recordings["mp4_capped_10fps"].arrivals]
    steps = {(b - a) % CLIP_FRAMES for a, b in zip(counters, counters[1:], strict=False)}
    assert steps <= {2, 3}, f"25 fps capped to 10 keeps every 2nd or 3rd frame: {sorted(steps)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["avi", "mp4_reencoded", "mp4"])
def test_stream_has_a_keyframe_every_second(recordings, name):
    """A client that joins or reconnects decodes a picture within a second."""
    fps = EXPECTED[name][2]
    keyframes = [i for i, a in enumerate(recordings[name].arrivals) if a.keyframe]
    gaps = [b - a for a, b in zip(keyframes, keyframes[1:], strict=False)]
    assert len(keyframes) >= 3 and max(gaps) <= fps, f"frames between keyframes: {gaps}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["avi", "mp4_reencoded"])
def test_reencoded_stream_is_h264_baseline(recordings, name):
    assert recordings[name].profile in ("Baseline", "Constrained Baseline")


@pytest.mark.slow
def test_two_clients_of_one_camera_see_the_same_frames_at_the_same_time(server):
    """One camera, not one stream per client: what the clients see at a given moment is the same frame."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(watch, [server.urls[0]] * 2, [5.0] * 2, timeout=CLIENT_GIVE_UP_SECONDS)
    start = max(first.arrivals[0].arrived, second.arrivals[0].arrived) + SETTLE_SECONDS
    compared = [a for a in first.arrivals if a.arrived >= start]
    half = CLIP_FRAMES // 2
    offsets = []
    for frame in compared:
        nearest = min(second.arrivals, key=lambda other: abs(other.arrived - frame.arrived))
        offsets.append((frame.counter - nearest.counter + half) % CLIP_FRAMES - half)
    assert len(compared) > FPS
    assert statistics.median(abs(offset) for offset in offsets) <= 1, f"frame offsets: {offsets}"
    assert max(abs(offset) for offset in offsets) <= MAX_CLIENT_SKEW_FRAMES, f"frame offsets: {offsets}"


class Reader(threading.Thread):
    """A client that decodes until its stream breaks, remembering when and how it ended."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.frames = 0
        self.ended_at: float | None = None
        self.ending = ""

    def run(self) -> None:
        try:
            with av.open(self.url, options=client_options()) as container:
                for _ in container.decode(video=0):
                    self.frames += 1
            self.ending = "end of stream"
        except (av.FFmpegError, OSError) as error:
            self.ending = f"{type(error).__name__}: {error}"
        self.ended_at = time.monotonic()


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + scaled(timeout)
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.slow
def test_kill_breaks_clients_and_restart_serves_the_same_url_quickly(clips, record_property):
    with RtspReplayServer([clips["mp4"]]) as server:
        url, pid = server.urls[0], server.pid
        reader = Reader(url)
        reader.start()
        assert wait_until(lambda: reader.frames >= 10, CLIENT_GIVE_UP_SECONDS), "the client decodes before the crash"

        killed_at = time.monotonic()
        server.kill()
        reader.join(timeout=scaled(10))
        assert not reader.is_alive(), "a client of a killed server stops within 10 s (stretched for load)"
        record_property("client_noticed_kill_s", round(reader.ended_at - killed_at, 2))
        assert not server.running and not Path(f"/proc/{pid}").exists()

        restarted_at = time.monotonic()
        server.restart()
        first_frame = watch(url, 0.0)
        seconds = first_frame.arrivals[0].arrived - restarted_at
        record_property("restart_to_first_frame_s", round(seconds, 2))
        assert server.urls[0] == url
        assert seconds <= RESTART_TARGET_SECONDS, f"first frame {seconds:.2f} s after restart()"


@pytest.mark.slow
def test_stop_leaves_no_child_process_and_is_idempotent(clips):
    server = RtspReplayServer([clips["mp4"]])
    server.start()
    pid = server.pid
    assert server.running and Path(f"/proc/{pid}").exists()
    server.stop()
    assert not server.running and server.pid is None
    assert not Path(f"/proc/{pid}").exists(), "the child is gone and reaped"
    server.stop()
    server.kill()


@pytest.mark.slow
def test_start_twice_is_refused(clips):
    with RtspReplayServer([clips["mp4"]]) as server, pytest.raises(RtspServerError, match="already runs"):
        server.start()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"videos": []}, "at least one video"),
        ({"videos": [Path("/nonexistent/cam.mp4")]}, "video files not found: /nonexistent/cam.mp4"),
        ({"host": "0.0.0.0"}, "not on loopback"),
        ({"host": "192.168.1.10"}, "not on loopback"),
        ({"host": "::1"}, "not on loopback"),
        ({"host": "camera.example"}, "IPv4 loopback address"),
        ({"port": 70000}, "port must be in 1..65535"),
        ({"startup_timeout": 0}, "startup_timeout must be positive"),
        ({"fps_cap": 0}, "fps_cap must be positive"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(arguments, message):
    with pytest.raises(ValueError, match=message):
        RtspReplayServer(**{"videos": [AVI_CLIP], **arguments})


def test_port_is_unknown_before_the_first_start():
    with pytest.raises(RtspServerError, match="call start"):
        _ = RtspReplayServer([AVI_CLIP]).urls


@pytest.mark.slow
def test_a_file_that_is_not_a_video_fails_start_with_gstreamer_s_reason(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    server = RtspReplayServer([fake])
    with pytest.raises(RtspServerError, match="cannot read video file .*notes.mp4"):
        server.start()
    assert not server.running


@pytest.mark.slow
def test_a_python_without_gi_names_the_debian_packages(monkeypatch):
    """Our venv's interpreter has no gi: the child fails as it would on a machine without the packages."""
    monkeypatch.setattr(rtsp_server, "DEBIAN_PYTHON", Path(sys.executable))
    with pytest.raises(RtspServerError, match="debian-packages.txt: apt-get install .*python3-gi"):
        RtspReplayServer([AVI_CLIP]).start()


def test_the_packages_named_in_the_hint_are_the_ones_ci_installs():
    """The installed server names its Debian packages itself; CI's list must hold every one of them."""
    listed = (Path(__file__).resolve().parent.parent / "loadtest" / "debian-packages.txt").read_text().split()
    assert set(rtsp_server.GSTREAMER_PACKAGES) <= set(listed)


def test_a_missing_debian_python_names_the_debian_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(rtsp_server, "DEBIAN_PYTHON", tmp_path / "python3")
    with pytest.raises(RtspServerError, match="python3 not found.*gir1.2-gst-rtsp-server-1.0"):
        RtspReplayServer([AVI_CLIP]).start()


@pytest.mark.slow
def test_a_busy_port_fails_start_with_the_reason():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = RtspReplayServer([AVI_CLIP], port=busy.getsockname()[1])
        with pytest.raises(RtspServerError, match="port in use"):
            server.start()


@pytest.mark.slow
def test_command_line_serves_until_interrupted(clips):
    command = [sys.executable, "-m", "cluster.replay.rtsp_server", str(clips["mp4"]), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("rtsp://127.0.0.1:"), line or process.stderr.read()
        url = line.split()[0]
        assert len(watch(url, 0.0).arrivals) == 1
        serving = process.stdout.readline()
        assert serving == "serving; Ctrl-C stops\n", "Ctrl-C is only handled once the server says it is serving"
        process.send_signal(signal.SIGINT)
        # The server's own stop: SIGTERM to its GStreamer child, SIGKILL after a grace; give it all of that.
        stop_bound = rtsp_server.STOP_GRACE_SECONDS + rtsp_server.KILL_WAIT_SECONDS
        assert process.wait(timeout=scaled(stop_bound + 10)) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        process.stdout.close()
        process.stderr.close()
