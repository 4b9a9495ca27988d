"""Camera on real PyAV decoding: files, HTTP MPEG-TS, and sources that fail in each way a camera can.

No Ray here: the plain class the CameraActor wraps. Frames carry their index (see
loadtest/counter_video.py), so the tests read which source frames were delivered.
"""

import os
import random
import time
from pathlib import Path

import pytest

from cluster.cameras.camera import Camera
from cluster.cameras.health import CameraHealth, CameraState
from loadtest.counter_video import read_counter, write_counter_video
from tests.camera_sources import StallableTsServer, camera_config, closed_port, silent_server
from tests.waiting import scaled

SOURCE_FPS = 25
SECONDS = 4
SOURCE_FRAMES = SOURCE_FPS * SECONDS


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """4 s of 320x240 H.264 at 25 fps, one keyframe per second."""
    return write_counter_video(tmp_path_factory.mktemp("video") / "counter.mp4", seconds=SECONDS, fps=SOURCE_FPS)


@pytest.fixture
def run_camera():
    """Start cameras and make sure each is stopped, even when the test fails."""
    cameras: list[Camera] = []

    def start(config) -> Camera:
        camera = Camera(config)
        cameras.append(camera)
        camera.start()
        return camera

    yield start
    for camera in cameras:
        camera.stop()


def wait_for(camera: Camera, predicate, timeout_s: float) -> CameraHealth:
    """Poll health until `predicate(health)`; fail with the last health after `timeout_s`, stretched by load."""
    budget_s = scaled(timeout_s)
    deadline = time.monotonic() + budget_s
    while True:
        health = camera.health()
        if predicate(health):
            return health
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {budget_s:.0f} s; last health: {health}")
        time.sleep(0.05)


def drain(camera: Camera, seconds: float) -> list:
    frames, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        frames += camera.next_frames(64, 0.05)
    return frames


def test_file_replayed_in_real_time_is_sampled_to_the_configured_fps(run_camera, video):
    camera = run_camera(camera_config(video, sample_fps=5))
    frames = drain(camera, 2.5)
    counters = [read_counter(f.pixels) for f in frames]
    assert counters[:10] == list(range(0, 50, 5)), "every 5th frame of 25 fps, from the first"
    assert [f.seq for f in frames] == list(range(len(frames)))
    arrival = [f.captured_at for f in frames]
    rate = (len(arrival) - 1) / (arrival[-1] - arrival[0])
    assert 4.25 <= rate <= 5.75, f"frames arrive at {rate:.2f}/s, like a live camera"
    assert [round(f.pts, 3) for f in frames[:3]] == [0.0, 0.2, 0.4]
    assert all(0 < f.decode_s < 1.0 for f in frames), "each frame says what decoding it cost"
    health = camera.health()
    assert health.state == CameraState.STREAMING and health.last_error is None
    assert 20 <= health.fps_in <= 30 and 4 <= health.fps_out <= 6


def test_frames_larger_than_the_cap_are_downscaled_keeping_the_aspect_ratio(run_camera, video):
    camera = run_camera(camera_config(video, max_width=160, max_height=1000, realtime=False))
    frames = camera.next_frames(3, 5.0)
    assert frames and all(f.pixels.shape == (120, 160, 3) for f in frames)
    assert read_counter(frames[0].pixels) == 0


def test_a_file_that_does_not_loop_ends_in_the_stopped_state(run_camera, video):
    camera = run_camera(camera_config(video, realtime=False, queue_size=64))
    health = wait_for(camera, lambda h: h.state == CameraState.STOPPED, 10)
    assert health.frames_decoded == SOURCE_FRAMES and health.frames_sampled == SECONDS * 5
    assert health.last_error is None and health.failures == 0
    assert [read_counter(f.pixels) for f in camera.next_frames(64, 0)] == list(range(0, SOURCE_FRAMES, 5))


def test_a_looping_file_goes_round_without_a_reconnect(run_camera, video):
    camera = run_camera(camera_config(video, loop=True, realtime=False, queue_size=1000, sample_fps=25))
    wait_for(camera, lambda h: h.frames_decoded > 2.5 * SOURCE_FRAMES, 20)
    counters = [read_counter(f.pixels) for f in camera.next_frames(1000, 0)]
    assert counters[: 2 * SOURCE_FRAMES] == list(range(SOURCE_FRAMES)) * 2
    health = camera.health()
    assert health.state == CameraState.STREAMING and health.reconnects == 0 and health.failures == 0


def test_wrong_url_backs_off_then_fails_with_the_reason(run_camera):
    port = closed_port()
    config = camera_config(
        f"rtsp://127.0.0.1:{port}/cam0", restart_budget={"max_failures": 4, "window_s": 30, "failed_retry_s": 30}
    )
    camera = run_camera(config)
    health = wait_for(camera, lambda h: h.failures >= 1, 5)
    assert health.state == CameraState.BACKING_OFF
    assert f"connection refused by rtsp://127.0.0.1:{port}/cam0" in health.last_error
    health = wait_for(camera, lambda h: h.state == CameraState.FAILED, 10)
    assert health.failures == 4 and health.frames_decoded == 0 and health.last_frame_time is None
    time.sleep(0.5)
    assert camera.health().failures == 4, "once failed, it retries only every failed_retry_s"
    started = time.monotonic()
    assert camera.stop() and time.monotonic() - started < 1.0, "stop interrupts the slow retry's wait"


def test_a_server_that_never_answers_times_out_opening_and_stop_is_bounded(run_camera):
    with silent_server() as port:
        camera = run_camera(camera_config(f"rtsp://127.0.0.1:{port}/cam0", timeouts={"open_s": 1.0, "read_s": 1.0}))
        started = time.monotonic()
        health = wait_for(camera, lambda h: h.failures >= 1, 5)
        assert 0.9 <= time.monotonic() - started <= 3.0
        assert health.last_error == f"no answer from rtsp://127.0.0.1:{port}/cam0 within 1 s (open timeout)"
        wait_for(camera, lambda h: h.state == CameraState.CONNECTING, 3)
        started = time.monotonic()
        answered = camera.health()
        assert time.monotonic() - started < 0.1, "health answers while the reader is blocked"
        assert answered.state == CameraState.CONNECTING
        assert camera.stop(), "the blocked open gives up within its timeout"
        assert time.monotonic() - started <= camera.stop_timeout_s


@pytest.mark.parametrize("damage", ["random_bytes", "truncated"])
def test_a_corrupt_file_backs_off_then_fails_with_the_reason(run_camera, video, tmp_path, damage):
    path = tmp_path / "broken.mp4"
    data = video.read_bytes()
    noise = random.Random(7).randbytes(len(data))
    path.write_bytes(noise if damage == "random_bytes" else data[: len(data) * 2 // 3])
    camera = run_camera(camera_config(path, restart_budget={"max_failures": 3, "window_s": 30, "failed_retry_s": 30}))
    health = wait_for(camera, lambda h: h.state == CameraState.FAILED, 10)
    assert health.last_error == f"cannot read {path}: not a playable video (corrupt, truncated or not a video file)"
    assert health.failures == 3 and health.frames_decoded == 0


def test_a_missing_file_says_so(run_camera, tmp_path):
    camera = run_camera(camera_config(tmp_path / "absent.mp4"))
    health = wait_for(camera, lambda h: h.failures >= 1, 5)
    assert health.last_error == f"file not found: {tmp_path / 'absent.mp4'}"


def test_corrupt_packets_mid_file_are_counted_and_skipped(run_camera, video, tmp_path):
    data = bytearray(video.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 20_000] = os.urandom(20_000)
    path = tmp_path / "damaged.mp4"
    path.write_bytes(data)
    camera = run_camera(camera_config(path, realtime=False, queue_size=64))
    health = wait_for(camera, lambda h: h.state == CameraState.STOPPED, 10)
    assert health.frames_corrupt > 0 and health.failures == 0 and health.last_error is None
    counters = [read_counter(f.pixels) for f in camera.next_frames(64, 0)]
    assert counters[0] == 0 and counters[-1] == SOURCE_FRAMES - 5, "decoding went on past the damage to the end"


@pytest.mark.slow
def test_http_mpegts_stream_that_stalls_is_detected_and_picked_up_again(run_camera, tmp_path):
    ts = write_counter_video(tmp_path / "live.ts", seconds=20, fps=SOURCE_FPS)
    with StallableTsServer(ts, bytes_per_second=ts.stat().st_size / 20) as server:
        camera = run_camera(camera_config(server.url, sample_fps=5, timeouts={"open_s": 3.0, "read_s": 1.0}))
        wait_for(camera, lambda h: h.state == CameraState.STREAMING, 5)
        assert camera.next_frames(1, 3.0), "frames flow over HTTP"
        server.stall()
        stalled_at = time.time()
        health = wait_for(camera, lambda h: h.failures >= 1, 5)
        assert "(read timeout): the stream stalled" in health.last_error
        assert health.state in (CameraState.BACKING_OFF, CameraState.CONNECTING)
        detected_after = health.last_error_time - stalled_at
        assert detected_after <= 1.0 + 1.5, f"stall detected {detected_after:.1f} s after it began"
        server.resume()
        health = wait_for(camera, lambda h: h.reconnects == 1 and h.state == CameraState.STREAMING, 10)
        assert health.last_frame_time > health.last_error_time


def test_slow_consumer_gets_the_newest_frames_and_the_drops_are_counted(run_camera, video):
    camera = run_camera(camera_config(video, loop=True, realtime=False, sample_fps=25, queue_size=4))
    delivered = []
    for _ in range(20):
        delivered += camera.next_frames(1, 1.0)
        assert camera.health().queue_length <= 4
        time.sleep(0.05)
    assert camera.stop()
    leftover = camera.next_frames(10, 0)
    health = camera.health()
    seqs = [f.seq for f in delivered]
    assert seqs == sorted(seqs) and any(b - a > 1 for a, b in zip(seqs, seqs[1:], strict=False)), "gaps show drops"
    assert health.frames_dropped > 0
    assert health.frames_sampled == len(delivered) + len(leftover) + health.frames_dropped


def test_stop_then_start_continues_the_sequence(run_camera, video):
    camera = run_camera(camera_config(video, loop=True, realtime=False, queue_size=2))
    first = camera.next_frames(1, 5.0)[0]
    assert camera.stop() and camera.health().state == CameraState.STOPPED
    camera.next_frames(10, 0)
    camera.start()
    later = camera.next_frames(1, 5.0)[0]
    assert later.seq > first.seq
    assert camera.health().state == CameraState.STREAMING
