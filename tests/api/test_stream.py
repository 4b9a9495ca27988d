"""The live alert stream over a real server: resuming after a reconnect loses and repeats nothing.

Alerts are written through a second Database and AlertStore on the same records, as the pipeline's
Coordinator writes them from its own process.
"""

import threading
import time

import pytest

from cluster.alerts.events import AlertEventKind
from cluster.alerts.model import AlertState
from cluster.alerts.store import AlertStore
from cluster.audit.log import AuditLog
from cluster.database.engine import Database
from tests.api.conftest import start_control_room
from tests.api.factories import CAMERAS, PEOPLE, make_alert
from tests.api.sse import EventStream
from tests.waiting import wait_for

DAY = 86_400.0


@pytest.fixture
def pipeline_store(database):
    """Another engine on the same database, like the pipeline process's."""
    with Database(database.url.render_as_string(hide_password=False)) as other:
        yield AlertStore(other, AuditLog(other))


def all_event_ids(control_room) -> list[int]:
    return [event.event_id for event in control_room.services.events.after(0)]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True)
def test_resumes_after_a_reconnect_without_losing_or_repeating_an_event(control_room, pipeline_store):
    start = control_room.get("/alerts").json()["last_event_id"]
    with EventStream(control_room.url, control_room.operator.token, start) as first:
        for n in range(3):
            pipeline_store.save(make_alert(f"a{n}", PEOPLE[n]))
        before = first.take(3)
        assert first.retry_ms == 2000
    assert [e.data["alert_id"] for e in before] == ["a0", "a1", "a2"]
    assert {e.data["kind"] for e in before} == {"raised"}
    assert before[0].data["alert"]["person_id"] == PEOPLE[0]

    for n in range(3, 8):
        pipeline_store.save(make_alert(f"a{n}", PEOPLE[n]))
    control_room.post("/alerts/a1/acknowledge", {"reason": "sent PC Jones"}).raise_for_status()
    pipeline_store.save(make_alert("a0", PEOPLE[0], CAMERAS[:2]))

    with EventStream(control_room.url, control_room.operator.token, before[-1].event_id) as second:
        after = second.take(7)
        assert second.nothing_more(1.0)
    ids = [e.event_id for e in before + after]
    assert ids == all_event_ids(control_room), "lost or repeated events"
    assert ids == sorted(set(ids))
    assert [(e.data["alert_id"], e.data["kind"]) for e in after] == [
        *[(f"a{n}", "raised") for n in range(3, 8)],
        ("a1", "adjudicated"),
        ("a0", "updated"),
    ]
    adjudicated = after[5].data
    assert (adjudicated["state"], adjudicated["actor"]) == ("acknowledged", "pc.operator")
    assert after[6].data["alert"]["cameras"] == list(CAMERAS[:2])


def test_a_client_further_back_than_the_buffer_is_served_from_the_database(database, tmp_path, pipeline_store):
    server, room = start_control_room(database, tmp_path / "photos", buffer_events=3)
    try:
        with EventStream(room.url, room.operator.token) as live:
            for n in range(10):
                pipeline_store.save(make_alert(f"b{n}", PEOPLE[n]))
            assert [e.event_id for e in live.take(10)] == list(range(1, 11))
        assert room.app.state.hub._floor > 0, "the buffer did not overflow, so the database path went untested"
        with EventStream(room.url, room.operator.token, 2) as behind:
            assert [e.data["alert_id"] for e in behind.take(8)] == [f"b{n}" for n in range(2, 10)]
            assert behind.nothing_more(0.5)
    finally:
        server.stop()


def test_concurrent_writers_reach_every_client_once_and_in_order(control_room, database):
    per_writer = 15
    failures: list[BaseException] = []

    def write(prefix: str) -> None:
        try:
            with Database(database.url.render_as_string(hide_password=False)) as own:
                store = AlertStore(own, AuditLog(own))
                for n in range(per_writer):
                    store.save(make_alert(f"{prefix}{n}", PEOPLE[n % len(PEOPLE)]))
        except BaseException as exc:
            failures.append(exc)

    streams = [EventStream(control_room.url, control_room.operator.token, 0) for _ in range(3)]
    try:
        writers = [threading.Thread(target=write, args=(prefix,)) for prefix in ("x", "y")]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(30)
        assert not failures, failures
        expected = all_event_ids(control_room)
        assert len(expected) == 2 * per_writer
        for stream in streams:
            assert [e.event_id for e in stream.take(2 * per_writer)] == expected
    finally:
        for stream in streams:
            stream.close()


def test_without_last_event_id_the_stream_starts_now(control_room):
    control_room.store.save(make_alert("old", PEOPLE[0]))
    old = all_event_ids(control_room)[-1]
    wait_for(lambda: control_room.app.state.hub.head >= old, 5, "the event hub's poll of the old alert")
    with EventStream(control_room.url, control_room.operator.token) as stream:
        assert stream.nothing_more(0.5)
        control_room.store.save(make_alert("new", PEOPLE[1]))
        assert [e.data["alert_id"] for e in stream.take(1)] == ["new"]


def test_a_purged_alert_arrives_as_an_event_without_the_alert(control_room):
    control_room.store.save(make_alert("expired", PEOPLE[0], created_at=time.time() - 40 * DAY))
    control_room.store.save(make_alert("recent", PEOPLE[1]))
    with EventStream(control_room.url, control_room.operator.token, 2) as stream:
        purge = control_room.post("/retention/purge", token=control_room.supervisor.token)
        assert purge.status_code == 200 and purge.json()["alerts"] == 1
        (event,) = stream.take(1)
    assert (event.data["alert_id"], event.data["kind"], event.data["alert"]) == ("expired", "purged", None)
    assert event.data["actor"] == "sgt.supervisor"


@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_a_malformed_last_event_id_is_refused(control_room, value):
    response = control_room.get("/events", headers={"Last-Event-ID": value})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]


def test_events_carry_state_and_hold_as_the_change_left_them(control_room):
    control_room.store.save(make_alert("h1", PEOPLE[2]))
    with EventStream(control_room.url, control_room.operator.token, 1) as stream:
        control_room.post("/alerts/h1/hold", {"reason": "Op Trident"}, token=control_room.supervisor.token)
        control_room.post("/alerts/h1/reject", {"reason": "not him"})
        control_room.post("/alerts/h1/release", {"reason": "case closed"}, token=control_room.supervisor.token)
        events = stream.take(3)
    assert [(e.data["kind"], e.data["state"], e.data["held"]) for e in events] == [
        (AlertEventKind.HELD, AlertState.NEW, True),
        (AlertEventKind.ADJUDICATED, AlertState.REJECTED, True),
        (AlertEventKind.RELEASED, AlertState.REJECTED, False),
    ]
