"""`Periodic`: the timer behind retention, anchors and redelivery keeps running through failures."""

import threading

import pytest

from cluster.periodic import Periodic
from tests.waiting import scaled, wait_for


def test_a_failed_run_is_retried_at_the_next_interval_and_never_stops_the_timer():
    runs: list[int] = []

    def flaky() -> None:
        runs.append(len(runs))
        if len(runs) <= 2:
            raise OSError("database unreachable")

    with Periodic("flaky", flaky, 0.01, run_at_start=True):
        wait_for(lambda: len(runs) >= 4, scaled(10.0), "runs after two failures")


def test_run_at_start_runs_at_once_and_otherwise_waits_an_interval():
    started = threading.Event()
    with Periodic("eager", started.set, 3600.0, run_at_start=True):
        assert started.wait(scaled(10.0))
    lazy = threading.Event()
    with Periodic("lazy", lazy.set, 3600.0, run_at_start=False):
        assert not lazy.wait(0.05)


def test_stop_waits_for_the_run_in_progress():
    inside, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow() -> None:
        inside.set()
        release.wait()
        finished.set()

    timer = Periodic("slow", slow, 3600.0, run_at_start=True)
    timer.start()
    assert inside.wait(scaled(10.0))
    stopper = threading.Thread(target=timer.stop)
    stopper.start()
    assert timer.running
    release.set()
    stopper.join(scaled(10.0))
    assert finished.is_set() and not timer.running


def test_a_stop_that_outlasts_its_limit_says_so():
    release = threading.Event()
    timer = Periodic("stuck", release.wait, 3600.0, run_at_start=True)
    timer.start()
    with pytest.raises(TimeoutError, match="stuck did not stop within"):
        timer.stop(timeout_s=0.05)
    release.set()
    timer.stop()


def test_an_interval_must_be_positive():
    with pytest.raises(ValueError, match="the interval must be > 0 s"):
        Periodic("never", lambda: None, 0.0, run_at_start=False)
