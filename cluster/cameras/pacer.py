"""Replaying a file at the speed it was recorded, so that a file behaves like a camera."""

import threading
import time

MAX_LAG_S = 1.0
"""Behind schedule by more than this (a slow machine), we re-anchor rather than burst to catch up."""

MAX_AHEAD_S = 5.0
"""A frame due further ahead than this is a timestamp jump, not a reason to sleep."""


class RealtimePacer:
    """Holds each frame back until its timestamp, measured from the first frame, is due."""

    def __init__(self) -> None:
        self._origin: tuple[float, float] | None = None

    def reset(self) -> None:
        self._origin = None

    def wait(self, pts: float, stopping: threading.Event) -> None:
        """Sleep until the frame at `pts` is due, or until `stopping` is set."""
        now = time.monotonic()
        if self._origin is None:
            self._origin = (now, pts)
            return
        origin_time, origin_pts = self._origin
        due = origin_time + (pts - origin_pts)
        if pts < origin_pts or due - now > MAX_AHEAD_S or now - due > MAX_LAG_S:
            self._origin = (now, pts)
            return
        if due > now:
            stopping.wait(due - now)
