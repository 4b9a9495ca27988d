"""The append-only, hash-chained audit log, kept in the same database as the alerts.

Each entry's hash seals its fields and the hash of the entry before it, so an edited, removed
or reordered entry breaks the chain at that point. A head record, updated in the same
transaction as each append, says where the chain ends, so entries deleted from the end show
too. Appends run inside `Database.writing()`, which lets one writer at a time through, so two
threads or processes can never fork the chain.

What a plain chain cannot show is a rewrite by someone who can write the database and redoes
every hash after the entries they change, head record included. Two things close that gap:
an HMAC key kept outside the database (see `cluster.audit.sealing`), and anchors: the head
(`seq:hash`) that `lfr audit verify` prints, written down elsewhere and checked later with
`--anchor`.
"""

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
import structlog

from cluster.audit.actions import AuditAction
from cluster.audit.entry import (
    GENESIS_HASH,
    AuditAnchor,
    AuditEntry,
    check_text,
    details_text,
    entry_payload,
    head_payload,
)
from cluster.audit.sealing import Sealer
from cluster.audit.tables import HEAD_ROW_ID, audit_head, audit_log, metadata
from cluster.audit.verification import VerifyReport, verify_chain
from cluster.database.engine import WRITE_OPTION, Database

log = structlog.get_logger(__name__)


class AuditLogError(RuntimeError):
    """The audit log cannot be written or read as it stands; the message says what to check."""


class AuditLog:
    """Appends entries to the chain and reads them back.

    create: create the tables (and the genesis head record) when they do not exist; commands
    that only read pass False and get a clear error on a database without an audit log.
    """

    def __init__(
        self,
        database: Database,
        sealer: Sealer | None = None,
        *,
        create: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.sealer = sealer or Sealer(None)
        self._clock = clock
        if create:
            database.ensure_schema(metadata)
            with database.writing() as connection:
                self._ensure_head(connection)
        elif not database.has_tables(audit_log.name, audit_head.name):
            raise AuditLogError(f"{database.describe()} holds no audit log: check the database URL or path")

    def append(
        self,
        connection: sa.Connection,
        actor: str,
        action: AuditAction,
        subject: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Add an entry inside the caller's write transaction: it commits or rolls back with the change it records."""
        if not connection.get_execution_options().get(WRITE_OPTION):
            raise AuditLogError("audit entries are appended inside Database.writing(); pass that connection")
        action = AuditAction(action)
        text = details_text(details or {})
        check_text("actor", actor)
        check_text("subject", subject)
        head = connection.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).one_or_none()
        if head is None:
            raise AuditLogError(
                "the audit log's head record is missing, so the chain's end is unknown: run `lfr audit verify`"
            )
        seq, prev_hash, at = head.seq + 1, head.hash, float(self._clock())
        digest = self.sealer.digest(
            entry_payload(seq, at, actor, action.value, subject, text, self.sealer.key_id, prev_hash)
        )
        connection.execute(
            audit_log.insert().values(
                seq=seq,
                at=at,
                actor=actor,
                action=action.value,
                subject=subject,
                details=text,
                key_id=self.sealer.key_id,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        connection.execute(
            audit_head.update()
            .where(audit_head.c.id == HEAD_ROW_ID)
            .values(seq=seq, hash=digest, seal=self.sealer.digest(head_payload(seq, digest)))
        )
        return AuditEntry(seq, at, actor, action, subject, json.loads(text), self.sealer.key_id, prev_hash, digest)

    def record(
        self, actor: str, action: AuditAction, subject: str, details: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        """Add an entry in a transaction of its own (for actions that change nothing else in this database)."""
        with self.database.writing() as connection:
            return self.append(connection, actor, action, subject, details)

    def entries(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Entries with seq > after_seq, oldest first."""
        query = sa.select(audit_log).where(audit_log.c.seq > after_seq).order_by(audit_log.c.seq).limit(limit)
        with self.database.reading() as connection:
            return [_entry_from_row(row) for row in connection.execute(query)]

    def latest(self, limit: int) -> list[AuditEntry]:
        """The last `limit` entries, oldest first."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        query = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
        with self.database.reading() as connection:
            rows = list(connection.execute(query))
        return [_entry_from_row(row) for row in reversed(rows)]

    def head(self) -> AuditAnchor:
        """Where the chain ends now: write it down elsewhere to detect a later truncation."""
        with self.database.reading() as connection:
            row = connection.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).one_or_none()
        if row is None:
            raise AuditLogError("the audit log's head record is missing: run `lfr audit verify`")
        return AuditAnchor(row.seq, row.hash)

    def verify(self, anchor: AuditAnchor | None = None) -> VerifyReport:
        """Check the whole chain (and the anchor, if given); the report names the first bad entry."""
        report = verify_chain(self.database, self.sealer, anchor)
        if not report.ok:
            log.warning(
                "audit_chain_broken", problem=report.problem, first_bad_seq=report.first_bad_seq, detail=report.detail
            )
        return report

    def _ensure_head(self, connection: sa.Connection) -> None:
        """A new log starts with the genesis head; an existing log without a head is left for verify to flag."""
        has_head = connection.execute(sa.select(audit_head.c.id)).first() is not None
        has_entries = connection.execute(sa.select(audit_log.c.seq).limit(1)).first() is not None
        if has_head or has_entries:
            return
        connection.execute(
            audit_head.insert().values(
                id=HEAD_ROW_ID, seq=0, hash=GENESIS_HASH, seal=self.sealer.digest(head_payload(0, GENESIS_HASH))
            )
        )


def _entry_from_row(row: sa.Row) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=AuditAction(row.action),
        subject=row.subject,
        details=json.loads(row.details),
        key_id=row.key_id,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
