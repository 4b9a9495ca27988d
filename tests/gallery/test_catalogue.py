"""The catalogue in the records database: watchlists, batch numbers, frozen bounds and versions (no Milvus needed).

Every test runs on SQLite and on PostgreSQL (slow); two processes share one catalogue through the database.
"""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database
from cluster.database.schema import SchemaError
from cluster.gallery.attributes import PersonAttributes
from cluster.gallery.catalogue import PENDING_BATCH_TIMEOUT_S, Catalogue
from cluster.gallery.errors import UnknownWatchlistError, WatchlistExistsError
from cluster.gallery.fingerprints import FrozenEntry
from cluster.gallery.records import PersonRecord, Watchlist
from cluster.matching.calibration import CalibratedThreshold
from loadtest.postgres_server import PostgresServer, find_bin_dir, install_hint
from tests.records import RECORDS_FILE, records_database

NOW = 1_800_000_000
FAR_FUTURE = 4_102_444_800
"""2100-01-01: past 2038, so a 32-bit time column would not hold it."""
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]
CALIBRATION = CalibratedThreshold(0.61, 0.001, 10, 1e-4, 0.93, "arcface", "cohort-digest")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if find_bin_dir() is None:
        pytest.skip(f"PostgreSQL is not installed: {install_hint()}")
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    """A records database at head: a SQLite file, or an emptied PostgreSQL database."""
    if request.param == "sqlite":
        target = str(tmp_path / RECORDS_FILE)
    else:
        target = request.getfixturevalue("postgres").empty_database()
    records_database(target).close()
    return target


@pytest.fixture
def catalogue(database_url) -> Iterator[Catalogue]:
    catalogue = Catalogue.from_config(DatabaseConfig(url=database_url))
    catalogue.create_watchlist(Watchlist("wl-a", "A", "reason", "Supt. X", NOW, NOW + 1000))
    yield catalogue
    catalogue.close()


def test_watchlists_are_unique_and_unknown_ones_are_named(catalogue):
    with pytest.raises(WatchlistExistsError, match="'wl-a' already exists"):
        catalogue.create_watchlist(Watchlist("wl-a", "A", "r", "o", NOW, NOW + 1))
    with pytest.raises(UnknownWatchlistError, match=r"no watchlist 'wl-b'.*\(known: wl-a\)"):
        catalogue.watchlist("wl-b")
    assert [w.watchlist_id for w in catalogue.watchlists()] == ["wl-a"]


def test_versions_stop_before_the_first_pending_batch_and_skip_failed_ones(catalogue):
    batches = [catalogue.begin_batch("wl-a", NOW) for _ in range(4)]
    assert batches == [1, 2, 3, 4]
    catalogue.finish_batch("wl-a", 1, committed=True, entries=5)
    catalogue.finish_batch("wl-a", 2, committed=False, entries=0)
    catalogue.finish_batch("wl-a", 4, committed=True, entries=5)
    assert catalogue.frozen_bounds("wl-a", NOW) == (2, (2,)), "batch 3 is still being written"
    catalogue.finish_batch("wl-a", 3, committed=True, entries=5)
    assert catalogue.frozen_bounds("wl-a", NOW) == (4, (2,))


def test_a_batch_abandoned_by_a_dead_enroller_does_not_block_later_versions(catalogue):
    """Regression: a process that died mid-enrolment left its batch pending, and no later batch could be frozen."""
    catalogue.begin_batch("wl-a", NOW)
    catalogue.begin_batch("wl-a", NOW + 10)
    catalogue.finish_batch("wl-a", 2, committed=True, entries=1)
    assert catalogue.frozen_bounds("wl-a", NOW + 20) == (0, ())
    assert catalogue.frozen_bounds("wl-a", NOW + PENDING_BATCH_TIMEOUT_S + 1) == (2, (1,))


def test_versions_are_numbered_and_reused_when_nothing_changed(catalogue):
    first = catalogue.add_version("wl-a", 3, (2,), 10, "digest-1", NOW)
    assert (first.version_id, first.watchlist_expires_at) == ("wl-a@v1", NOW + 1000)
    assert catalogue.add_version("wl-a", 3, (2,), 10, "digest-1", NOW + 5) == first
    second = catalogue.add_version("wl-a", 3, (2,), 9, "digest-2", NOW + 6)
    assert second.number == 2 and catalogue.versions("wl-a") == [first, second]
    assert catalogue.version("wl-a@v2") == second


def test_a_calibrated_version_keeps_its_entries_and_a_far_expiry(catalogue):
    catalogue.create_watchlist(Watchlist("wl-far", "Far", "reason", "Supt. X", NOW, FAR_FUTURE))
    entries = [FrozenEntry("e1", FAR_FUTURE, "f" * 64), FrozenEntry("e2", NOW + 5, "0" * 64)]
    version = catalogue.add_version("wl-far", 1, (), 2, "digest", NOW, CALIBRATION, entries)
    assert (version.calibration, version.watchlist_expires_at) == (CALIBRATION, FAR_FUTURE)
    assert sorted(catalogue.version_entries(version), key=lambda e: e.entry_id) == entries
    assert catalogue.add_version("wl-far", 1, (), 2, "digest", NOW + 1, CALIBRATION) == version
    assert catalogue.add_version("wl-far", 1, (), 2, "digest", NOW + 1).number == 2, "uncalibrated is another version"


def test_every_opening_of_the_database_sees_one_catalogue(catalogue, database_url):
    """Regression: each host kept a file of its own, so a watchlist made on one was unknown on another."""
    other = Catalogue.from_config(DatabaseConfig(url=database_url))
    try:
        assert [w.watchlist_id for w in other.watchlists()] == ["wl-a"]
        assert other.begin_batch("wl-a", NOW) == 1
        assert catalogue.begin_batch("wl-a", NOW) == 2, "batch numbers are allocated in the shared database"
    finally:
        other.close()


CHILD = """
import sys
from cluster.database.config import DatabaseConfig
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.attributes import PersonAttributes
from cluster.gallery.records import PersonRecord, Watchlist

catalogue = Catalogue.from_config(DatabaseConfig(url=sys.argv[1]))
batch = catalogue.begin_batch("wl-a", 1_800_000_000)
catalogue.finish_batch("wl-a", batch, committed=True, entries=3)
catalogue.create_watchlist(Watchlist("wl-child", "Child", "reason", "Supt. Y", 1_800_000_000, 1_800_001_000))
print(batch)
"""


@pytest.mark.slow
def test_another_process_writes_the_catalogue_this_one_reads(catalogue, database_url):
    """Two processes (as a forwarder on another node and the CLI) share the catalogue through the database URL."""
    catalogue.begin_batch("wl-a", NOW)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, database_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "2"
    assert [w.watchlist_id for w in catalogue.watchlists()] == ["wl-a", "wl-child"]
    catalogue.finish_batch("wl-a", 1, committed=True, entries=1)
    assert catalogue.frozen_bounds("wl-a", NOW) == (2, ())


def test_a_database_without_the_catalogue_tables_is_refused_with_what_to_run(tmp_path):
    with Database(tmp_path / "empty.sqlite3") as empty:
        with pytest.raises(SchemaError, match="run `lfr db upgrade`"):
            Catalogue(empty)


def test_what_enrolment_records_of_a_person_is_kept_until_replaced_and_forgotten_with_them(catalogue):
    """A later enrolment without attributes keeps those recorded (and the first recorded_at); one with attributes
    replaces them; forgetting the person deletes the record."""
    first = PersonRecord("wl-a", "p1", "wanted", PersonAttributes(sex="female", ethnicity="asian"), "PC 1", NOW)
    catalogue.record_people([first, PersonRecord("wl-a", "p2", "missing", PersonAttributes(), "PC 1", NOW)])
    catalogue.record_people([PersonRecord("wl-a", "p1", "missing", PersonAttributes(), "PC 9", NOW + 60)])
    p1, p2 = catalogue.people("wl-a")
    assert (p1.attributes, p1.recorded_at, p1.category, p1.recorded_by) == (first.attributes, NOW, "missing", "PC 9")
    assert p2.attributes.recorded() == {}
    catalogue.record_people([PersonRecord("wl-a", "p1", "missing", PersonAttributes(age_band="18_24"), "PC 9", NOW)])
    assert catalogue.people("wl-a")[0].attributes.recorded() == {"age_band": "18_24"}
    catalogue.forget_person("wl-a", "p1")
    assert [person.person_id for person in catalogue.people("wl-a")] == ["p2"]
