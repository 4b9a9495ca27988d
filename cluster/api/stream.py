"""The live alert stream: one poller per server follows the event log and fans it out to every client.

Clients do not each query the database. The hub reads new events every `poll_interval_s` in one
query, attaches each alert as it stands (one read per changed alert, however many clients
listen), encodes them as Server-Sent Events once, and keeps the newest `buffer_events` in
memory. A client follows from an event id: the id of the last event it saw (its
`Last-Event-ID` after a reconnect), or the `last_event_id` of the page of alerts it loaded.
From the buffer when it reaches back that far, else from the database, then live: ids only
grow and each client's cursor only moves past what it was sent, so nothing is lost or repeated.

Polling rather than a notification is what works across processes on SQLite as well as
PostgreSQL: the pipeline writes alerts in its own process, and one indexed query every 50 ms
costs next to nothing.

A stream shows an officer live alerts only while their key is accepted. Each poll, after
reading the new events and before handing them out, the hub reads which of the keys with open
streams are still accepted (one indexed query, so a revocation by `lfr serve revoke` in
another process counts too); a stream whose key is not ends before its next batch or
keepalive. A client reading from the database (behind the buffer) has its key checked the same
way after each read. Either way no event committed after the revocation reaches it. Streams
also end after `lifetime_s` whatever happens; the client reconnects from its last event id and
is authenticated again.

Purged alerts leave nothing behind here either: an event read for an alert that no longer
exists is dropped (only the `purged` event itself, which holds no evidence, goes out), and when
the hub reads a purge's events it drops the purged alerts' earlier events from its buffer.
"""

import asyncio
import bisect
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from anyio import to_thread

from cluster.alerts.errors import AlertNotFoundError
from cluster.alerts.events import MAX_EVENTS_PER_READ, AlertEventKind, AlertEventLog
from cluster.alerts.model import Alert
from cluster.alerts.store import AlertStore
from cluster.api import schemas
from cluster.api.keys import ApiKeys

log = structlog.get_logger(__name__)

POLL_INTERVAL_S = 0.05
BUFFER_EVENTS = 4096
KEEPALIVE_S = 15.0
STREAM_LIFETIME_S = 3600.0
RETRY_MS = 2000
"""How long a browser's EventSource waits before reconnecting; the page's own reader uses the same."""
SSE_EVENT = "alert"


@dataclass(frozen=True)
class StreamItem:
    """One event, encoded once as a Server-Sent Events message for every client."""

    event_id: int
    alert_id: str
    kind: AlertEventKind
    message: str


@dataclass(frozen=True)
class EventBatch:
    """Events read after some id, ready to send: `through` is the last id read, sent or dropped.

    purged: the alerts a purge among these events deleted.
    """

    items: list[StreamItem]
    through: int
    events_read: int
    purged: frozenset[str]


def encode(event: schemas.AlertEventOut) -> StreamItem:
    return StreamItem(
        event.event_id,
        event.alert_id,
        event.kind,
        f"id: {event.event_id}\nevent: {SSE_EVENT}\ndata: {event.model_dump_json()}\n\n",
    )


class AlertEventHub:
    """Polls the event log and lets any number of clients follow it from an event id, while their key lasts."""

    def __init__(
        self,
        events: AlertEventLog,
        store: AlertStore,
        keys: ApiKeys,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        buffer_events: int = BUFFER_EVENTS,
        keepalive_s: float = KEEPALIVE_S,
        lifetime_s: float = STREAM_LIFETIME_S,
    ) -> None:
        if poll_interval_s <= 0 or buffer_events < 1 or keepalive_s <= 0 or lifetime_s <= 0:
            raise ValueError("poll_interval_s, keepalive_s and lifetime_s must be above 0 and buffer_events at least 1")
        self.events = events
        self.store = store
        self.keys = keys
        self.poll_interval_s = poll_interval_s
        self.buffer_events = buffer_events
        self.keepalive_s = keepalive_s
        self.lifetime_s = lifetime_s
        self._buffer: list[StreamItem] = []
        self._floor = 0
        """Every event above this id is in the buffer, up to `head`, except those of purged alerts."""
        self.head = 0
        self._watched: Counter[str] = Counter()
        """Key ids with open streams, and how many each (the poll reads it from its thread: under the lock)."""
        self._watched_lock = threading.Lock()
        self._refused: set[str] = set()
        """Watched keys found revoked or expired: their streams end."""
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the event hub is already running")
        self.head = self._floor = await to_thread.run_sync(self.events.last_id)
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._poll_forever(), name="alert-event-hub")
        log.info("event_hub_started", head=self.head, poll_interval_s=self.poll_interval_s)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    async def follow(self, after_id: int, key_id: str) -> AsyncIterator[list[StreamItem] | None]:
        """Batches of events after `after_id`, oldest first; None now and then as a keepalive.

        Ends when the key `key_id` is no longer accepted, or after `lifetime_s`.
        """
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + self.lifetime_s
        with self._watched_lock:
            self._watched[key_id] += 1
        try:
            if key_id not in await to_thread.run_sync(self.keys.usable, [key_id]):
                self._refuse({key_id})
            cursor = after_id
            while self._accepts(key_id):
                remaining_s = ends_at - loop.time()
                if remaining_s <= 0:
                    log.info("event_stream_lifetime_over", key_id=key_id, lifetime_s=self.lifetime_s)
                    return
                changed = self._changed
                items = self._buffered_after(cursor)
                if items is None:
                    batch, usable = await to_thread.run_sync(self._read_checking, cursor, key_id)
                    if not usable:
                        self._refuse({key_id})
                        return
                    items = batch.items
                    cursor = batch.through if batch.events_read else max(cursor, self._floor)
                    if items:
                        yield items
                    continue
                if items:
                    yield items
                    cursor = items[-1].event_id
                    continue
                try:
                    await asyncio.wait_for(changed.wait(), min(self.keepalive_s, remaining_s))
                except TimeoutError:
                    if self._accepts(key_id) and loop.time() < ends_at:
                        yield None
        finally:
            with self._watched_lock:
                self._watched[key_id] -= 1
                if self._watched[key_id] <= 0:
                    del self._watched[key_id]

    def clients(self) -> int:
        """How many event streams are open now (a metric)."""
        with self._watched_lock:
            return sum(self._watched.values())

    def read(self, after_id: int) -> EventBatch:
        """Events after `after_id` from the database (at most MAX_EVENTS_PER_READ), with their alerts.

        An event of an alert that no longer exists is dropped, unless it is the purge itself.
        """
        events = self.events.after(after_id, MAX_EVENTS_PER_READ)
        alerts: dict[str, Alert | None] = {}
        for alert_id in dict.fromkeys(event.alert_id for event in events):
            try:
                alerts[alert_id] = self.store.get(alert_id)
            except AlertNotFoundError:
                alerts[alert_id] = None
        items = [
            encode(schemas.event(event, alerts[event.alert_id]))
            for event in events
            if alerts[event.alert_id] is not None or event.kind is AlertEventKind.PURGED
        ]
        return EventBatch(
            items,
            events[-1].event_id if events else after_id,
            len(events),
            frozenset(event.alert_id for event in events if event.kind is AlertEventKind.PURGED),
        )

    def _read_checking(self, after_id: int, key_id: str) -> tuple[EventBatch, bool]:
        """Read, then check the key: if it was revoked before the read, the check sees it."""
        batch = self.read(after_id)
        return batch, key_id in self.keys.usable([key_id])

    def _poll(self, head: int) -> tuple[EventBatch, set[str]]:
        """Read, then check every key with an open stream (those opened after this check check themselves)."""
        batch = self.read(head)
        with self._watched_lock:
            watched = set(self._watched)
        return batch, (watched - self.keys.usable(watched)) if watched else set()

    def _accepts(self, key_id: str) -> bool:
        return key_id not in self._refused

    def _refuse(self, key_ids: set[str]) -> None:
        """End the streams of these keys (before their next batch or keepalive)."""
        fresh = key_ids - self._refused
        if fresh:
            log.info("event_streams_ended_for_refused_keys", key_ids=sorted(fresh))
            self._refused |= fresh
            self._wake()

    def _buffered_after(self, cursor: int) -> list[StreamItem] | None:
        """Buffered events after `cursor`; None when the buffer does not reach back that far."""
        if cursor < self._floor:
            return None
        start = bisect.bisect_right(self._buffer, cursor, key=lambda item: item.event_id)
        return self._buffer[start:]

    async def _poll_forever(self) -> None:
        while True:
            events_read = 0
            try:
                batch, refused = await to_thread.run_sync(self._poll, self.head)
            except Exception:
                log.exception("event_poll_failed", head=self.head, retry_in_s=self.poll_interval_s)
            else:
                with self._watched_lock:
                    self._refused &= set(self._watched)
                self._refuse(refused)
                self._publish(batch)
                events_read = batch.events_read
            if events_read < MAX_EVENTS_PER_READ:
                await asyncio.sleep(self.poll_interval_s)

    def _publish(self, batch: EventBatch) -> None:
        if batch.purged:
            self._buffer = [
                item for item in self._buffer if item.alert_id not in batch.purged or item.kind is AlertEventKind.PURGED
            ]
        if batch.through <= self.head:
            return
        self._buffer.extend(batch.items)
        self.head = batch.through
        excess = len(self._buffer) - self.buffer_events
        if excess > 0:
            self._floor = self._buffer[excess - 1].event_id
            del self._buffer[:excess]
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
