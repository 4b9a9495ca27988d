"""`Periodic`: one action run every interval on a thread of its own, for the jobs that keep promises by themselves.

Retention purges, the audit anchor and dead-letter redelivery must run whether or not anyone
asks; each is a `Periodic`. A failed run is logged with the job's name and tried again at the
next interval: a database briefly unreachable must never stop the timer that enforces
retention. Stopping waits for a run in progress, so a purge is never cut half-way.
"""

import threading
from collections.abc import Callable
from types import TracebackType

import structlog

log = structlog.get_logger(__name__)


class Periodic:
    """Calls `action` every `interval_s` (first at start when `run_at_start`) until `stop`."""

    def __init__(self, name: str, action: Callable[[], object], interval_s: float, *, run_at_start: bool) -> None:
        if not interval_s > 0:
            raise ValueError(f"{name}: the interval must be > 0 s, got {interval_s}")
        self.name = name
        self.interval_s = interval_s
        self._action = action
        self._run_at_start = run_at_start
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already started; create a new one to restart")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        log.info("periodic_started", job=self.name, interval_s=self.interval_s)

    def stop(self, timeout_s: float = 60.0) -> None:
        """Ask the thread to stop and wait for it (a run in progress finishes first)."""
        self._stopping.set()
        if self._thread is None:
            return
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"{self.name} did not stop within {timeout_s:g} s (a run is still in progress)")
        log.info("periodic_stopped", job=self.name)

    def _run(self) -> None:
        if self._run_at_start:
            self._run_once()
        while not self._stopping.wait(self.interval_s):
            self._run_once()

    def _run_once(self) -> None:
        try:
            self._action()
        except Exception:
            log.exception("periodic_run_failed", job=self.name, retry_in_s=self.interval_s)

    def __enter__(self) -> "Periodic":
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
