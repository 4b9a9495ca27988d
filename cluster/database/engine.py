"""The database that keeps the durable records: the audit log and the alerts it covers.

SQLite (a file path) by default, PostgreSQL through a `postgresql://` URL, both through
SQLAlchemy Core so one code path serves both. What differs between them lives here and only
here: how a write transaction takes the database-wide write lock (SQLite `BEGIN IMMEDIATE`,
a PostgreSQL transaction-scoped advisory lock), how reads get one consistent snapshot, and
what deleting really erases from the files.

Writes are serialised, in this process by a lock and across processes by the database: each
audit append must see the entry before it, and each alert transition the state it changes.
A deployment raises tens of alerts an hour, so one writer at a time costs nothing that matters.
"""

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from cluster.database.erasure import Erasure, ErasureConfig, erase_deleted
from cluster.private_files import data_home, private_file, private_folder

SUPPORTED_TARGETS = "a file path (SQLite), sqlite:///PATH, or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
SQLITE_BUSY_TIMEOUT_S = 30.0
POSTGRES_WRITE_LOCK_KEY = 0x4C4652_A1E57
"""Key of the advisory lock that serialises writers across processes ('LFR', 'alerts')."""

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside the database, holding the same records."""

UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError)
"""What a write raises while the database is briefly unavailable (locked past the busy timeout, read-only,
unreachable): worth retrying, unlike a refused or malformed change."""

WRITE_OPTION = "lfr_write"
"""Execution option that marks a connection opened by `Database.writing()`."""
AFTER_COMMIT_OPTION = "lfr_after_commit"
"""Execution option holding the callbacks `Database.after_commit` registered for the open write transaction."""

Backend = Literal["sqlite", "postgresql"]


def database_url(target: str | Path) -> URL:
    """The SQLAlchemy URL for a file path or a URL, without touching the disk; errors say what is accepted."""
    text = str(target).strip()
    if not text:
        raise ValueError(f"no database given: use {SUPPORTED_TARGETS}")
    if "://" not in text:
        return URL.create("sqlite+pysqlite", database=str(Path(text).expanduser().absolute()))
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise ValueError(f"cannot parse database URL {text!r}: {exc}; use {SUPPORTED_TARGETS}") from exc
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("an in-memory SQLite database loses every record on exit: give a file path")
        return URL.create("sqlite+pysqlite", database=str(Path(url.database).expanduser().absolute()))
    raise ValueError(f"unsupported database {url.drivername!r}; use {SUPPORTED_TARGETS}")


class Database:
    """One engine over SQLite or PostgreSQL, with serialised write transactions and consistent reads.

    create: when False, a SQLite file that does not exist is an error instead of a new empty
    database (for commands that only read, such as `lfr audit verify`). busy_timeout_s: how long
    a SQLite writer waits for another's write lock before its write fails. erasure: how hard
    `erase_deleted` tries before it reports deleted rows as possibly still on disk.
    """

    def __init__(
        self,
        target: str | Path,
        *,
        create: bool = True,
        busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S,
        erasure: ErasureConfig | None = None,
    ) -> None:
        if not busy_timeout_s >= 0.0:
            raise ValueError(f"busy_timeout_s must be a number of seconds >= 0, got {busy_timeout_s}")
        self.url = database_url(target)
        self.erasure = erasure or ErasureConfig()
        if self.backend == "sqlite":
            _prepare_sqlite_file(Path(self.url.database or ""), create)
        if self.backend == "sqlite":
            self.engine = sa.create_engine(self.url, connect_args={"timeout": busy_timeout_s})
            sa.event.listen(self.engine, "connect", partial(_configure_sqlite_connection, busy_timeout_s))
            sa.event.listen(self.engine, "begin", _begin_sqlite_transaction)
        else:
            self.engine = sa.create_engine(self.url, pool_pre_ping=True)
        self._write_lock = threading.Lock()
        self._writer_thread: int | None = None

    @property
    def backend(self) -> Backend:
        return "sqlite" if self.url.get_backend_name() == "sqlite" else "postgresql"

    def describe(self) -> str:
        """The URL without its password, for logs and messages."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """A transaction that holds the database-wide write lock until it commits or rolls back."""
        if self._writer_thread == threading.get_ident():
            raise RuntimeError("nested write transaction: pass the open connection down instead of opening another")
        committed: list[Callable[[], None]] = []
        with self._write_lock:
            self._writer_thread = threading.get_ident()
            try:
                with self.engine.connect() as connection:
                    connection.execution_options(**{WRITE_OPTION: True, AFTER_COMMIT_OPTION: committed})
                    with connection.begin():
                        if self.backend == "postgresql":
                            connection.execute(
                                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_WRITE_LOCK_KEY}
                            )
                        yield connection
            finally:
                self._writer_thread = None
        for callback in committed:
            callback()

    @staticmethod
    def after_commit(connection: sa.Connection, callback: Callable[[], None]) -> None:
        """Run `callback` once the write transaction of `connection` has committed (never if it rolls back).

        It runs after the write lock is released, so it may read the database or do slow work."""
        callbacks = connection.get_execution_options().get(AFTER_COMMIT_OPTION)
        if callbacks is None:
            raise RuntimeError("after_commit needs a connection from Database.writing()")
        callbacks.append(callback)

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A read-only transaction that sees one snapshot across all of its queries."""
        with self.engine.connect() as connection:
            if self.backend == "postgresql":
                connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield connection

    def has_tables(self, *names: str) -> bool:
        with self.reading() as connection:
            inspector = sa.inspect(connection)
            return all(inspector.has_table(name) for name in names)

    def erase_deleted(self, tables: Sequence[str]) -> Erasure:
        """Make rows deleted from `tables` unrecoverable from the database files, as far as the backend allows.

        SQLite runs with secure_delete, which zeroes freed pages in the main file; old copies in
        the write-ahead log go when it is checkpointed and truncated. PostgreSQL's tables are
        vacuumed. Either is blocked by a reader holding an older snapshot: it is retried, and
        the result says whether it succeeded (see `cluster.database.erasure`).
        """
        return erase_deleted(self.engine, self.backend, tables, self.erasure)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Database":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _prepare_sqlite_file(path: Path, create: bool) -> None:
    """Check the SQLite file's folder; when creating, make the file and its companions owner-only (0600).

    SQLite gives its -wal and -shm files the database file's mode, so the file is created 0600
    before SQLite opens it; existing files that others could read are narrowed. LFR's own data
    folder is created (0700) when missing; any other missing folder is an error, so a mistyped
    path does not scatter records.
    """
    if not path.parent.is_dir():
        if not (create and path.parent == data_home()):
            raise ValueError(f"cannot keep the SQLite database {path}: directory {path.parent} does not exist")
        private_folder(path.parent)
    if not create:
        if not path.is_file():
            raise ValueError(f"no SQLite database at {path}: check the path")
        return
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            private_file(companion)


def _configure_sqlite_connection(busy_timeout_s: float, dbapi_connection, _connection_record) -> None:
    """Transactions are begun by `_begin_sqlite_transaction`, not by the driver's own guesswork."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA secure_delete = ON")
    cursor.close()


def _begin_sqlite_transaction(connection: sa.Connection) -> None:
    """Writers take SQLite's write lock when they begin, so a read-then-write cannot interleave."""
    if connection.get_execution_options().get(WRITE_OPTION):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")
