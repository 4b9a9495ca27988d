"""Intent and outcome entries: a change to another store is recorded before it is made and again when it ends.

The gallery (Milvus and its catalogue) is not in the records database, so no transaction covers
a gallery change and its audit entry. What the log can show instead is the order: an *intent*
entry, committed before the change starts, says who is about to change what and why; an
*outcome* entry with the same operation id, written when the change ends, says what it did
(`result` "done") or the error that stopped it (`result` "failed"). A process killed in between
leaves an intent with no outcome, which `unfinished_intents` lists for an auditor: the change
may have been made in part, and whoever follows it up knows which operation, by whom, to check.

Both entries carry `phase` and `operation` in their details, beside the details of the change.
"""

import enum
import json
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from cluster.audit.entry import AuditEntry
from cluster.audit.log import AuditLog
from cluster.audit.tables import audit_log

PHASE = "phase"
OPERATION = "operation"
RESULT = "result"
INTENT = "intent"
OUTCOME = "outcome"
_HAS_PHASE = '%"phase":"%'
"""Canonical details JSON has no spaces, and a quote inside a string value is escaped: this finds phased entries."""


class Result(enum.StrEnum):
    """How an operation ended."""

    DONE = "done"
    FAILED = "failed"


def new_operation_id() -> str:
    return uuid.uuid4().hex


def intent_details(operation_id: str, details: Mapping[str, Any]) -> dict[str, Any]:
    """The details of an intent entry: what is about to be done, under this operation id."""
    return {**details, PHASE: INTENT, OPERATION: operation_id}


def outcome_details(operation_id: str, result: Result, details: Mapping[str, Any]) -> dict[str, Any]:
    """The details of an outcome entry: what the operation did, or (failed) the error that stopped it."""
    return {**details, PHASE: OUTCOME, OPERATION: operation_id, RESULT: result.value}


def unfinished_intents(audit: AuditLog) -> list[AuditEntry]:
    """Intent entries with no outcome entry of the same operation, oldest first.

    Each is a change that was begun and never reported as done or failed: the process stopped
    (or is still running, for a long ingest or search begun moments ago).
    """
    query = (
        sa.select(audit_log.c.seq, audit_log.c.details)
        .where(audit_log.c.details.like(_HAS_PHASE))
        .order_by(audit_log.c.seq)
    )
    intents: dict[str, int] = {}
    with audit.database.reading() as connection:
        for seq, text in connection.execute(query):
            details = json.loads(text)
            operation = details.get(OPERATION)
            if not isinstance(operation, str):
                continue
            if details.get(PHASE) == INTENT:
                intents.setdefault(operation, seq)
            elif details.get(PHASE) == OUTCOME:
                intents.pop(operation, None)
    entries: list[AuditEntry] = []
    for seq in sorted(intents.values()):
        entries.extend(audit.entries(after_seq=seq - 1, limit=1))
    return entries
