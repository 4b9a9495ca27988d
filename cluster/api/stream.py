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
"""

import asyncio
import bisect
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from anyio import to_thread

from cluster.alerts.errors import AlertNotFoundError
from cluster.alerts.events import MAX_EVENTS_PER_READ, AlertEventLog
from cluster.alerts.model import Alert
from cluster.alerts.store import AlertStore
from cluster.api import schemas

log = structlog.get_logger(__name__)

POLL_INTERVAL_S = 0.05
BUFFER_EVENTS = 4096
KEEPALIVE_S = 15.0
RETRY_MS = 2000
"""How long a browser's EventSource waits before reconnecting; the page's own reader uses the same."""
SSE_EVENT = "alert"


@dataclass(frozen=True)
class StreamItem:
    """One event, encoded once as a Server-Sent Events message for every client."""

    event_id: int
    message: str


def encode(event: schemas.AlertEventOut) -> StreamItem:
    return StreamItem(event.event_id, f"id: {event.event_id}\nevent: {SSE_EVENT}\ndata: {event.model_dump_json()}\n\n")


class AlertEventHub:
    """Polls the event log and lets any number of clients follow it from an event id."""

    def __init__(
        self,
        events: AlertEventLog,
        store: AlertStore,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        buffer_events: int = BUFFER_EVENTS,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        if poll_interval_s <= 0 or buffer_events < 1 or keepalive_s <= 0:
            raise ValueError("poll_interval_s and keepalive_s must be above 0 and buffer_events at least 1")
        self.events = events
        self.store = store
        self.poll_interval_s = poll_interval_s
        self.buffer_events = buffer_events
        self.keepalive_s = keepalive_s
        self._buffer: list[StreamItem] = []
        self._floor = 0
        """Every event above this id is in the buffer, up to `head`."""
        self.head = 0
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

    async def follow(self, after_id: int) -> AsyncIterator[list[StreamItem] | None]:
        """Batches of events after `after_id`, oldest first, forever; None now and then as a keepalive."""
        cursor = after_id
        while True:
            changed = self._changed
            items = self._buffered_after(cursor)
            if items is None:
                items = await to_thread.run_sync(self.read, cursor)
            if items:
                yield items
                cursor = items[-1].event_id
                continue
            try:
                await asyncio.wait_for(changed.wait(), self.keepalive_s)
            except TimeoutError:
                yield None

    def read(self, after_id: int) -> list[StreamItem]:
        """Events after `after_id` from the database (at most MAX_EVENTS_PER_READ), with their alerts."""
        events = self.events.after(after_id, MAX_EVENTS_PER_READ)
        alerts: dict[str, Alert | None] = {}
        for alert_id in dict.fromkeys(event.alert_id for event in events):
            try:
                alerts[alert_id] = self.store.get(alert_id)
            except AlertNotFoundError:
                alerts[alert_id] = None
        return [encode(schemas.event(event, alerts[event.alert_id])) for event in events]

    def _buffered_after(self, cursor: int) -> list[StreamItem] | None:
        """Buffered events after `cursor`; None when the buffer does not reach back that far."""
        if cursor < self._floor:
            return None
        start = bisect.bisect_right(self._buffer, cursor, key=lambda item: item.event_id)
        return self._buffer[start:]

    async def _poll_forever(self) -> None:
        while True:
            try:
                items = await to_thread.run_sync(self.read, self.head)
            except Exception:
                log.exception("event_poll_failed", head=self.head, retry_in_s=self.poll_interval_s)
                items = []
            if items:
                self._publish(items)
            if len(items) < MAX_EVENTS_PER_READ:
                await asyncio.sleep(self.poll_interval_s)

    def _publish(self, items: list[StreamItem]) -> None:
        self._buffer.extend(items)
        self.head = items[-1].event_id
        excess = len(self._buffer) - self.buffer_events
        if excess > 0:
            self._floor = self._buffer[excess - 1].event_id
            del self._buffer[:excess]
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
