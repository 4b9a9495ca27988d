"""Erasing deleted rows from the database's files, checked and retried, with an alarm when it keeps failing.

Deleting a row does not take its bytes off the disk. SQLite runs with `secure_delete`, which
zeroes freed pages, but the zeroed pages first go to the write-ahead log, and the old pages stay
in the main file and in older log frames until a checkpoint copies the log back and truncates it.
`PRAGMA wal_checkpoint(TRUNCATE)` cannot finish while a reader (another process, an open event
stream) still holds a snapshot from before the delete: it then answers busy=1 and leaves the old
bytes where they are. That answer is checked here; a busy checkpoint is tried again with backoff
(each try waits only briefly for readers), and when every try is busy the erasure is reported as
not done (`Erasure.erased` False) and logged as an error, so callers can say that deleted crops
may still be on disk. The next purge tries again.

PostgreSQL keeps dead row versions until VACUUM removes them, and VACUUM cannot remove those a
running transaction's snapshot can still see. The same checks apply: wait (with backoff) until no
other session holds a snapshot from before the erasure began, then VACUUM the tables. Even then
PostgreSQL does not zero the freed space, and its write-ahead log keeps the data it was sent: the
data directory of a server holding personal data must be on an encrypted disk.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from pydantic import Field, model_validator
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt, wait_exponential

from cluster.section import Section

log = structlog.get_logger(__name__)

_OLDER_SNAPSHOTS = sa.text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE pid <> pg_backend_pid() AND datname = current_database() AND backend_xmin IS NOT NULL"
    " AND age(backend_xmin) > age(CAST(CAST(:horizon AS text) AS xid))"
)
"""Other sessions of this database whose snapshot is older than `horizon` (an xid taken after the delete)."""


class ErasureConfig(Section):
    """How hard a purge tries to take deleted rows off the disk before it raises the alarm."""

    attempts: int = Field(6, ge=1, le=50, description="Tries in all, the first included.")
    wait_for_readers_s: float = Field(
        0.25, gt=0.0, le=30.0, description="How long one try waits for readers holding an old snapshot."
    )
    initial_backoff_s: float = Field(0.1, gt=0.0, le=60.0, description="Pause after the first busy try.")
    max_backoff_s: float = Field(2.0, gt=0.0, le=600.0, description="Longest pause between tries.")

    @model_validator(mode="after")
    def _initial_within_max(self) -> "ErasureConfig":
        if self.initial_backoff_s > self.max_backoff_s:
            raise ValueError(
                f"initial_backoff_s ({self.initial_backoff_s}) must not exceed max_backoff_s ({self.max_backoff_s})"
            )
        return self


@dataclass(frozen=True)
class Erasure:
    """What one erasure achieved: erased, or why deleted rows may still be readable from the files."""

    erased: bool
    attempts: int
    detail: str


@dataclass(frozen=True)
class _Try:
    done: bool
    detail: str


def erase_deleted(engine: sa.Engine, backend: str, tables: Sequence[str], config: ErasureConfig) -> Erasure:
    """Checkpoint and truncate SQLite's log, or VACUUM `tables` on PostgreSQL; retried while readers block it."""
    if backend == "sqlite":

        def attempt() -> _Try:
            return _checkpoint_sqlite(engine, config.wait_for_readers_s)

    else:
        horizon = _current_xid(engine)

        def attempt() -> _Try:
            return _vacuum_postgres(engine, tables, horizon)

    def busy(state: RetryCallState) -> None:
        outcome = state.outcome.result() if state.outcome else None
        log.warning(
            "erasure_busy", attempt=state.attempt_number, detail=outcome.detail if outcome else "", backend=backend
        )

    retrying = Retrying(
        stop=stop_after_attempt(config.attempts),
        wait=wait_exponential(multiplier=config.initial_backoff_s, max=config.max_backoff_s),
        retry=retry_if_result(lambda result: not result.done),
        before_sleep=busy,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else _Try(False, "not tried"),
    )
    result: _Try = retrying(attempt)
    attempts = retrying.statistics.get("attempt_number", 1)
    if not result.done:
        log.error(
            "erasure_failed",
            backend=backend,
            attempts=attempts,
            detail=result.detail,
            consequence="deleted rows (face crops) may still be readable from the database files; the next purge"
            " tries again",
        )
        return Erasure(False, attempts, result.detail)
    return Erasure(True, attempts, result.detail)


def _checkpoint_sqlite(engine: sa.Engine, wait_s: float) -> _Try:
    """One `wal_checkpoint(TRUNCATE)`; done only when SQLite says it was not blocked."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        (previous_ms,) = _one(cursor, "PRAGMA busy_timeout")
        cursor.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
        try:
            busy, log_frames, checkpointed = _one(cursor, "PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {int(previous_ms)}")
            cursor.close()
    finally:
        connection.close()
    if busy:
        return _Try(
            False,
            f"a reader holds a snapshot from before the delete: {checkpointed} of {log_frames} log frames copied back,"
            " the log not truncated",
        )
    return _Try(True, "write-ahead log checkpointed and truncated")


def _one(cursor: Any, statement: str) -> tuple[Any, ...]:
    """The one row a PRAGMA answers."""
    cursor.execute(statement)
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError(f"SQLite answered {statement!r} with no row")
    return tuple(row)


def _current_xid(engine: sa.Engine) -> int:
    """A transaction id newer than the delete's, as a 32-bit xid (txid_current also counts wraparounds)."""
    with engine.connect() as connection, connection.begin():
        return int(connection.execute(sa.text("SELECT txid_current()")).scalar_one()) % 2**32


def _vacuum_postgres(engine: sa.Engine, tables: Sequence[str], horizon: int) -> _Try:
    """VACUUM the tables once no other session holds a snapshot that can still see the deleted rows."""
    with engine.connect() as connection:
        with connection.begin():
            older = connection.execute(_OLDER_SNAPSHOTS, {"horizon": horizon}).scalar_one()
        if older:
            return _Try(False, f"{older} other session(s) hold a snapshot from before the delete")
        vacuuming = connection.execution_options(isolation_level="AUTOCOMMIT")
        vacuuming.exec_driver_sql(f"VACUUM {', '.join(_quoted(connection, name) for name in tables)}")
    return _Try(True, f"vacuumed {', '.join(tables)}")


def _quoted(connection: sa.Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)
