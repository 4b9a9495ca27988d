"""Events per second over a sliding window, for a camera's fps in and out."""

import math
from collections import deque

BUCKET_S = 0.25
"""Events are counted in buckets this long: the cost per event stays constant at any rate."""


class RateMeter:
    """The rate of events over the last `window_s` seconds (or since `started_at`, when that is shorter).

    Not thread-safe: its owner holds its own lock.
    """

    def __init__(self, window_s: float, started_at: float) -> None:
        if window_s < 1:
            raise ValueError(f"window_s must be >= 1 second, got {window_s}")
        self.window_s = window_s
        self._started_at = started_at
        self._buckets: deque[list[int]] = deque()

    def add(self, now: float, count: int = 1) -> None:
        key = math.floor(now / BUCKET_S)
        if self._buckets and self._buckets[-1][0] == key:
            self._buckets[-1][1] += count
        else:
            self._buckets.append([key, count])
        self._forget_before(now)

    def rate(self, now: float) -> float:
        """Events per second; 0 before any time has passed."""
        self._forget_before(now)
        span = min(self.window_s, now - self._started_at)
        if span <= 0:
            return 0.0
        return sum(count for _, count in self._buckets) / span

    def _forget_before(self, now: float) -> None:
        while self._buckets and (self._buckets[0][0] + 1) * BUCKET_S <= now - self.window_s:
            self._buckets.popleft()
