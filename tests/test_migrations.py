"""The records schema under Alembic: a database written by the code of commit 2783d9c (before issue 14), with
alerts, crops, adjudications, a keyed audit log, users and keys in it, is upgraded by `lfr db upgrade` and
loses nothing; its audit chain still verifies and takes new entries with the same key. The watchlist
catalogue file of that era (`catalogue.sql`, written by `make_catalogue.py`) is then copied in by `lfr db
import-catalogue`, every row of it, audited.

The old database is `tests/data/records_2783d9c/records.sql`, written by that commit's own code
(`make_records.py` beside it says how). On PostgreSQL the same rows are loaded into the revision-1
tables, whose layout a test here checks against the old code's DDL.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from cluster.alerts import events as alert_event_tables
from cluster.alerts import tables as alert_tables
from cluster.alerts.store import AlertStore
from cluster.api import keys as key_tables
from cluster.api.keys import ApiKeys
from cluster.audit import tables as audit_tables
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.cases import tables as case_tables
from cluster.cli.main import build_parser
from cluster.config import load_config
from cluster.database.engine import Database
from cluster.database.migrations.layouts import AUDIT_BY_SUBJECT_INDEX, revision_1_tables
from cluster.database.schema import SchemaError, head_revision, schema_state
from cluster.deployment import records as deployment_record_tables
from cluster.gallery import catalogue_tables
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.catalogue_import import FILE_TABLES
from cluster.live import status_board as status_tables
from cluster.live.status_board import StatusBoard
from cluster.social import records as social_post_tables
from loadtest.postgres_server import PostgresServer, find_bin_dir, install_hint
from tests.audit_key import TEST_SEALER

OLD_RECORDS = Path(__file__).parent / "data" / "records_2783d9c" / "records.sql"
OLD_CATALOGUE = OLD_RECORDS.with_name("catalogue.sql")
DEFAULT_KEY_LIFETIME_S = 90 * 86_400
OLD_TABLES = sorted(table.name for table in revision_1_tables().sorted_tables)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]


def lfr(*argv: str) -> int:
    """An `lfr` command in this process, as `lfr` runs it but without reconfiguring logging to this test's stderr."""
    args = build_parser().parse_args(list(argv))
    return int(args.handler(args, load_config(None)))


def current_metadata() -> sa.MetaData:
    """Every table the code reads and writes, as its modules define them."""
    combined = sa.MetaData()
    modules = (
        alert_tables,
        alert_event_tables,
        audit_tables,
        key_tables,
        status_tables,
        catalogue_tables,
        deployment_record_tables,
        case_tables,
        social_post_tables,
    )
    for module in modules:
        for table in module.metadata.tables.values():
            table.to_metadata(combined)
    return combined


def old_sqlite(folder: Path) -> Path:
    path = folder / "old.sqlite3"
    connection = sqlite3.connect(path)
    connection.executescript(OLD_RECORDS.read_text())
    connection.close()
    return path


def old_catalogue(folder: Path) -> Path:
    """The catalogue file a host kept at commit 2783d9c (gallery.catalogue_path)."""
    path = folder / "gallery-catalogue.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript(OLD_CATALOGUE.read_text())
    connection.close()
    return path


def file_rows(path: Path) -> dict[str, list[tuple]]:
    """Every row of the catalogue file, by the records table that takes it, sorted."""
    with closing(sqlite3.connect(path)) as connection:
        present = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {
            FILE_TABLES[name]: sorted(_ordered(connection.execute(f"SELECT * FROM {name}"), FILE_TABLES[name]))
            for name in FILE_TABLES
            if name in present
        }


def _ordered(cursor: sqlite3.Cursor, table: str) -> list[tuple]:
    names = [column[0] for column in cursor.description]
    order = catalogue_tables.metadata.tables[table].columns.keys()
    return [tuple(dict(zip(names, row))[name] for name in order) for row in cursor]


def catalogue_rows(database: Database) -> dict[str, list[tuple]]:
    with database.reading() as connection:
        return {
            table.name: sorted(tuple(row) for row in connection.execute(table.select()))
            for table in catalogue_tables.TABLES
        }


def rows(database: Database) -> dict[str, list[dict]]:
    """Every row of the old tables, by table, in a stable order."""
    found: dict[str, list[dict]] = {}
    with database.reading() as connection:
        for table in revision_1_tables().sorted_tables:
            reflected = sa.Table(table.name, sa.MetaData(), autoload_with=connection)
            query = sa.select(reflected).order_by(*reflected.primary_key.columns)
            found[table.name] = [dict(row._mapping) for row in connection.execute(query)]
    return found


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if find_bin_dir() is None:
        pytest.skip(f"PostgreSQL is not installed: {install_hint()}")
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def old_database(request, tmp_path) -> str:
    """The URL or path of a database holding the 2783d9c records, not yet upgraded."""
    sqlite_path = old_sqlite(tmp_path)
    if request.param == "sqlite":
        return str(sqlite_path)
    url = request.getfixturevalue("postgres").empty_database()
    with Database(sqlite_path) as source, Database(url) as target:
        data = rows(source)
        tables = revision_1_tables()
        with target.writing() as connection:
            tables.create_all(connection)
            for table in tables.sorted_tables:
                if data[table.name]:
                    connection.execute(table.insert(), data[table.name])
            if target.backend == "postgresql":
                connection.execute(
                    sa.text("SELECT setval('adjudications_id_seq', (SELECT max(id) FROM adjudications))")
                )
                connection.execute(
                    sa.text("SELECT setval('alert_events_event_id_seq', (SELECT max(event_id) FROM alert_events))")
                )
    return url


def test_revision_1_is_the_schema_the_old_code_made(tmp_path):
    """The frozen layout of revision 1 must be what commit 2783d9c created, or stamping would misjudge old files."""
    with Database(old_sqlite(tmp_path)) as database, database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), revision_1_tables()) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_new_database_is_made_at_head_exactly_as_the_code_defines_it(backend, request, tmp_path):
    target = tmp_path / "new.sqlite3" if backend == "sqlite" else request.getfixturevalue("postgres").empty_database()
    with Database(target) as database:
        AuditLog(database, TEST_SEALER)
        assert schema_state(database).at_head
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, current_metadata()) == []
        assert AuditLog(database, TEST_SEALER).verify().ok


def test_every_process_refuses_the_old_database_until_it_is_upgraded(tmp_path, capsys):
    path = old_sqlite(tmp_path)
    with Database(path) as database:
        for opening in (
            lambda: AuditLog(database, TEST_SEALER),
            lambda: AuditLog(database, TEST_SEALER, create=False),
            lambda: StatusBoard(database),
        ):
            with pytest.raises(SchemaError, match="run `lfr db upgrade`"):
                opening()
    assert lfr("db", "current", "--db", str(path)) == 1
    assert "unversioned (matches revision 0001)" in capsys.readouterr().out
    assert lfr("audit", "verify", "--db", str(path), "--no-anchor-file") == 2
    assert "run `lfr db upgrade`" in capsys.readouterr().err


def test_upgrade_keeps_every_record_and_the_chain_verifies(old_database, capsys):
    with Database(old_database) as database:
        before = rows(database)
    assert len(before["alerts"]) == 5 and len(before["adjudications"]) == 3 and len(before["api_keys"]) == 3
    assert all(row["crop_jpeg"] for row in before["sightings"]) and len(before["audit_log"]) > 10

    assert lfr("db", "upgrade", "--db", old_database) == 0
    assert f"upgraded from nothing (unversioned, found to match 0001) to {head_revision()}" in capsys.readouterr().out

    with Database(old_database) as database:
        after = rows(database)
        for table, old in before.items():
            if table == "audit_head":  # moved on (the upgrade's own entry) and sealed again: checked by verify below
                continue
            kept = after[table] if table != "audit_log" else after[table][: len(old)]
            assert [{name: row[name] for name in old_row} for row, old_row in zip(kept, old)] == old, table
            assert len(kept) == len(old), table
        keys = {row["key_id"]: row for row in after["api_keys"]}
        assert all(row["expires_at"] == row["created_at"] + DEFAULT_KEY_LIFETIME_S for row in keys.values())
        assert after["audit_head"][0]["key_id"] == TEST_SEALER.key_id

        audit = AuditLog(database, TEST_SEALER)
        upgrade_entry = audit.entries(len(before["audit_log"]))[0]
        assert (upgrade_entry.action, upgrade_entry.subject) == (AuditAction.CONFIG_CHANGE, "database:schema")
        assert upgrade_entry.details == {"change": "schema_upgraded", "from": None, "to": head_revision()}
        store = AlertStore(database, audit)
        crops = {s.sighting_id: s.crop_jpeg for s in store.get("alert-1").sightings}
        assert crops == {
            row["sighting_id"]: row["crop_jpeg"] for row in before["sightings"] if row["alert_id"] == "alert-1"
        }
        assert [u.name for u in ApiKeys(audit).users()] == ["pc.khan", "sgt.lee"]
        issued = max(row["created_at"] for row in keys.values())
        live = {key_id for key_id, row in keys.items() if row["revoked_at"] is None}
        assert len(live) == 2
        assert ApiKeys(audit, clock=lambda: issued + DEFAULT_KEY_LIFETIME_S - 1).usable(keys) == live
        assert ApiKeys(audit, clock=lambda: issued + DEFAULT_KEY_LIFETIME_S).usable(keys) == set()
        assert StatusBoard(database).latest("west_end").faces_seen == 1234
        audit.record("PC 1234 Khan", AuditAction.LOGIN, "PC 1234 Khan")
        audit.close()

    assert lfr("audit", "verify", "--db", old_database) == 0
    assert "ok:" in capsys.readouterr().out
    assert lfr("db", "upgrade", "--db", old_database) == 0
    assert f"is already at {head_revision()}" in capsys.readouterr().out
    assert lfr("db", "current", "--db", old_database) == 0


def test_a_rewritten_audit_head_stops_the_upgrade_and_changes_nothing(tmp_path, capsys):
    """Resealing must not bless a head that was rolled back or forged before the upgrade."""
    path = old_sqlite(tmp_path)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE audit_head SET seq = seq - 1, hash = (SELECT hash FROM audit_log WHERE seq = "
            "(SELECT seq - 1 FROM audit_head))"
        )
    assert lfr("db", "upgrade", "--db", str(path)) == 2
    assert "is not sealed by HMAC key id" in capsys.readouterr().err
    with Database(path) as database:
        state = schema_state(database)
        assert (state.current, state.matches) == (None, "0001")


def test_a_keyed_log_cannot_be_upgraded_without_its_key(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LFR_AUDIT_HMAC_KEY", "another-key-of-the-right-length-0123456789abcdef")
    path = old_sqlite(tmp_path)
    assert lfr("db", "upgrade", "--db", str(path)) == 2
    assert f"sealed with HMAC key id {TEST_SEALER.key_id}" in capsys.readouterr().err
    with Database(path) as database:
        assert schema_state(database).current is None


def test_a_table_changed_by_hand_is_refused(tmp_path, capsys):
    path = old_sqlite(tmp_path)
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE alerts ADD COLUMN notes TEXT")
    assert lfr("db", "upgrade", "--db", str(path)) == 2
    assert "table alerts has columns" in capsys.readouterr().err


def test_a_table_dropped_from_a_database_at_head_is_refused(tmp_path):
    """Without this check a dropped audit table would surface only as an SQL error at the first append."""
    with Database(tmp_path / "records.sqlite3") as database:
        AuditLog(database, TEST_SEALER)
        with database.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE audit_log"))
        with pytest.raises(SchemaError, match="tables audit_log are gone"):
            AuditLog(database, TEST_SEALER)


def test_upgrading_a_database_at_0009_adds_the_audit_logs_index_by_action_and_subject(tmp_path, capsys):
    """Regression: finding where the last social watch stopped scanned the whole audit log without this index."""
    path = tmp_path / "records.sqlite3"
    with Database(path) as database:
        AuditLog(database, TEST_SEALER)
        with database.engine.begin() as connection:
            connection.execute(sa.text(f"DROP INDEX {AUDIT_BY_SUBJECT_INDEX}"))
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '0009_social_posts'"))
        with pytest.raises(SchemaError, match="run `lfr db upgrade`"):
            AuditLog(database, TEST_SEALER)
    assert lfr("db", "upgrade", "--db", str(path)) == 0
    assert f"upgraded from 0009_social_posts to {head_revision()}" in capsys.readouterr().out
    with Database(path) as database, database.engine.connect() as connection:
        indexes = {index["name"]: index["column_names"] for index in sa.inspect(connection).get_indexes("audit_log")}
        assert indexes[AUDIT_BY_SUBJECT_INDEX] == ["action", "subject", "seq"]
        assert AuditLog(database, TEST_SEALER).verify().ok


def test_an_unversioned_database_without_the_audit_index_is_stamped_before_it_and_gets_it(tmp_path, capsys):
    """The index changes no column, so the columns alone cannot tell whether a database has it: the upgrade makes it."""
    path = tmp_path / "records.sqlite3"
    with Database(path) as database:
        AuditLog(database, TEST_SEALER)
        with database.engine.begin() as connection:
            connection.execute(sa.text(f"DROP INDEX {AUDIT_BY_SUBJECT_INDEX}"))
            connection.execute(sa.text("DROP TABLE alembic_version"))
    assert lfr("db", "upgrade", "--db", str(path)) == 0
    assert "(unversioned, found to match 0009_social_posts)" in capsys.readouterr().out
    with Database(path) as database, database.engine.connect() as connection:
        assert AUDIT_BY_SUBJECT_INDEX in {index["name"] for index in sa.inspect(connection).get_indexes("audit_log")}


def test_an_old_catalogue_file_is_imported_whole_once_and_audited(old_database, tmp_path, capsys, monkeypatch):
    """Regression: the catalogue lived in a per-host file; after the upgrade its rows are in the shared database."""
    monkeypatch.setenv("HOME", str(tmp_path))
    former = tmp_path / ".local" / "share" / "lfr"
    former.mkdir(parents=True)
    source = old_catalogue(former)
    before = file_rows(source)
    assert "watchlist_version_entries" not in before, "that release kept no fingerprints"
    assert sum(len(found) for found in before.values()) == 14
    with Database(old_database) as database:
        audit_entries = len(rows(database)["audit_log"])

    assert lfr("db", "import-catalogue", str(source), "--db", old_database) == 2
    assert "run `lfr db upgrade`" in capsys.readouterr().err
    assert lfr("db", "upgrade", "--db", old_database) == 0
    assert f"run `lfr db import-catalogue {source}`" in capsys.readouterr().out
    assert lfr("db", "import-catalogue", str(source), "--db", old_database, "--officer", "Supt. A Rahman") == 0
    assert "imported 2 watchlists" in capsys.readouterr().out

    with Database(old_database) as database:
        after = catalogue_rows(database)
        assert {table: found for table, found in after.items() if found} == before
        catalogue = Catalogue(database)
        version = catalogue.version("west_end@v2")
        assert version.calibration is not None and version.calibration.fusion == "arcface+faceres"
        assert (version.max_batch, version.excluded_batches) == (3, (2,))
        assert catalogue.version_entries(version) == []
        assert catalogue.watchlist("missing").expires_at == 4_102_444_800
        audit = AuditLog(database, TEST_SEALER)
        imported = audit.entries(audit_entries + 1)
        assert [(e.actor, e.action, e.subject) for e in imported] == [
            ("Supt. A Rahman", AuditAction.CONFIG_CHANGE, "database:catalogue")
        ]
        assert imported[0].details["watchlists"] == ["missing", "west_end"]
        assert imported[0].details["rows"]["watchlist_batches"] == 5
        audit.close()

    assert lfr("db", "import-catalogue", str(source), "--db", old_database) == 0
    assert "already there, unchanged: missing, west_end" in capsys.readouterr().out
    assert lfr("audit", "verify", "--db", old_database) == 0
    with Database(old_database) as database:
        assert Catalogue(database).begin_batch("west_end", 1_760_000_100) == 5, "batch numbers go on from the file's"
    with sqlite3.connect(source) as connection:
        connection.execute("UPDATE watchlists SET reason = 'changed' WHERE watchlist_id = 'missing'")
    assert lfr("db", "import-catalogue", str(source), "--db", old_database) == 2
    assert "watchlists missing, west_end of" in capsys.readouterr().err


def test_a_file_that_is_no_catalogue_is_refused_and_nothing_is_written(tmp_path, capsys):
    target = str(tmp_path / "records.sqlite3")
    assert lfr("db", "import-catalogue", str(OLD_RECORDS), "--db", target) == 2
    assert "cannot read" in capsys.readouterr().err
    assert lfr("db", "import-catalogue", str(old_sqlite(tmp_path)), "--db", target) == 2
    assert "is not a watchlist catalogue" in capsys.readouterr().err
    with Database(target) as database:
        assert not any(catalogue_rows(database).values())
        assert [e.action for e in AuditLog(database, TEST_SEALER).entries()] == []
