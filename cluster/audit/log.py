"""The append-only, hash-chained audit log, kept in the same database as the alerts.

Each entry's hash seals its fields and the hash of the entry before it, so an edited, removed
or reordered entry breaks the chain at that point. A head record, updated in the same
transaction as each append, says where the chain ends and which key seals it, so entries
deleted from the end show too, and a process holding another key (or none) is refused instead
of breaking the chain. Appends run inside `Database.writing()`, which lets one writer at a time
through, so two threads or processes can never fork the chain. The head record is made once,
with the tables: a database whose audit tables exist but hold no head record was wiped, and is
never silently started afresh.

What the chain alone cannot show is a rewrite by someone who can write the database: with no
key they can redo every hash after the entries they change, head record included; with the
key still out of their reach they can cut the tail and restore an older sealed head record.
Two things close those gaps: the HMAC key kept outside the database (see
`cluster.audit.sealing`), required by default, and the anchor file (see
`cluster.audit.anchors`), to which each process that appends writes the committed head after its
write transactions, rate-bounded, and long-lived processes also on a timer; `lfr audit verify`
checks the chain against every anchor in it.
"""

import json
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import sqlalchemy as sa
import structlog

from cluster.audit.actions import AuditAction
from cluster.audit.anchors import AnchorFile, AnchorWriter
from cluster.audit.entry import (
    AuditAnchor,
    AuditEntry,
    check_text,
    details_text,
    entry_payload,
    head_payload,
)
from cluster.audit.head_sealing import HeadResealer
from cluster.audit.sealing import Sealer
from cluster.audit.tables import HEAD_ROW_ID, audit_head, audit_log
from cluster.audit.verification import AnchorCheck, VerifyReport, verify_chain
from cluster.database.engine import WRITE_OPTION, Database
from cluster.database.migrations.hooks import UpgradeHooks
from cluster.database.schema import prepare, require_current

log = structlog.get_logger(__name__)

DEFAULT_ANCHOR_INTERVAL_S = 10.0


class AuditLogError(RuntimeError):
    """The audit log cannot be written or read as it stands; the message says what to check."""


class AuditLog:
    """Appends entries to the chain and reads them back.

    create: create the tables (and the genesis head record) when they do not exist; commands
    that only read pass False and get a clear error on a database without an audit log.
    anchors: the anchor file this process writes the head to after its appends (none: no anchors).
    """

    def __init__(
        self,
        database: Database,
        sealer: Sealer | None = None,
        *,
        create: bool = True,
        clock: Callable[[], float] = time.time,
        anchors: AnchorFile | None = None,
        anchor_interval_s: float = DEFAULT_ANCHOR_INTERVAL_S,
    ) -> None:
        self.database = database
        self.sealer = sealer or Sealer(None)
        self._clock = clock
        if create:
            self._create_once()
        elif not database.has_tables(audit_log.name, audit_head.name):
            raise AuditLogError(f"{database.describe()} holds no audit log: check the database URL or path")
        else:
            require_current(database)
        self.anchors = (
            None
            if anchors is None
            else AnchorWriter(anchors, self.sealer, self.head, min_interval_s=anchor_interval_s, clock=clock)
        )

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
        head = connection.execute(sa.select(audit_head.c.seq, audit_head.c.hash, audit_head.c.key_id)).one_or_none()
        if head is None:
            raise AuditLogError(
                "the audit log's head record is missing, so the chain's end is unknown: run `lfr audit verify`"
            )
        if head.key_id != self.sealer.key_id:
            raise AuditLogError(
                f"this audit log is sealed with {_describe_key(head.key_id)}, but this process has"
                f" {self.sealer.describe()}: set the audit key (LFR_AUDIT_HMAC_KEY, or the variable audit.hmac_key_env"
                " names) to the key the log was written with; an entry sealed with another key would break the"
                " chain for every later entry"
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
            .values(seq=seq, hash=digest, seal=self.sealer.digest(head_payload(seq, digest, self.sealer.key_id)))
        )
        if self.anchors is not None:
            self.database.after_commit(connection, self.anchors.appended)
        return AuditEntry(seq, at, actor, action, subject, json.loads(text), self.sealer.key_id, prev_hash, digest)

    def record(
        self, actor: str, action: AuditAction, subject: str, details: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        """Add an entry in a transaction of its own (for actions that change nothing else in this database)."""
        with self.database.writing() as connection:
            return self.append(connection, actor, action, subject, details)

    def entries(self, after_seq: int = 0, limit: int = 1000, actions: Collection[AuditAction] = ()) -> list[AuditEntry]:
        """Entries with seq > after_seq (of these actions; none: any), oldest first."""
        query = sa.select(audit_log).where(audit_log.c.seq > after_seq).order_by(audit_log.c.seq).limit(limit)
        if actions:
            query = query.where(audit_log.c.action.in_(sorted(AuditAction(action).value for action in actions)))
        with self.database.reading() as connection:
            return [_entry_from_row(row) for row in connection.execute(query)]

    def about(
        self, subject: str, actions: Collection[AuditAction], *, before_seq: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Entries about `subject` of these actions with seq < before_seq (None: all), newest first.

        For a search back to the last entry of a kind: the index on (action, subject, seq) reads only those entries.
        """
        if not actions or limit < 1:
            raise ValueError(f"name at least one action and a limit >= 1, got {sorted(actions)} and {limit}")
        query = (
            sa.select(audit_log)
            .where(
                audit_log.c.action.in_(sorted(AuditAction(action).value for action in actions)),
                audit_log.c.subject == subject,
            )
            .order_by(audit_log.c.seq.desc())
            .limit(limit)
        )
        if before_seq is not None:
            query = query.where(audit_log.c.seq < before_seq)
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

    def verify(self, anchor: AuditAnchor | None = None, anchor_file: AnchorFile | None = None) -> VerifyReport:
        """Check the whole chain against its head record, `anchor` and every line of `anchor_file`.

        The report names the first bad entry; an anchor file that does not exist fails a log that holds entries.
        """
        report = verify_chain(self.database, self.sealer, AnchorCheck(anchor, anchor_file))
        if not report.ok:
            log.warning(
                "audit_chain_broken", problem=report.problem, first_bad_seq=report.first_bad_seq, detail=report.detail
            )
        return report

    def close(self) -> None:
        """Write the head to the anchor file a last time (the database stays open: its owner closes it)."""
        if self.anchors is not None:
            self.anchors.stop()

    def _create_once(self) -> None:
        """Bring an empty database to the current schema, the audit tables and the genesis head record together.

        A database that holds records must be at the current schema already (`lfr db upgrade`). Tables
        that exist without a head record are a wiped log: left for `verify` to flag, never re-seeded.
        """
        prepare(self.database, UpgradeHooks(head=HeadResealer(self.sealer)))


def _describe_key(key_id: str) -> str:
    return f"HMAC key id {key_id}" if key_id else "no HMAC key"


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
