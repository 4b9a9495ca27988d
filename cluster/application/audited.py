"""Recording who did what: a change is made only once the audit log is known to take its entry.

The gallery (Milvus and its catalogue) and the audit log are different stores, so no single
transaction covers a change and its entry. What the application layer guarantees instead is the
order. `audited_change` takes the audit log's write lock, rehearses an append (inside a
savepoint that is rolled back, so a log that cannot be written, has lost its head record or is
locked by another writer stops the change before anything happens), runs the change while the
lock is held, and appends its entry in that same transaction. A change that raises writes no
entry: the transaction rolls back with it.

Holding the lock stalls other writers (alerts) for as long as the change runs, so only the
short gallery writes go through `audited_change`; and the gallery's catalogue must be another
file than the records database, or its own write would wait on the lock held here. Long work
(an ingest of thousands of posts, a search of hours of footage) calls `check_audit_log` first
and records its entry when done.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog

Result = TypeVar("Result")


def audited_change(
    audit: AuditLog,
    officer: str,
    action: AuditAction,
    subject: str,
    change: Callable[[], Result],
    details: Callable[[Result], Mapping[str, Any]],
) -> Result:
    """Run `change` under the audit log's write lock and record `details(result)` in the same transaction."""
    return audited_changes(audit, officer, action, subject, change, lambda result: [details(result)])


def audited_changes(
    audit: AuditLog,
    officer: str,
    action: AuditAction,
    subject: str,
    change: Callable[[], Result],
    each_details: Callable[[Result], Sequence[Mapping[str, Any]]],
) -> Result:
    """As `audited_change`, with one entry for each of `each_details(result)` (a bulk enrolment: one per row)."""
    with audit.database.writing() as connection:
        _rehearse(audit, connection, officer, action, subject)
        result = change()
        for details in each_details(result):
            audit.append(connection, officer, action, subject, details)
    return result


def check_audit_log(audit: AuditLog, officer: str, action: AuditAction, subject: str) -> None:
    """Raise (AuditLogError, SQLAlchemyError) now if the entry of a long piece of work could not be written."""
    with audit.database.writing() as connection:
        _rehearse(audit, connection, officer, action, subject)


def _rehearse(audit: AuditLog, connection: sa.Connection, officer: str, action: AuditAction, subject: str) -> None:
    """Append an empty entry and roll it back: every check an append makes, with nothing left behind."""
    savepoint = connection.begin_nested()
    try:
        audit.append(connection, officer, action, subject)
    finally:
        savepoint.rollback()
