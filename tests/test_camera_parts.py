"""The small parts a camera is built from: sampler, drop-oldest queue, backoff, restart budget, meters."""

import random
import threading
import time

import numpy as np
import pytest

from cluster.cameras.backoff import Backoff
from cluster.cameras.config import BackoffConfig, RestartBudget
from cluster.cameras.frame_queue import DropOldestQueue
from cluster.cameras.frames import CameraFrame, capped_size
from cluster.cameras.rate_meter import RateMeter
from cluster.cameras.restart_budget import FailureWindow
from cluster.cameras.sampler import FpsSampler
from cluster.cameras.source import redact


def kept(sampler: FpsSampler, timestamps) -> list[float]:
    return [round(t, 4) for t in timestamps if sampler.accept(t)]


def test_sampler_keeps_every_fifth_frame_of_25_fps_at_5_fps():
    assert kept(FpsSampler(5), [i / 25 for i in range(50)]) == [i / 5 for i in range(10)]


@pytest.mark.parametrize(("source_fps", "fps"), [(30, 7), (29.97, 5), (25, 10), (50, 3), (12.5, 5)])
def test_sampler_rate_follows_timestamps_not_counts(source_fps, fps):
    seconds = 20
    timestamps = [i / source_fps for i in range(int(seconds * source_fps))]
    count = len(kept(FpsSampler(fps), timestamps))
    assert abs(count - seconds * fps) <= 1


def test_sampler_passes_everything_when_the_source_is_slower():
    timestamps = [i / 4 for i in range(20)]
    assert kept(FpsSampler(10), timestamps) == timestamps


def test_sampler_restarts_its_grid_when_timestamps_jump_back():
    """A looping file or a reconnection starts its timestamps again; frames must keep coming."""
    sampler = FpsSampler(5)
    first = kept(sampler, [i / 25 for i in range(25)])
    again = kept(sampler, [i / 25 for i in range(25)])
    assert first == again == [i / 5 for i in range(5)]


def test_sampler_takes_a_forward_jump_in_its_stride():
    sampler = FpsSampler(5)
    assert kept(sampler, [0.0, 0.04, 100.0, 100.04, 100.2, 100.24]) == [0.0, 100.0, 100.2]


def test_sampler_rejects_a_nan_timestamp():
    with pytest.raises(ValueError, match="finite"):
        FpsSampler(5).accept(float("nan"))


def test_queue_drops_the_oldest_and_counts_it():
    queue: DropOldestQueue[int] = DropOldestQueue(3)
    dropped = [queue.put(i) for i in range(5)]
    assert dropped == [False, False, False, True, True]
    assert queue.dropped == 2 and len(queue) == 3
    assert queue.get_many(10, 0) == [2, 3, 4]
    assert queue.get_many(10, 0) == []


def test_queue_newest_only_drops_what_the_consumer_has_no_room_for():
    queue: DropOldestQueue[int] = DropOldestQueue(8)
    for i in range(6):
        queue.put(i)
    assert queue.get_many(2, 0, newest_only=True) == [4, 5]
    assert queue.dropped == 4 and len(queue) == 0


def test_queue_get_waits_for_the_first_item_but_no_longer_than_asked():
    queue: DropOldestQueue[int] = DropOldestQueue(3)
    started = time.monotonic()
    assert queue.get_many(5, 0.2) == []
    assert 0.18 <= time.monotonic() - started < 1.0
    threading.Timer(0.1, queue.put, args=(7,)).start()
    started = time.monotonic()
    assert queue.get_many(5, 5.0) == [7]
    assert time.monotonic() - started < 1.0


def test_queue_never_blocks_a_fast_producer_and_loses_nothing_it_did_not_count():
    queue: DropOldestQueue[int] = DropOldestQueue(4)
    received: list[int] = []
    done = threading.Event()

    def consume():
        while not done.is_set() or len(queue):
            received.extend(queue.get_many(2, 0.01))
            time.sleep(0.0005)

    consumer = threading.Thread(target=consume)
    consumer.start()
    started = time.monotonic()
    for i in range(20_000):
        queue.put(i)
    put_seconds = time.monotonic() - started
    done.set()
    consumer.join(5)
    assert put_seconds < 2.0
    assert received == sorted(received) and len(set(received)) == len(received)
    assert len(received) + queue.dropped == 20_000


def test_backoff_grows_exponentially_up_to_its_cap_with_bounded_jitter():
    config = BackoffConfig(initial_s=0.5, max_s=4.0, multiplier=2.0, jitter=0.25)
    backoff = Backoff(config, random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    for delay, base in zip(delays, [0.5, 1, 2, 4, 4, 4, 4, 4], strict=True):
        assert base * 0.75 <= delay <= base
    assert len(set(delays)) == len(delays), "jitter makes each delay different"
    backoff.reset()
    assert 0.375 <= backoff.next_delay() <= 0.5


def test_backoff_is_reproducible_with_a_seeded_rng():
    config = BackoffConfig()
    first = [Backoff(config, random.Random(7)).next_delay() for _ in range(3)]
    second = [Backoff(config, random.Random(7)).next_delay() for _ in range(3)]
    assert first == second


def test_backoff_without_jitter_is_exact():
    backoff = Backoff(BackoffConfig(initial_s=1, max_s=3, multiplier=3, jitter=0))
    assert [backoff.next_delay() for _ in range(3)] == [1, 3, 3]


def test_failure_window_is_exhausted_by_failures_close_together_only():
    window = FailureWindow(RestartBudget(max_failures=3, window_s=10))
    assert not window.record(0) and not window.record(5)
    assert not window.record(11), "the failure at 0 s has left the window"
    assert window.record(12)
    window.clear()
    assert not window.record(13)


def test_rate_meter_measures_over_its_window():
    meter = RateMeter(window_s=5, started_at=100.0)
    for i in range(100):
        meter.add(100.0 + i * 0.1)
    assert meter.rate(110.0) == pytest.approx(10, rel=0.06)
    assert meter.rate(116.0) == 0.0
    young = RateMeter(window_s=5, started_at=0.0)
    for i in range(20):
        young.add(i * 0.1)
    assert young.rate(2.0) == pytest.approx(10, rel=0.06), "before a full window, the rate is over the time so far"


@pytest.mark.parametrize(
    ("size", "caps", "expected"),
    [
        ((1920, 1080), (1920, 1080), (1920, 1080)),
        ((3840, 2160), (1920, 1080), (1920, 1080)),
        ((1920, 1080), (1280, 1080), (1280, 720)),
        ((1080, 1920), (1920, 1080), (608, 1080)),
        ((640, 480), (1920, 1080), (640, 480)),
    ],
)
def test_capped_size_keeps_the_aspect_ratio_and_never_upscales(size, caps, expected):
    assert capped_size(*size, *caps) == expected


def test_camera_frame_checks_its_pixels_and_freezes_them():
    pixels = np.zeros((4, 6, 3), np.uint8)
    frame = CameraFrame("a", 0, 0.0, time.time(), pixels)
    with pytest.raises(ValueError, match="read-only"):
        frame.pixels[0, 0, 0] = 1
    with pytest.raises(
        ValueError, match=r"expected RGB uint8 pixels of shape \(height, width, 3\), got uint8 \(4, 6\)"
    ):
        CameraFrame("a", 0, 0.0, 0.0, np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match="float32"):
        CameraFrame("a", 0, 0.0, 0.0, np.zeros((4, 6, 3), np.float32))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:s3cret@10.0.0.5:554/stream1", "rtsp://admin:***@10.0.0.5:554/stream1"),
        ("rtsp://127.0.0.1:8554/cam0", "rtsp://127.0.0.1:8554/cam0"),
        ("/data/clip.mp4", "/data/clip.mp4"),
    ],
)
def test_redact_hides_passwords(url, shown):
    assert redact(url) == shown
