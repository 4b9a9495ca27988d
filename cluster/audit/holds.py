"""Holds and retention purges, one shape for every store of evidence (alerts, cases), each on its own table.

An officer holds a record past its retention period for an investigation, naming it, and releases it when the
investigation no longer needs it; a purge deletes the records created before its cutoff that nobody holds and
counts those a hold kept. Each change is audited in the store's transaction under the store's own actions. The
audit log is kept for ever, so it holds a keyed digest of each reason: the text stays in the record's row and goes
with it.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog


@dataclass(frozen=True)
class Expired:
    """The expired rows nobody holds (oldest first), and how many expired rows a hold kept."""

    rows: Sequence[sa.Row]
    held_kept: int


@dataclass(frozen=True)
class HeldRecords:
    """A table whose rows officers may hold (columns held, held_by, held_reason, held_at), and how its store names
    them, audits their holds and refuses what it cannot do.

    key, created: the names of the table's id column and of the time retention counts from. subject: the audit
    subject of a record id. conflict: raised for a hold of a held record or a release of one not held; not_found:
    for an id with no record.
    """

    table: sa.Table
    key: str
    created: str
    noun: str
    held_action: AuditAction
    released_action: AuditAction
    conflict: type[Exception]
    not_found: type[Exception]
    subject: Callable[[str], str]

    def row(self, connection: sa.Connection, record_id: str) -> sa.Row:
        row = connection.execute(sa.select(self.table).where(self.table.c[self.key] == record_id)).one_or_none()
        if row is None:
            raise self.not_found(
                f"no {self.noun} {record_id!r}: check the id ({self.noun}s are purged after their retention)"
            )
        return row

    def hold(
        self, connection: sa.Connection, audit: AuditLog, record_id: str, officer: str, reason: str, held_at: float
    ) -> None:
        """Hold the record for the investigation `reason` names, audited as `officer`'s."""
        self._require_text(record_id, officer, reason)
        row = self.row(connection, record_id)
        if row.held:
            raise self.conflict(
                f"{self.noun} {record_id} is already held by {row.held_by} ({row.held_reason}); release it first"
                " to change the hold"
            )
        self._set(connection, record_id, held=True, held_by=officer, held_reason=reason, held_at=held_at)
        audit.append(
            connection,
            officer,
            self.held_action,
            self.subject(record_id),
            {"reason_digest": audit.sealer.reason_digest(reason), "held_at": held_at},
        )

    def release(
        self, connection: sa.Connection, audit: AuditLog, record_id: str, officer: str, reason: str, released_at: float
    ) -> None:
        """End the record's hold, audited as `officer`'s with who held it and a digest of why."""
        self._require_text(record_id, officer, reason)
        row = self.row(connection, record_id)
        if not row.held:
            raise self.conflict(f"{self.noun} {record_id} is not held, so there is nothing to release")
        self._set(connection, record_id, held=False, held_by=None, held_reason=None, held_at=None)
        audit.append(
            connection,
            officer,
            self.released_action,
            self.subject(record_id),
            {
                "reason_digest": audit.sealer.reason_digest(reason),
                "released_at": released_at,
                "held_by": row.held_by,
                "held_reason_digest": audit.sealer.reason_digest(row.held_reason or ""),
            },
        )

    def expired(
        self, connection: sa.Connection, cutoff: float, *columns: sa.ColumnElement[Any], limit: int | None = None
    ) -> Expired:
        """The ids (and `columns`) of the records created before `cutoff` that nobody holds, oldest first, at most
        `limit`; with the count of expired records that are held."""
        created, key = self.table.c[self.created], self.table.c[self.key]
        before = created < cutoff
        query = sa.select(key, *columns).where(before, self.table.c.held.is_(False)).order_by(created, key)
        rows = connection.execute(query if limit is None else query.limit(limit)).all()
        held_kept = connection.execute(
            sa.select(sa.func.count()).select_from(self.table).where(before, self.table.c.held.is_(True))
        ).scalar_one()
        return Expired(rows, held_kept)

    def audit_purge(
        self,
        connection: sa.Connection,
        audit: AuditLog,
        actor: str,
        expired: Expired,
        counts: Mapping[str, int],
        *,
        cutoff: float,
        older_than_s: float,
    ) -> None:
        """The purge's audit entry on the table: what it deleted, its cutoff, what holds kept and the ids it purged."""
        audit.append(
            connection,
            actor,
            AuditAction.PURGE,
            self.table.name,
            {
                **counts,
                "cutoff": cutoff,
                "older_than_s": older_than_s,
                "held_kept": expired.held_kept,
                f"{self.noun}_ids": [row[0] for row in expired.rows],
            },
        )

    def _set(self, connection: sa.Connection, record_id: str, **values: object) -> None:
        connection.execute(self.table.update().where(self.table.c[self.key] == record_id).values(**values))

    def _require_text(self, record_id: str, officer: str, reason: str) -> None:
        for name, value in (("officer", officer), ("reason", reason)):
            if not value.strip():
                raise ValueError(f"{self.noun} {record_id}: {name} must not be empty")
