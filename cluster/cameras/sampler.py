"""Choosing which decoded frames to keep, by timestamp rather than by count.

Counting ("keep every 5th frame") drifts when a source's rate is not what it claims or when
frames are lost; timestamps do not. Sampling instants lie on a grid of 1/fps seconds; a frame
is kept when its timestamp reaches the next instant, and the next instant moves to the first
grid point after it. A timestamp that jumps backwards (a file looping, a camera rebooting, a
reconnection) starts a new grid at that frame.
"""

import math

TIMESTAMP_TOLERANCE_S = 1e-3
"""Timestamps this close before an instant count as on it (rounding of 1/fps in time bases)."""


class FpsSampler:
    """Keeps frames at `fps` per second of stream time."""

    def __init__(self, fps: float) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.interval_s = 1.0 / fps
        self._next_instant: float | None = None

    def reset(self) -> None:
        """Forget the grid: the next frame is kept and starts a new one (call on reconnection)."""
        self._next_instant = None

    def accept(self, pts: float) -> bool:
        """Whether to keep the frame whose timestamp is `pts` seconds."""
        if not math.isfinite(pts):
            raise ValueError(f"timestamp must be a finite number of seconds, got {pts}")
        instant = self._next_instant
        if instant is None or pts < instant - self.interval_s - TIMESTAMP_TOLERANCE_S:
            self._next_instant = pts + self.interval_s
            return True
        if pts < instant - TIMESTAMP_TOLERANCE_S:
            return False
        steps = math.floor((pts + TIMESTAMP_TOLERANCE_S - instant) / self.interval_s) + 1
        self._next_instant = instant + steps * self.interval_s
        return True
