"""The alert event log the live stream follows: one event per change, in commit order, in the same
transaction as the change, on SQLite and PostgreSQL."""

import pytest
import sqlalchemy as sa

from cluster.alerts.events import AlertEventKind, AlertEventLog, alert_events, append_events
from cluster.alerts.model import AlertState
from cluster.alerts.store import AlertStore
from cluster.audit.log import AuditLog
from tests.api.factories import CAMERAS, PEOPLE, make_alert

DAY = 86_400.0
T0 = 1_750_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def store(database, clock):
    return AlertStore(database, AuditLog(database, clock=clock), clock=clock)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True)
def test_every_change_appends_one_event_in_order(store, clock):
    log = AlertEventLog(store.database)
    assert log.last_id() == 0 and log.after(0) == []
    store.save(make_alert("e1", PEOPLE[0], created_at=T0 - 40 * DAY))
    store.save(make_alert("e1", PEOPLE[0], created_at=T0 - 40 * DAY))
    store.save(make_alert("e1", PEOPLE[0], CAMERAS[:2], created_at=T0 - 40 * DAY))
    store.save(make_alert("e2", PEOPLE[1], created_at=T0))
    clock.now = T0 + 5
    store.transition("e2", AlertState.ACKNOWLEDGED, "pc.one")
    store.hold("e2", "sgt.two", "Op Trident")
    store.release("e2", "sgt.two", "case closed")
    store.purge(31 * DAY)
    events = log.after(0)
    assert [(e.kind, e.alert_id, e.state, e.held, e.actor) for e in events] == [
        (AlertEventKind.RAISED, "e1", AlertState.NEW, False, "system:coordinator"),
        (AlertEventKind.UPDATED, "e1", AlertState.NEW, False, "system:coordinator"),
        (AlertEventKind.RAISED, "e2", AlertState.NEW, False, "system:coordinator"),
        (AlertEventKind.ADJUDICATED, "e2", AlertState.ACKNOWLEDGED, False, "pc.one"),
        (AlertEventKind.HELD, "e2", AlertState.ACKNOWLEDGED, True, "sgt.two"),
        (AlertEventKind.RELEASED, "e2", AlertState.ACKNOWLEDGED, False, "sgt.two"),
        (AlertEventKind.PURGED, "e1", AlertState.NEW, False, "system:retention"),
    ]
    assert [e.event_id for e in events] == list(range(1, 8))
    assert events[3].at == T0 + 5 and {e.deployment_id for e in events} == {"west_end"}
    assert [e.event_id for e in log.after(5)] == [6, 7] and log.after(5, limit=1)[0].event_id == 6
    assert log.last_id() == 7


def test_a_refused_change_leaves_no_event(store):
    store.save(make_alert("r1", PEOPLE[0]))
    with pytest.raises(ValueError, match="needs a reason"):
        store.transition("r1", AlertState.REJECTED, "pc.one", "")
    assert [e.kind for e in AlertEventLog(store.database).after(0)] == [AlertEventKind.RAISED]


def test_events_are_appended_only_inside_a_write_transaction(store):
    store.save(make_alert("w1", PEOPLE[0]))
    with store.database.reading() as connection, pytest.raises(RuntimeError, match="Database.writing"):
        append_events(connection, AlertEventKind.UPDATED, ["w1"], "pc.one", T0)
    with store.database.writing() as connection, pytest.raises(ValueError, match="before deleting them"):
        append_events(connection, AlertEventKind.PURGED, ["gone"], "pc.one", T0)


def test_ids_are_never_reused_after_the_newest_events_are_deleted(store):
    """SQLite without AUTOINCREMENT hands out max(id) + 1 again: a client holding that id would skip an event."""
    store.save(make_alert("n1", PEOPLE[0]))
    store.save(make_alert("n2", PEOPLE[1]))
    with store.database.writing() as connection:
        connection.execute(alert_events.delete().where(alert_events.c.event_id == 2))
    store.save(make_alert("n3", PEOPLE[2]))
    assert [e.event_id for e in AlertEventLog(store.database).after(0)] == [1, 3]


def test_events_hold_no_evidence(store):
    columns = {column["name"] for column in sa.inspect(store.database.engine).get_columns("alert_events")}
    assert columns == {"event_id", "at", "kind", "alert_id", "deployment_id", "state", "held", "actor"}
