"""A purge's deleted crops leave the disk, or the alarm says they did not: a real reader holds a real snapshot.

SQLite: a second connection to the same file opens a read transaction, as an open event stream or
another process does, which keeps the write-ahead log from being checkpointed and truncated. The
crop's bytes (a real lfw10 JPEG with a marker appended) are then still in the files; the purge
must say so (`crops_erased` False, an error event), and once the reader lets go the erasure must
succeed and the bytes be gone from the database file and its log. PostgreSQL: the same reader
keeps VACUUM from removing the dead rows; once it lets go, the crop's TOAST storage is vacuumed
away (the relation file truncated to nothing).
"""

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
import structlog
from structlog.testing import capture_logs

from cluster.alerts.store import AlertStore
from cluster.audit.log import AuditLog
from cluster.database.engine import Database
from cluster.database.erasure import ErasureConfig
from tests.test_alert_store import CROPS, DAY, T0, SetClock, make_alert, make_sighting

MARKER = b"LFR-CROP-MARKER-" * 64
QUICK = ErasureConfig(attempts=3, wait_for_readers_s=0.05, initial_backoff_s=0.01, max_backoff_s=0.05)
"""Few, short tries, so that a blocked erasure gives up in well under a second."""


def files_hold(folder: Path, needle: bytes) -> bool:
    return any(needle in path.read_bytes() for path in folder.iterdir() if path.is_file())


@contextmanager
def when_logged(event: str, action: Callable[[], None]) -> Iterator[None]:
    """Run `action` in the logging thread as soon as `event` is logged: it sees what the code does at that moment."""
    before = structlog.get_config()

    def processor(_logger, _method, event_dict):
        if event_dict.get("event") == event:
            action()
        raise structlog.DropEvent

    structlog.configure(processors=[processor])
    try:
        yield
    finally:
        structlog.configure(**before)


@pytest.fixture
def clock() -> SetClock:
    return SetClock(T0 + 60)


@pytest.fixture
def sqlite_store(tmp_path, clock) -> Iterator[AlertStore]:
    with Database(tmp_path / "alerts.sqlite3", erasure=QUICK) as database:
        store = AlertStore(database, AuditLog(database, clock=clock), clock=clock)
        store.save(make_alert("old", sightings=(make_sighting(crop=CROPS[3] + MARKER),), created_at=T0 - 40 * DAY))
        store.save(make_alert("recent", sightings=(make_sighting("cam:2", crop=CROPS[1]),)))
        assert files_hold(tmp_path, MARKER)
        yield store


def open_reader(path: Path) -> sqlite3.Connection:
    """Another connection that reads inside a transaction and so holds its snapshot until it ends."""
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM sightings").fetchone() == (2,)
    return reader


def test_the_alarm_fires_while_a_reader_holds_a_snapshot_and_the_next_purge_erases(sqlite_store, tmp_path):
    reader = open_reader(tmp_path / "alerts.sqlite3")
    with capture_logs() as logs:
        blocked = sqlite_store.purge(now=T0)
    assert (blocked.alerts, blocked.crops) == (1, 1)
    assert not blocked.crops_erased and "reader holds a snapshot" in blocked.erasure
    (alarm,) = [entry for entry in logs if entry["log_level"] == "error"]
    assert alarm["event"] == "erasure_failed" and alarm["attempts"] == QUICK.attempts
    assert [entry["event"] for entry in logs].count("erasure_busy") == QUICK.attempts - 1
    assert files_hold(tmp_path, MARKER), "the reader's snapshot keeps the old pages; if this fails the test is void"

    reader.execute("COMMIT")
    reader.close()
    later = sqlite_store.purge(now=T0)
    assert later.alerts == 0, "nothing new to purge: the erasure of the earlier purge is retried all the same"
    assert later.crops_erased and later.erasure == "write-ahead log checkpointed and truncated"
    assert not files_hold(tmp_path, MARKER)
    assert (tmp_path / "alerts.sqlite3-wal").stat().st_size == 0
    assert [a.alert_id for a in sqlite_store.list().alerts] == ["recent"]


def test_a_reader_that_lets_go_between_tries_lets_the_same_purge_erase(sqlite_store, tmp_path):
    reader = open_reader(tmp_path / "alerts.sqlite3")
    released: list[bool] = []

    def release() -> None:
        if not released:
            reader.execute("COMMIT")
            reader.close()
            released.append(True)

    with when_logged("erasure_busy", release):
        result = sqlite_store.purge(now=T0)
    assert released == [True], "the first try must have been blocked by the reader"
    assert result.crops == 1 and result.crops_erased
    assert not files_hold(tmp_path, MARKER)


@pytest.fixture(scope="module")
def postgres():
    from loadtest.postgres_server import PostgresServer, find_bin_dir, install_hint

    if find_bin_dir() is None:
        pytest.skip(f"PostgreSQL is not installed: {install_hint()}")
    with PostgresServer() as server:
        yield server


def toast_bytes(database: Database) -> int:
    """Bytes of the sightings table's TOAST relation, where PostgreSQL keeps crops larger than 2 kB."""
    query = sa.text("SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE relname = 'sightings'")
    with database.reading() as connection:
        return int(connection.execute(query).scalar_one())


@pytest.mark.slow
def test_postgresql_a_reader_holding_a_snapshot_blocks_the_vacuum_and_raises_the_alarm(postgres, clock):
    url = postgres.empty_database()
    with Database(url, erasure=QUICK) as database:
        store = AlertStore(database, AuditLog(database, clock=clock), clock=clock)
        store.save(make_alert("old", sightings=(make_sighting(crop=CROPS[3] + MARKER),), created_at=T0 - 40 * DAY))
        assert toast_bytes(database) > 0
        with psycopg.connect(database.url.set(drivername="postgresql").render_as_string(False)) as reader:
            reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            assert reader.execute("SELECT count(*) FROM sightings").fetchone() == (1,)
            with capture_logs() as logs:
                blocked = store.purge(now=T0)
            assert blocked.crops == 1 and not blocked.crops_erased
            assert "hold a snapshot from before the delete" in blocked.erasure
            assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == ["erasure_failed"]
            assert toast_bytes(database) > 0
            reader.rollback()
        later = store.purge(now=T0)
        assert later.crops_erased and later.erasure.startswith("vacuumed sightings")
        assert toast_bytes(database) == 0, "the vacuum removed the crop's dead TOAST rows and truncated the file"
