"""Waiting for a condition in tests, with deadlines that stretch when the machine is busy.

A deadline that holds on an idle machine fails when other jobs share its cores: a process then
takes several times longer to start and a stream to settle. So tests wait for the condition they
need, never for a fixed time, and give up only after a deadline scaled by the machine's load
(how many runnable processes there are per core, over the last minute).
"""

import os
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

MAX_STRETCH = 4.0
"""A deadline grows at most this many times, so that a real hang still fails in reasonable time."""


def load_stretch() -> float:
    """How many times longer than on an idle machine things take now: 1 when idle, at most MAX_STRETCH."""
    one_minute, _, _ = os.getloadavg()
    return min(MAX_STRETCH, max(1.0, one_minute / (os.cpu_count() or 1)))


def scaled(seconds: float) -> float:
    """`seconds` on an idle machine, stretched by the current load."""
    return seconds * load_stretch()


def wait_for(condition: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.1) -> T:
    """Poll `condition` until it returns something truthy (returned), or fail after `timeout_s` scaled by load.

    `what` completes "... not within N s" in the failure message.
    """
    budget_s = scaled(timeout_s)
    deadline = time.monotonic() + budget_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {budget_s:.0f} s ({timeout_s:.0f} s stretched for the machine's load)")
        time.sleep(interval_s)
