"""Purging expired alerts on its own: a thread that calls the store's purge every interval.

Each run also purges expired cases (retrospective and social searches' candidates, `case_days`) and takes from
rejected alerts what has outlived its purpose: their crops once the
oversight period (`oversight_days`) is over, and suppression embeddings older than
`suppression_hours` (a deployment that stopped cleanly deleted its own already).

It purges once at start (a restart after downtime must not wait an interval with expired
crops still on disk), then every `interval_s`. A failed purge (the database unreachable, say)
is logged and retried at the next interval; it never stops the scheduler. So is a purge whose
deleted crops could not be erased from the database files (a reader held an old snapshot):
that raises the alarm as an error event, and the next purge erases them.
"""

import time
from collections.abc import Callable
from typing import Protocol

import structlog

from cluster.alerts.config import RetentionConfig
from cluster.alerts.counts import PurgeResult, RejectionExpiry
from cluster.cases.store import CasePurge
from cluster.periodic import Periodic

log = structlog.get_logger(__name__)


class Purger(Protocol):
    def purge(self, older_than_s: float, now: float | None = None) -> PurgeResult: ...

    def expire_rejections(
        self, oversight_s: float, suppression_s: float, now: float | None = None
    ) -> RejectionExpiry: ...


class CasePurger(Protocol):
    def purge(self, older_than_s: float, now: float | None = None) -> CasePurge: ...


class RetentionScheduler(Periodic):
    """Runs `store.purge(config.older_than_s)` (and `cases.purge(config.case_s)`) every `config.interval_s`, first at
    start, until stopped."""

    def __init__(
        self,
        store: Purger,
        config: RetentionConfig,
        *,
        cases: CasePurger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("alert-retention", self.run_once, config.interval_s, run_at_start=True)
        self._store = store
        self._cases = cases
        self._config = config
        self._clock = clock

    def run_once(self) -> PurgeResult:
        now = self._clock()
        result = self._store.purge(self._config.older_than_s, now)
        expiry = self._store.expire_rejections(self._config.oversight_s, self._config.suppression_s, now)
        cases_erased = True if self._cases is None else self._cases.purge(self._config.case_s, now).erased
        if not (result.crops_erased and expiry.erased and cases_erased):
            log.error(
                "retention_crops_not_erased",
                detail=result.erasure if not result.crops_erased else "rejected alerts' or cases' crops or embeddings",
                retry_in_s=self._config.interval_s,
                consequence="deleted face crops may still be readable from the database files",
            )
        return result
