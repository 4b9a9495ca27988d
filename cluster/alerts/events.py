"""The alert event log: one row for each change to an alert, in the order the changes committed.

The control room's live stream follows this log. A reader that has seen event N asks for the
events after N and gets every later change exactly once, even from another process (the
pipeline's Coordinator writes alerts, `lfr serve` reads them) and across a reconnect.

Why ids can serve as the stream's resume point: every event is appended inside the write
transaction of the change it records, and `Database.writing()` lets one writer through at a
time (across processes too), so ids are taken, and committed, in increasing order: once a
reader sees id N, no event below N can still appear. The table is created with SQLite's
AUTOINCREMENT, so an id is never handed out twice even after the highest rows are deleted;
PostgreSQL's identity sequence never goes back either.

An event says which alert changed, how, and who changed it; it holds no evidence (no crops,
embeddings or person ids), so nothing personal outlives a purged alert here.
"""

import enum
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from cluster.alerts.model import AlertState
from cluster.alerts.tables import alerts
from cluster.database.engine import WRITE_OPTION, Database
from cluster.database.schema import require_current

IDS_PER_QUERY = 500
MAX_EVENTS_PER_READ = 1000

metadata = sa.MetaData()

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("alert_id", sa.String, nullable=False),
    sa.Column("deployment_id", sa.String, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("held", sa.Boolean, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sqlite_autoincrement=True,
)


class AlertEventKind(enum.StrEnum):
    """What happened to the alert."""

    RAISED = "raised"
    UPDATED = "updated"
    ADJUDICATED = "adjudicated"
    HELD = "held"
    RELEASED = "released"
    PURGED = "purged"


@dataclass(frozen=True)
class AlertEvent:
    """One change: the alert's state and hold as the change left them (for a purge: as it found them)."""

    event_id: int
    at: float
    kind: AlertEventKind
    alert_id: str
    deployment_id: str
    state: AlertState
    held: bool
    actor: str


def append_events(
    connection: sa.Connection, kind: AlertEventKind, alert_ids: Iterable[str], actor: str, at: float
) -> None:
    """Record `kind` for each alert, as it stands in this transaction; call before deleting, after changing."""
    if not connection.get_execution_options().get(WRITE_OPTION):
        raise RuntimeError("alert events are appended inside Database.writing(), with the change they record")
    ids = list(alert_ids)
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start : start + IDS_PER_QUERY]
        rows = connection.execute(
            sa.select(alerts.c.alert_id, alerts.c.deployment_id, alerts.c.state, alerts.c.held)
            .where(alerts.c.alert_id.in_(chunk))
            .order_by(alerts.c.created_at, alerts.c.alert_id)
        ).all()
        if len(rows) != len(chunk):
            missing = sorted(set(chunk) - {row.alert_id for row in rows})
            raise ValueError(f"no alerts {missing} in this transaction: append their events before deleting them")
        connection.execute(
            alert_events.insert(),
            [
                {
                    "at": at,
                    "kind": AlertEventKind(kind).value,
                    "alert_id": row.alert_id,
                    "deployment_id": row.deployment_id,
                    "state": row.state,
                    "held": bool(row.held),
                    "actor": actor,
                }
                for row in rows
            ],
        )


class AlertEventLog:
    """Reads the event log; the alert store writes it (see `append_events`)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        require_current(database)

    def after(self, event_id: int, limit: int = MAX_EVENTS_PER_READ) -> list[AlertEvent]:
        """Events with ids above `event_id`, oldest first, at most `limit`."""
        if not 1 <= limit <= MAX_EVENTS_PER_READ:
            raise ValueError(f"limit must be within 1..{MAX_EVENTS_PER_READ}, got {limit}")
        query = (
            sa.select(alert_events)
            .where(alert_events.c.event_id > event_id)
            .order_by(alert_events.c.event_id)
            .limit(limit)
        )
        with self.database.reading() as connection:
            return [_event(row) for row in connection.execute(query)]

    def last_id(self) -> int:
        """The newest event's id; 0 for an empty log. Everything up to it has committed."""
        with self.database.reading() as connection:
            return connection.execute(sa.select(sa.func.max(alert_events.c.event_id))).scalar() or 0


def _event(row: sa.Row) -> AlertEvent:
    return AlertEvent(
        event_id=row.event_id,
        at=row.at,
        kind=AlertEventKind(row.kind),
        alert_id=row.alert_id,
        deployment_id=row.deployment_id,
        state=AlertState(row.state),
        held=bool(row.held),
        actor=row.actor,
    )
