"""Counting a camera's failures in a sliding window, to tell a flaky camera from a dead one."""

from collections import deque

from cluster.cameras.config import RestartBudget


class FailureWindow:
    """Failure times within the last `window_s`; exhausted once they reach `max_failures`."""

    def __init__(self, budget: RestartBudget) -> None:
        self.budget = budget
        self._times: deque[float] = deque()

    def record(self, now: float) -> bool:
        """Count a failure at monotonic time `now`; returns True when the budget is exhausted."""
        self._times.append(now)
        while self._times and self._times[0] <= now - self.budget.window_s:
            self._times.popleft()
        return len(self._times) >= self.budget.max_failures

    def clear(self) -> None:
        """Forget past failures (the camera streamed again)."""
        self._times.clear()
