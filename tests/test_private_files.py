"""Records and reports are owner-only whatever the umask, and the default database has one well-known place.

A real SQLite database (its -wal and -shm included) and real report files, created under a
umask of 0022, which leaves files world-readable unless the code sets their mode itself.
"""

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cluster.alerts.model import Alert, AlertState, Sighting
from cluster.alerts.opening import open_alert_store
from cluster.audit.config import AuditConfig
from cluster.config import LfrConfig, load_config
from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database
from cluster.gallery.records import WatchlistVersion
from cluster.private_files import data_home
from cluster.retro.html_report import write_html_report
from cluster.retro.json_report import write_json_report
from cluster.retro.report import RetroReport

REPO = Path(__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask():
    """The common default umask, under which a plain open() makes files 0644 and folders 0755."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def homes(tmp_path, monkeypatch) -> Path:
    """HOME in a temporary folder, LFR_HOME and XDG_DATA_HOME unset, run from an unrelated folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LFR_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return tmp_path


def an_alert() -> Alert:
    embedding = np.zeros(128, dtype=np.float32)
    embedding[0] = 1.0
    sighting = Sighting("cam_1:t1", "cam_1", "p_1", "wl_1", 0.95, 10.0, 12.0, 5, embedding, crop_jpeg=b"\xff\xd8crop")
    return Alert("a1", "dep_1", "p_1", "wl_1", AlertState.NEW, (sighting,), 0.5, 12.0, 12.0, 0.9, "dlib-resnet-v1")


def test_the_database_and_its_companions_are_owner_only(tmp_path, permissive_umask):
    path = tmp_path / "records.sqlite3"
    store = open_alert_store(DatabaseConfig(url=str(path)), AuditConfig())
    store.save(an_alert())
    companions = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    assert all(p.exists() for p in companions), "WAL mode keeps -wal and -shm beside the database"
    assert [mode(p) for p in (path, *companions)] == [0o600, 0o600, 0o600]
    store.database.close()


def test_an_existing_database_others_could_read_is_narrowed(tmp_path, permissive_umask):
    path = tmp_path / "records.sqlite3"
    Database(path).close()
    for file in tmp_path.iterdir():
        file.chmod(0o644)
    narrowed = sorted(file.name for file in tmp_path.iterdir())
    Database(path).close()
    assert {file.name: mode(file) for file in tmp_path.iterdir()} == dict.fromkeys(narrowed, 0o600)


def test_a_read_only_command_leaves_the_file_as_it_is(tmp_path):
    path = tmp_path / "records.sqlite3"
    Database(path).close()
    path.chmod(0o640)
    Database(path, create=False).close()
    assert mode(path) == 0o640


def test_the_default_database_is_in_the_data_folder_whatever_the_working_directory(homes, permissive_umask):
    expected = homes / "home" / ".local" / "share" / "lfr" / "lfr.sqlite3"
    assert Path(DatabaseConfig().url) == expected and Path(LfrConfig().database.url) == expected
    assert Path(load_config(REPO / "configs" / "default.yaml").database.url) == expected
    store = open_alert_store(DatabaseConfig(), AuditConfig())
    store.save(an_alert())
    store.database.close()
    assert expected.is_file() and mode(expected) == 0o600 and mode(expected.parent) == 0o700
    assert not list((homes / "elsewhere").iterdir()), "nothing may be written to the working directory"


def test_lfr_home_then_xdg_data_home_choose_the_data_folder(homes, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(homes / "xdg"))
    assert data_home() == homes / "xdg" / "lfr"
    assert Path(DatabaseConfig().url) == homes / "xdg" / "lfr" / "lfr.sqlite3"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    assert data_home() == homes / "home" / ".local" / "share" / "lfr", "a relative XDG_DATA_HOME is ignored"
    monkeypatch.setenv("LFR_HOME", str(homes / "lfr-home"))
    assert Path(DatabaseConfig().url) == homes / "lfr-home" / "lfr.sqlite3"
    assert DatabaseConfig().dead_letter_folder() == homes / "lfr-home" / "lfr.sqlite3.dead-letters"


def test_an_explicit_path_is_used_as_given(homes):
    explicit = homes / "elsewhere" / "mine.sqlite3"
    assert Path(DatabaseConfig(url="mine.sqlite3").url) == Path("mine.sqlite3")
    Database("mine.sqlite3").close()
    assert explicit.is_file() and not (homes / "home").exists()
    with pytest.raises(ValueError, match="does not exist"):
        Database(homes / "missing" / "mine.sqlite3")


def test_retro_reports_are_owner_only(tmp_path, permissive_umask):
    version = WatchlistVersion("wl_1", 1, 1, (), 3, "digest", 12, 2_000_000_000)
    report = RetroReport(version, 0.9, "dlib-resnet-v1", 1.0, "PC 1", 10.0, 20.0, (), ())
    written = [write_json_report(report, tmp_path), write_html_report(report, tmp_path)]
    assert [mode(path) for path in written] == [0o600, 0o600]


def test_opening_the_database_again_keeps_this_process_s_sqlite_locks(tmp_path):
    """Closing any descriptor of a file drops the process's POSIX locks on it: SQLite's locks must survive a reopen.

    A connection here holds the write lock; opening the same database again (as a second store in
    the same process does) must not release it, or another process could write (or truncate the
    -shm under this one's mapping: a bus error) while this one believes it holds the lock.
    """
    path = tmp_path / "records.sqlite3"
    with Database(path):
        pass
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode = WAL")
        holder.execute("BEGIN IMMEDIATE")
        with Database(path):
            pass
        other = subprocess.run(
            [sys.executable, "-c", WRITE_AT_ONCE, str(path)], capture_output=True, text=True, timeout=60
        )
        assert other.stdout.strip() == "locked", other.stdout + other.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()


WRITE_AT_ONCE = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    connection.execute("BEGIN IMMEDIATE")
    print("written")
except sqlite3.OperationalError as error:
    print("locked" if "locked" in str(error) else error)
"""
