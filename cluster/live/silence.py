"""`SilenceTicker`: a camera's clock keeps moving when its results stop, so nothing waits past its time.

A sink's tracker ends tracks and expires overdue decisions when results come in. A camera that
goes silent (it stopped sending, its stream dropped, or every request to the face service fails)
brings no result, so without a clock its awaiting tracklets, and the embeddings and crops of
faces that may match nobody, would stay until the next frame, however long that is. The ticker
runs beside the forwarder and, whenever no result has come for `interval_s`, hands the sink the
wall-clock time (`ResultSink.tick`): a tracklet is then gone at most `interval_s` after its
decision timeout. While results flow it does nothing, so the frames' own capture times drive
the tracker as before.
"""

import asyncio
import time
from collections.abc import Callable

import structlog

from cluster.live.sinks import ResultSink

log = structlog.get_logger(__name__)

TICK_INTERVAL_S = 1.0
"""How long without a result before the sink's clock is moved on, and how often after that."""


class SilenceTicker:
    """Ticks one camera's sink while no result comes; see the module docstring."""

    def __init__(
        self,
        sink: ResultSink[object],
        interval_s: float = TICK_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval_s > 0.0:
            raise ValueError(f"interval_s must be a positive number of seconds, got {interval_s}")
        self._sink = sink
        self.interval_s = interval_s
        self._clock = clock
        self._monotonic = monotonic
        self._last_heard = monotonic()
        self.ticks = 0

    def heard(self) -> None:
        """A result reached the sink: the camera is not silent."""
        self._last_heard = self._monotonic()

    def tick_if_silent(self) -> bool:
        """Tick the sink if nothing was heard for `interval_s`; whether it ticked. A failing tick is logged."""
        if self._monotonic() - self._last_heard < self.interval_s:
            return False
        try:
            self._sink.tick(self._clock())
        except Exception:
            log.exception("result_sink_tick_failed")
        self.ticks += 1
        return True

    async def run(self) -> None:
        """Tick while silent, until cancelled (the forwarder stops)."""
        while True:
            await asyncio.sleep(self.interval_s)
            self.tick_if_silent()
