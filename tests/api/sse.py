"""A Server-Sent Events reader over requests, for tests: connect, take N events, disconnect."""

import json
import time
from dataclasses import dataclass

import requests

READ_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ReceivedEvent:
    event_id: int
    event: str
    data: dict


class EventStream:
    """One connection to /events; `take(n)` reads until n alert events have arrived or the deadline passes."""

    def __init__(self, url: str, token: str, last_event_id: int | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.response = requests.get(url + "/events", headers=headers, stream=True, timeout=READ_TIMEOUT_S)
        self.response.raise_for_status()
        self._lines = self.response.iter_lines(decode_unicode=True)
        self.retry_ms: int | None = None

    def take(self, count: int, timeout_s: float = 10.0) -> list[ReceivedEvent]:
        deadline = time.monotonic() + timeout_s
        events: list[ReceivedEvent] = []
        fields: dict[str, str] = {}
        while len(events) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {len(events)} of {count} events within {timeout_s} s: {events}")
            line = next(self._lines)
            if line == "":
                if "data" in fields:
                    events.append(ReceivedEvent(int(fields["id"]), fields.get("event", ""), json.loads(fields["data"])))
                elif "retry" in fields:
                    self.retry_ms = int(fields["retry"])
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        return events

    def until_closed(self, timeout_s: float) -> list[ReceivedEvent]:
        """Every event that arrives until the server ends the stream; TimeoutError if it is still open by then."""
        events: list[ReceivedEvent] = []
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                events += self.take(1, timeout_s=max(0.0, deadline - time.monotonic()))
            except StopIteration:
                return events
            except TimeoutError:
                raise TimeoutError(f"the stream was still open after {timeout_s:.1f} s, having sent {events}") from None

    def nothing_more(self, wait_s: float) -> bool:
        """True if no event arrives within wait_s (keepalives aside)."""
        try:
            extra = self.take(1, timeout_s=wait_s)
        except (TimeoutError, requests.exceptions.ConnectionError):
            return True
        raise AssertionError(f"unexpected event {extra}")

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
