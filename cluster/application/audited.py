"""Recording who did what to the gallery: an intent before the change, its outcome after.

The gallery (Milvus and its catalogue) and the audit log are different stores, so no single
transaction covers a change and its entry. What the application layer guarantees instead is the
order (see `cluster.audit.intents`): the intent entry is committed first, so a log that cannot be
written, has lost its head record or refuses the entry stops the change before anything
happens; the change runs; then its outcome is recorded, "done" with what it did or "failed"
with the error. A crash between the two leaves the intent without an outcome, which
`lfr audit unfinished` lists. No lock is held while the change runs, so a long one (an ingest of
thousands of posts, a search of hours of footage) stalls no other writer.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import structlog

from cluster.audit.actions import AuditAction
from cluster.audit.entry import AuditEntry
from cluster.audit.intents import Result, intent_details, new_operation_id, outcome_details
from cluster.audit.log import AuditLog

log = structlog.get_logger(__name__)

Outcome = TypeVar("Outcome")

NO_DETAILS: Mapping[str, Any] = {}


class AuditedOperation:
    """One change: its intent recorded on construction, then exactly one outcome (`done` or `failed`)."""

    def __init__(
        self, audit: AuditLog, officer: str, action: AuditAction, subject: str, intent: Mapping[str, Any] = NO_DETAILS
    ) -> None:
        self.audit = audit
        self.officer = officer
        self.action = action
        self.subject = subject
        self.operation_id = new_operation_id()
        self.intent = audit.record(officer, action, subject, intent_details(self.operation_id, intent))

    def done(self, details: Mapping[str, Any]) -> AuditEntry:
        """Record that the change was made, with what it did."""
        return self.done_each([details])[0]

    def done_each(self, each_details: Sequence[Mapping[str, Any]]) -> list[AuditEntry]:
        """As `done`, one outcome entry per item (a bulk enrolment: one per row), in one transaction."""
        with self.audit.database.writing() as connection:
            return [
                self.audit.append(
                    connection,
                    self.officer,
                    self.action,
                    self.subject,
                    outcome_details(self.operation_id, Result.DONE, details),
                )
                for details in each_details
            ]

    def failed(self, error: BaseException, details: Mapping[str, Any] = NO_DETAILS) -> AuditEntry | None:
        """Record that the change stopped on `error` (part of it may be made: `details` says how far it got).

        Never raises: the caller raises the error itself; when even this entry cannot be written
        the intent stays unfinished, which the log shows, and the failure is logged.
        """
        try:
            return self.audit.record(
                self.officer,
                self.action,
                self.subject,
                outcome_details(self.operation_id, Result.FAILED, {**details, "error": _first_line(error)}),
            )
        except Exception as unrecorded:
            log.error(
                "audit_outcome_not_recorded",
                operation=self.operation_id,
                error=_first_line(error),
                audit_error=str(unrecorded),
            )
            return None


def audited_change(
    audit: AuditLog,
    officer: str,
    action: AuditAction,
    subject: str,
    change: Callable[[], Outcome],
    details: Callable[[Outcome], Mapping[str, Any]],
    intent: Mapping[str, Any] = NO_DETAILS,
) -> Outcome:
    """Record `intent`, run `change`, then record `details(result)` as its outcome (or the error, and raise it)."""
    return audited_changes(audit, officer, action, subject, change, lambda result: [details(result)], intent)


def audited_changes(
    audit: AuditLog,
    officer: str,
    action: AuditAction,
    subject: str,
    change: Callable[[], Outcome],
    each_details: Callable[[Outcome], Sequence[Mapping[str, Any]]],
    intent: Mapping[str, Any] = NO_DETAILS,
) -> Outcome:
    """As `audited_change`, with one outcome entry for each of `each_details(result)`."""
    operation = AuditedOperation(audit, officer, action, subject, intent)
    try:
        result = change()
    except BaseException as exc:
        operation.failed(exc)
        raise
    operation.done_each(each_details(result))
    return result


def check_audit_log(audit: AuditLog, officer: str, action: AuditAction, subject: str) -> None:
    """Raise (AuditLogError, SQLAlchemyError) now if the entry of a search could not be written.

    A search changes nothing, so it has no intent entry; its one entry is written before its
    results are shown. This checks the log would take it before the search's long work starts.
    """
    with audit.database.writing() as connection:
        savepoint = connection.begin_nested()
        try:
            audit.append(connection, officer, action, subject)
        finally:
            savepoint.rollback()


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
