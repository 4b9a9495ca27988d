"""Requests without an accepted credential, audited as counts: one entry per interval, client and outcome.

Each request made with an accepted credential is audited on its own before it is answered (it
may reveal personal data). A request without one reveals nothing: a refused credential (401),
a throttled client (429), or the page's own files. Writing a permanent, hash-chained entry for
each of those let any local process flood the records database: 255-277 refusals a second from
one client slowed the pipeline's alert writes from 2 ms to 45 ms (p50). So the gate only counts
them here, in memory, and a flusher writes one entry per (client, outcome, reason) for each
interval, with how many there were, when, which paths and which key ids: the audit log still
shows who knocked and how often, at a cost that does not grow with the flood.

Memory is bounded: at most MAX_GROUPS groups per interval (the rest are lumped under
OTHER_CLIENTS), MAX_PATHS paths and MAX_KEY_IDS key ids each.
"""

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from anyio import to_thread

from cluster.api.keys import ANONYMOUS
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog

log = structlog.get_logger(__name__)

MAX_GROUPS = 1000
MAX_PATHS = 20
MAX_KEY_IDS = 20
OTHER_CLIENTS = "(other clients)"
OTHER_PATHS = "(other paths)"
REFUSED = "refused"
SERVED = "served"


@dataclass(frozen=True)
class TallyKey:
    """What one entry counts: requests from `client` that ended the same way."""

    client: str
    outcome: str
    reason: str
    status: int


@dataclass
class TallyCount:
    """How many requests, over which span, to which paths, with which key ids."""

    count: int
    first_at: float
    last_at: float
    paths: dict[str, int] = field(default_factory=dict)
    key_ids: list[str] = field(default_factory=list)

    def add(self, other: "TallyCount") -> None:
        self.count += other.count
        self.first_at = min(self.first_at, other.first_at)
        self.last_at = max(self.last_at, other.last_at)
        for path, count in other.paths.items():
            self._add_path(path, count)
        for key_id in other.key_ids:
            self._add_key_id(key_id)

    def _add_path(self, path: str, count: int) -> None:
        if path not in self.paths and len(self.paths) >= MAX_PATHS:
            path = OTHER_PATHS
        self.paths[path] = self.paths.get(path, 0) + count

    def _add_key_id(self, key_id: str) -> None:
        if key_id not in self.key_ids and len(self.key_ids) < MAX_KEY_IDS:
            self.key_ids.append(key_id)


class RequestTally:
    """Counts anonymous requests in memory; `flush` writes the counts to the audit log and starts afresh."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[TallyKey, TallyCount] = {}

    def count(self, key: TallyKey, path: str, key_id: str | None = None) -> None:
        """One more request of `key`'s kind (from the event loop: no I/O, a dict update under a lock)."""
        now = self._clock()
        one = TallyCount(1, now, now, {path: 1}, [] if key_id is None else [key_id])
        with self._lock:
            if key not in self._counts and len(self._counts) >= MAX_GROUPS:
                key = TallyKey(OTHER_CLIENTS, key.outcome, key.reason, key.status)
            counted = self._counts.get(key)
            if counted is None:
                self._counts[key] = one
            else:
                counted.add(one)

    def pending(self) -> int:
        """Requests counted but not yet written to the audit log."""
        with self._lock:
            return sum(counted.count for counted in self._counts.values())

    def flush(self, audit: AuditLog) -> int:
        """Write one entry per group in one transaction; how many entries. On failure the counts are kept."""
        with self._lock:
            counts, self._counts = self._counts, {}
        if not counts:
            return 0
        try:
            with audit.database.writing() as connection:
                for key, counted in counts.items():
                    action = AuditAction.LOGIN if key.outcome == REFUSED and key.status == 401 else AuditAction.REQUEST
                    audit.append(connection, ANONYMOUS, action, key.client, _details(key, counted))
        except Exception:
            with self._lock:
                for key, counted in counts.items():
                    if key in self._counts:
                        counted.add(self._counts[key])
                    self._counts[key] = counted
            raise
        log.info("anonymous_requests_audited", entries=len(counts), requests=sum(c.count for c in counts.values()))
        return len(counts)

    async def flush_every(self, audit: AuditLog, interval_s: float) -> None:
        """Flush every `interval_s` until cancelled; a failed flush keeps its counts for the next."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await to_thread.run_sync(self.flush, audit)
            except Exception:
                log.exception("anonymous_requests_not_audited", pending=self.pending(), retry_in_s=interval_s)


def _details(key: TallyKey, counted: TallyCount) -> dict:
    return {
        "client": key.client,
        "outcome": key.outcome,
        "reason": key.reason,
        "status": key.status,
        "count": counted.count,
        "first_at": counted.first_at,
        "last_at": counted.last_at,
        "paths": dict(sorted(counted.paths.items(), key=lambda item: -item[1])),
        "key_ids": counted.key_ids,
    }
