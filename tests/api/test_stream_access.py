"""Who may go on following the live stream, and what it may still show, over a real server.

A stream lasts only while its key is accepted: revoking the key with `lfr serve revoke` (another
process's code path, on its own database connection) or the key expiring ends the open stream
within a poll or so, and no alert raised after that reaches it. Every stream ends after the
server's stream lifetime, and the client resumes from its last event id. A purged alert is no
longer served, neither from the hub's buffer nor from the database.
"""

import threading
import time
from dataclasses import replace

import pytest

from cluster.alerts.events import AlertEventKind
from cluster.alerts.store import AlertStore
from cluster.api.keys import ApiKeys, Role
from cluster.audit.log import AuditLog
from cluster.audit.sealing import DEFAULT_KEY_ENV, Sealer
from cluster.control_room.config import ServeConfig
from cluster.database.engine import Database
from tests.api.conftest import LAX_LIMITS, start_control_room
from tests.api.factories import PEOPLE, make_alert
from tests.api.sse import EventStream
from tests.api.test_serve_cli import lfr
from tests.waiting import scaled, wait_for

DAY = 86_400.0
HMAC_KEY = "k" * 40
"""The audit key the server and the CLI share, as two processes of one deployment would."""
ENDS_WITHIN_S = 3.0
"""A stream must end this soon (before the machine's load stretches it) after its key stops being accepted."""


@pytest.fixture
def audit_key(monkeypatch) -> Sealer:
    monkeypatch.setenv(DEFAULT_KEY_ENV, HMAC_KEY)
    return Sealer(HMAC_KEY.encode())


@pytest.fixture
def pipeline_store(database, audit_key):
    """Another engine on the same database, like the pipeline process's."""
    with Database(database.url.render_as_string(hide_password=False)) as other:
        yield AlertStore(other, AuditLog(other, audit_key))


@pytest.fixture
def room(database, tmp_path, audit_key):
    server, control_room = start_control_room(database, tmp_path / "photos", sealer=audit_key)
    try:
        yield control_room
    finally:
        server.stop()


def config_file(database: Database, tmp_path) -> str:
    path = tmp_path / "lfr.yaml"
    path.write_text(f"database:\n  url: '{database.url.render_as_string(hide_password=False)}'\n")
    return str(path)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True)
def test_revoking_a_key_with_the_cli_ends_its_open_stream_at_once(room, database, pipeline_store, tmp_path, capsys):
    officer = room.services.keys.add_user("pc.leaving", Role.OPERATOR, actor="cli:test")
    config = config_file(database, tmp_path)
    with EventStream(room.url, officer.token, 0) as stream:
        pipeline_store.save(make_alert("before", PEOPLE[0]))
        assert [e.data["alert_id"] for e in stream.take(1)] == ["before"]
        revoked = threading.Event()
        outcome: list[int] = []

        def revoke_then_raise() -> None:
            outcome.append(lfr(["serve", "--config", config, "revoke", "pc.leaving"]))
            revoked.set()
            pipeline_store.save(make_alert("after", PEOPLE[1]))

        revoker = threading.Thread(target=revoke_then_raise)
        started = time.monotonic()
        revoker.start()
        later = stream.until_closed(scaled(ENDS_WITHIN_S + 2))
        ended_after_s = time.monotonic() - started
        revoker.join(scaled(10))
    assert outcome == [0] and revoked.is_set()
    assert "after" not in {e.data["alert_id"] for e in later}, "an alert raised after the revocation got through"
    assert ended_after_s < scaled(ENDS_WITHIN_S)
    assert "revoked 1 key of pc.leaving" in capsys.readouterr().out
    assert room.get("/events", token=officer.token).status_code == 401


def test_a_key_that_expires_ends_its_open_stream(database, tmp_path, audit_key, pipeline_store):
    now = [time.time()]
    server, room = start_control_room(database, tmp_path / "photos", sealer=audit_key)
    try:
        keys = ApiKeys(room.audit, clock=lambda: now[0])
        room.app.state.hub.keys = keys
        room.app.state.services = replace(room.services, keys=keys)
        officer = keys.add_user("pc.shortterm", Role.OPERATOR, actor="cli:test", lifetime_days=1)
        with EventStream(room.url, officer.token, 0) as stream:
            pipeline_store.save(make_alert("before", PEOPLE[0]))
            assert [e.data["alert_id"] for e in stream.take(1)] == ["before"]
            now[0] += DAY
            assert stream.until_closed(scaled(ENDS_WITHIN_S)) == []
    finally:
        server.stop()


def test_a_stream_ends_after_its_lifetime_and_the_client_resumes_where_it_was(database, tmp_path, pipeline_store):
    serve = ServeConfig.model_validate({**LAX_LIMITS.model_dump(), "stream_max_s": 1.0})
    server, room = start_control_room(database, tmp_path / "photos", serve=serve, sealer=pipeline_store.audit.sealer)
    try:
        started = time.monotonic()
        with EventStream(room.url, room.operator.token, 0) as stream:
            pipeline_store.save(make_alert("first", PEOPLE[0]))
            seen = stream.until_closed(scaled(5))
        assert time.monotonic() - started >= 1.0
        assert [e.data["alert_id"] for e in seen] == ["first"]
        pipeline_store.save(make_alert("second", PEOPLE[1]))
        with EventStream(room.url, room.operator.token, seen[-1].event_id) as resumed:
            assert [e.data["alert_id"] for e in resumed.take(1)] == ["second"]
    finally:
        server.stop()


@pytest.mark.parametrize("buffer_events", [4096, 1], ids=["from_the_buffer", "from_the_database"])
def test_a_purged_alert_is_not_served_after_the_purge(database, tmp_path, pipeline_store, buffer_events):
    server, room = start_control_room(
        database, tmp_path / "photos", sealer=pipeline_store.audit.sealer, buffer_events=buffer_events
    )
    try:
        pipeline_store.save(make_alert("expired", PEOPLE[0], created_at=time.time() - 40 * DAY))
        pipeline_store.save(make_alert("recent", PEOPLE[1]))
        with EventStream(room.url, room.operator.token, 0) as before:
            assert [e.data["alert_id"] for e in before.take(2)] == ["expired", "recent"]
        assert pipeline_store.purge(31 * DAY).alerts == 1
        last = room.services.events.last_id()
        wait_for(lambda: room.app.state.hub.head >= last, 5, "the hub's poll of the purge")
        with EventStream(room.url, room.operator.token, 0) as after:
            events = after.take(2)
            assert after.nothing_more(0.5)
            raw = "".join(str(e.data) for e in events)
    finally:
        server.stop()
    assert [(e.data["alert_id"], e.data["kind"]) for e in events] == [
        ("recent", AlertEventKind.RAISED),
        ("expired", AlertEventKind.PURGED),
    ]
    assert events[1].data["alert"] is None
    assert PEOPLE[0] not in raw, "the purged alert's person is still served"
