"""Refused and anonymous requests over a real server: throttled per client, audited as counts, never a 500.

The server here runs with the default limits (`ServeConfig()`), not the lax ones the route tests use.
"""

import http.client
import json
from urllib.parse import urlsplit

import pytest

from cluster.api.gate import REFUSED_DETAIL
from cluster.api.tally import REFUSED, SERVED
from cluster.api.throttle import TOO_MANY_REFUSALS, TOO_MANY_REQUESTS
from cluster.audit.actions import AuditAction
from cluster.control_room.config import ServeConfig
from tests.api.conftest import start_control_room

GARBAGE = {"Authorization": "Bearer not-a-token"}
REFUSALS_PER_MINUTE = 20


@pytest.fixture
def guarded(database, tmp_path):
    """A control room with the default limits; the test stops it (its shutdown flushes the counts)."""
    server, room = start_control_room(database, tmp_path / "photos", serve=ServeConfig())
    yield server, room
    server.stop()


def anonymous_entries(room) -> list:
    return [e for e in room.audit.latest(200) if e.actor == "anonymous"]


def get_from(address: str, url: str, path: str, token: str | None) -> tuple[int, dict]:
    """GET from a chosen local source address (127.0.0.0/8 is all loopback), as another client would."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10, source_address=(address, 0))
    try:
        connection.request("GET", path, headers={} if token is None else {"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_refused_credentials_are_throttled_per_client_and_audited_as_counts(guarded):
    server, room = guarded
    statuses = [room.call("GET", "/alerts", None, headers=GARBAGE) for _ in range(2 * REFUSALS_PER_MINUTE)]
    assert [r.status_code for r in statuses] == [401] * REFUSALS_PER_MINUTE + [429] * REFUSALS_PER_MINUTE
    throttled = statuses[-1]
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert TOO_MANY_REFUSALS in throttled.json()["detail"]
    assert room.get("/me").status_code == 429, "the client is held off whatever credential it sends next"
    status, body = get_from("127.0.0.2", room.url, "/me", room.operator.token)
    assert (status, body) == (200, {"name": "pc.operator", "role": "operator"}), "another client is not held off"
    assert anonymous_entries(room) == [], "refusals must not be written one by one"

    server.stop()
    entries = {(e.details["reason"], e.details["status"]): e for e in anonymous_entries(room)}
    assert set(entries) == {("malformed token", 401), (TOO_MANY_REFUSALS, 429)}
    refused, throttled_entry = entries["malformed token", 401], entries[TOO_MANY_REFUSALS, 429]
    assert (refused.action, refused.subject, refused.details["count"]) == (AuditAction.LOGIN, "127.0.0.1", 20)
    assert (throttled_entry.action, throttled_entry.details["count"]) == (AuditAction.REQUEST, 21)
    assert throttled_entry.details["paths"] == {"/alerts": 20, "/me": 1}
    assert refused.details["outcome"] == throttled_entry.details["outcome"] == REFUSED
    assert room.audit.verify().ok


def test_a_client_over_its_request_rate_is_answered_429(database, tmp_path):
    server, room = start_control_room(database, tmp_path / "photos", serve=ServeConfig(requests_per_client="5/minute"))
    try:
        statuses = [room.get("/me").status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        assert TOO_MANY_REQUESTS in room.get("/me").json()["detail"]
    finally:
        server.stop()


def test_the_page_files_are_counted_not_audited_one_by_one(guarded):
    server, room = guarded
    for _ in range(5):
        assert room.call("GET", "/", None).status_code == 200
    assert anonymous_entries(room) == []
    assert room.app.state.tally.flush(room.audit) == 1
    (entry,) = anonymous_entries(room)
    assert (entry.action, entry.details["outcome"], entry.details["count"]) == (AuditAction.REQUEST, SERVED, 5)


class BrokenAudit:
    """A fault injected on purpose: every audit write fails."""

    def __call__(self, *args, **kwargs):
        raise OSError("disk full")


def test_a_failing_audit_fails_accepted_requests_closed_and_leaves_refusals_alone(guarded, monkeypatch):
    _server, room = guarded
    monkeypatch.setattr(room.audit, "record", BrokenAudit())
    accepted = room.get("/alerts")
    assert accepted.status_code == 500 and "next_cursor" not in accepted.text, "data must not leave unaudited"
    for _ in range(5):
        refused = room.call("GET", "/alerts", None, headers=GARBAGE)
        assert (refused.status_code, refused.json()) == (401, {"detail": REFUSED_DETAIL})
