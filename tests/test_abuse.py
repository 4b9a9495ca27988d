"""The abuse suite: a real control room on loopback, with its default limits, under the attacks a local process
can make. Each test says what status the attacker gets and what the audit log does (and does not) keep.

Bounded in time: every flood runs for about a second, the whole module in well under a minute.
"""

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
import structlog

from cluster.alerts.store import AlertStore
from cluster.api.gate import REFUSED_DETAIL
from cluster.api.keys import Role
from cluster.api.tally import REFUSED, SERVED
from cluster.api.throttle import TOO_MANY_REFUSALS
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.audit.sealing import DEFAULT_KEY_ENV, Sealer
from cluster.control_room.config import ServeConfig
from cluster.database.engine import Database
from tests.api.conftest import start_control_room
from tests.api.factories import PEOPLE, make_alert
from tests.api.sse import EventStream
from tests.api.test_serve_cli import CLI
from tests.waiting import scaled

pytestmark = pytest.mark.slow
log = structlog.get_logger(__name__)

ROOT = Path(__file__).resolve().parents[1]
HMAC_KEY = "abuse-suite-audit-key-" + "k" * 20
FLOOD_S = 1.0
FLOOD_THREADS = 6
DEFAULTS = ServeConfig()
REFUSALS_PER_MINUTE = 20


@pytest.fixture
def audit_key(monkeypatch) -> Sealer:
    monkeypatch.setenv(DEFAULT_KEY_ENV, HMAC_KEY)
    return Sealer(HMAC_KEY.encode())


@pytest.fixture
def database(tmp_path):
    with Database(tmp_path / "records.sqlite3") as db:
        yield db


@pytest.fixture
def served(database, tmp_path, audit_key):
    """A control room with the default limits, and a function that stops it (idempotent: its shutdown flushes)."""
    server, room = start_control_room(database, tmp_path / "photos", serve=DEFAULTS, sealer=audit_key)
    room.store.save(make_alert("a1", PEOPLE[0]))
    yield server, room
    server.stop()


def anonymous(room) -> list:
    return [e for e in room.audit.entries(0, 100_000) if e.actor == "anonymous"]


def test_an_anonymous_flood_is_throttled_and_costs_a_handful_of_audit_entries(served):
    server, room = served
    rows_before = len(room.audit.entries(0, 100_000))
    attacks = [
        ("GET", "/alerts", {}),
        ("GET", "/alerts", {"Authorization": "Bearer junk"}),
        ("GET", "/events", {"Authorization": "Bearer lfr_0123456789ab_" + "A" * 43}),
        ("POST", "/users", {"Authorization": "Basic YWRtaW46YWRtaW4="}),
        ("GET", "/", {}),
    ]
    sent: Counter[int] = Counter()
    lock = threading.Lock()

    def flood(worker: int) -> None:
        session = requests.Session()
        ends = time.monotonic() + FLOOD_S
        n = worker
        while time.monotonic() < ends:
            method, path, headers = attacks[n % len(attacks)]
            status = session.request(method, room.url + path, headers=headers, timeout=10).status_code
            with lock:
                sent[status] += 1
            n += 1

    workers = [threading.Thread(target=flood, args=(n,)) for n in range(FLOOD_THREADS)]
    for worker in workers:
        worker.start()
    officer = requests.get(room.url + "/alerts", headers={"Authorization": f"Bearer {room.operator.token}"})
    for worker in workers:
        worker.join(scaled(30))
    total = sum(sent.values())
    assert set(sent) <= {200, 401, 429} and sent[429] > total / 2, sent
    assert sent[401] <= REFUSALS_PER_MINUTE, "refusals past the budget are throttled before any key is looked up"
    assert officer.status_code in (200, 429), "the officer shares the attacker's address, so may be held off too"
    assert len(room.audit.entries(0, 100_000)) == rows_before + (officer.status_code == 200), "nothing per refusal"

    server.stop()
    entries = anonymous(room)
    assert len(entries) <= 8, [(e.details["reason"], e.details["count"]) for e in entries]
    assert sum(e.details["count"] for e in entries) == total
    outcomes = {(e.details["outcome"], e.details["status"]) for e in entries}
    assert (REFUSED, 429) in outcomes and (REFUSED, 401) in outcomes
    assert room.audit.verify().ok
    log.info("anonymous_flood_absorbed", requests=total, seconds=FLOOD_S, statuses=dict(sent), entries=len(entries))


def test_a_revoked_keys_stream_ends_when_another_process_revokes_it(served, database, tmp_path):
    _server, room = served
    officer = room.services.keys.add_user("pc.leaving", Role.OPERATOR, actor="cli:test")
    config = tmp_path / "lfr.yaml"
    config.write_text(f"database:\n  url: {database.url.database}\n")
    with Database(database.url.database) as other:
        pipeline = AlertStore(other, AuditLog(other, Sealer(HMAC_KEY.encode())))
        with EventStream(room.url, officer.token, 0) as stream:
            assert [e.data["alert_id"] for e in stream.take(1)] == ["a1"]
            revoked = subprocess.run(
                [sys.executable, "-c", CLI, "serve", "--config", str(config), "revoke", "pc.leaving"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                capture_output=True,
                text=True,
                timeout=scaled(60),
            )
            assert revoked.returncode == 0, revoked.stderr
            pipeline.save(make_alert("after", PEOPLE[1]))
            later = stream.until_closed(scaled(3))
    assert "after" not in {e.data["alert_id"] for e in later}
    reconnect = requests.get(room.url + "/events", headers={"Authorization": f"Bearer {officer.token}"}, timeout=10)
    assert (reconnect.status_code, reconnect.json()) == (401, {"detail": REFUSED_DETAIL})


def test_oversized_bodies_are_refused_before_they_are_read(served):
    _server, room = served
    url = room.url + "/alerts/a1/acknowledge"
    signed_in = {"Authorization": f"Bearer {room.operator.token}", "Content-Type": "application/json"}
    huge = b'{"reason": "' + b"x" * (8 * DEFAULTS.max_body_bytes) + b'"}'

    def chunked():
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    assert requests.post(url, data=huge, headers=signed_in, timeout=30).status_code == 413
    assert requests.post(url, data=chunked(), headers=signed_in, timeout=30).status_code == 413
    assert requests.post(url, data=huge, headers={"Content-Type": "application/json"}, timeout=30).status_code == 401
    assert room.store.get("a1").state == "new"
    assert requests.post(url, json={"reason": "ok"}, headers=signed_in, timeout=10).status_code == 200
    audited = [e.details["status"] for e in room.audit.latest(10) if e.subject == "/alerts/a1/acknowledge"]
    assert audited == [413, 413, 200]


MALFORMED = [
    ("/alerts", {"cursor": "W" + "9" * 400 + "XQ=="}),
    ("/alerts", {"cursor": "WzllOTk5LCAiYTEiXQ=="}),
    ("/alerts", {"cursor": "ééé"}),
    ("/alerts", {"limit": "9" * 400}),
    ("/alerts", {"limit": "-3"}),
    ("/alerts", {"limit": "ten"}),
    ("/alerts", {"since": "9" * 400}),
    ("/alerts", {"since": "١٢٣"}),
    ("/alerts", {"state": "nonsense"}),
    ("/alerts/" + "x" * 1000, {}),
    ("/alerts/a1/sightings/" + "9" * 1000 + "/crop", {}),
    ("/users/" + "é" * 10 + "/keys", {"lifetime_days": "9" * 400}),
]


def test_malformed_cursors_and_ids_are_client_errors_and_audited(served):
    _server, room = served
    supervisor = {"Authorization": f"Bearer {room.supervisor.token}"}
    for path, params in MALFORMED:
        method = "POST" if path.endswith("/keys") else "GET"
        response = requests.request(method, room.url + path, params=params, headers=supervisor, timeout=10)
        assert response.status_code == 422, (path, params, response.status_code, response.text[:200])
    for value in (str(2**63), "9" * 400, "-1", "x", "١"):
        headers = {**supervisor, "Last-Event-ID": value.encode()}
        with requests.get(room.url + "/events", headers=headers, stream=True, timeout=10) as response:
            assert response.status_code == 422, value
    statuses = [e.details["status"] for e in room.audit.latest(40) if e.actor == "sgt.supervisor"]
    assert statuses == [422] * (len(MALFORMED) + 5)


def test_forged_forwarding_headers_neither_hide_the_client_nor_dodge_the_limits(served):
    server, room = served
    statuses = [
        requests.get(
            room.url + "/alerts",
            headers={"Authorization": "Bearer junk", "X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": "10.0.0.1"},
            timeout=10,
        ).status_code
        for n in range(REFUSALS_PER_MINUTE + 5)
    ]
    assert statuses.count(401) == REFUSALS_PER_MINUTE and statuses.count(429) == 5
    server.stop()
    clients = {e.details["client"] for e in anonymous(room)}
    assert clients == {"127.0.0.1"}
    (throttled,) = [e for e in anonymous(room) if e.details["reason"] == TOO_MANY_REFUSALS]
    assert throttled.action == AuditAction.REQUEST and throttled.details["count"] == 5
    assert not any(e.details["outcome"] == SERVED for e in anonymous(room))
