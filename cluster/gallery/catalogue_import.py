"""Copying a per-host catalogue file (the former `gallery.catalogue_path`) into the records database, once, audited.

Before issue 15 each host kept its watchlist catalogue in a SQLite file of its own. `lfr db
import-catalogue PATH` brings such a file over after `lfr db upgrade` has made the tables: every
row of every watchlist, in one write transaction with one audit entry (CONFIG_CHANGE on
`database:catalogue`, naming the file, its SHA-256 and what was copied), so the import is whole
or nothing and accounted for. The file is only read.

Running it again is safe: a watchlist already in the database with exactly the file's rows is
left as it is; one that differs (created in the database since, or changed on either side) stops
the import before anything is written, naming it. Files written before version fingerprints (no
`version_entries` table) or bulk imports (no `enrolled_photos`) are accepted: they have none.
"""

import hashlib
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog

from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.catalogue_tables import TABLES

log = structlog.get_logger(__name__)

SUBJECT = "database:catalogue"
FILE_TABLES = {
    "watchlists": "watchlists",
    "batches": "watchlist_batches",
    "versions": "watchlist_versions",
    "enrolled_photos": "watchlist_enrolled_photos",
    "version_entries": "watchlist_version_entries",
    "calibrations": "watchlist_calibrations",
}
"""Each table of a catalogue file and the records database's table that takes its rows (same columns)."""
REQUIRED_FILE_TABLES = ("watchlists", "batches", "versions", "calibrations")
"""Tables every catalogue file has had; the others came later, and an older file lacks them."""

Rows = dict[str, list[dict[str, Any]]]


class CatalogueImportError(ValueError):
    """The file cannot be imported as it stands; nothing was written. The message says what to do."""


@dataclass(frozen=True)
class CatalogueImport:
    """What an import did: watchlists copied in, those found already there (identical), rows copied per table."""

    source: Path
    imported: tuple[str, ...]
    already_present: tuple[str, ...]
    rows: Mapping[str, int]


def import_catalogue(source: Path, catalogue: Catalogue, audit: AuditLog, actor: str) -> CatalogueImport:
    """Copy every watchlist of the catalogue file `source` into `catalogue`, audited in the same transaction."""
    if audit.database is not catalogue.database:
        raise ValueError(
            "the audit log and the catalogue must be over the same Database, so one transaction holds both"
        )
    path = source.expanduser().absolute()
    found = _read_file(path)
    by_watchlist = _by_watchlist(found, path)
    with catalogue.database.writing() as connection:
        imported: list[str] = []
        already: list[str] = []
        conflicts: list[str] = []
        for watchlist_id, rows in sorted(by_watchlist.items()):
            present = _rows_in_database(connection, watchlist_id)
            if not present["watchlists"]:
                imported.append(watchlist_id)
            elif _same(present, rows):
                already.append(watchlist_id)
            else:
                conflicts.append(watchlist_id)
        if conflicts:
            raise CatalogueImportError(
                f"watchlists {', '.join(conflicts)} of {path} are already in {catalogue.database.describe()} with"
                " other rows (created there since, or changed on either side): nothing was imported. Compare them"
                " with `lfr watchlist show`, and import a copy of the file without them if the database's are right"
            )
        counts = {table.name: 0 for table in TABLES}
        for table in TABLES:
            batch = [row for watchlist_id in imported for row in by_watchlist[watchlist_id][table.name]]
            if batch:
                connection.execute(table.insert(), batch)
                counts[table.name] = len(batch)
        if imported:
            audit.append(
                connection,
                actor,
                AuditAction.CONFIG_CHANGE,
                SUBJECT,
                {
                    "change": "catalogue_imported",
                    "source": str(path),
                    "sha256": _sha256(path),
                    "watchlists": imported,
                    "already_present": already,
                    "rows": counts,
                },
            )
    result = CatalogueImport(path, tuple(imported), tuple(already), counts)
    log.info(
        "catalogue_imported",
        source=str(path),
        database=catalogue.database.describe(),
        imported=len(imported),
        already_present=len(already),
    )
    return result


def _read_file(path: Path) -> Rows:
    """Every row of the file's catalogue tables, by records-database table name; the file opened read-only."""
    if not path.is_file():
        raise CatalogueImportError(f"no catalogue file at {path}: give the path gallery.catalogue_path named")
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            db.row_factory = sqlite3.Row
            present = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [name for name in REQUIRED_FILE_TABLES if name not in present]
            if missing:
                raise CatalogueImportError(
                    f"{path} is not a watchlist catalogue (it has no table {', '.join(missing)}): check the path"
                )
            tables = {table.name: table for table in TABLES}
            found: Rows = {name: [] for name in tables}
            for file_table, name in FILE_TABLES.items():
                if file_table not in present:
                    continue
                expected = set(tables[name].columns.keys())
                columns = {row[1] for row in db.execute(f"PRAGMA table_info({file_table})")}
                if columns != expected:
                    raise CatalogueImportError(
                        f"table {file_table} of {path} has columns {sorted(columns)}, expected {sorted(expected)}:"
                        " it was not written by lfr, or was changed by hand"
                    )
                found[name] = [dict(row) for row in db.execute(f"SELECT * FROM {file_table}")]
    except sqlite3.DatabaseError as exc:
        raise CatalogueImportError(f"cannot read {path} as a SQLite catalogue: {exc}") from exc
    return found


def _by_watchlist(found: Rows, path: Path) -> dict[str, Rows]:
    """The rows grouped by watchlist; rows of a watchlist the file does not hold are refused (SQLite did not check)."""
    grouped: dict[str, Rows] = {
        row["watchlist_id"]: {table.name: [] for table in TABLES} for row in found["watchlists"]
    }
    for name, rows in found.items():
        for row in rows:
            if row["watchlist_id"] not in grouped:
                raise CatalogueImportError(
                    f"{path}: table {name} has rows of watchlist {row['watchlist_id']!r}, which the file does not"
                    " hold: the file is damaged; restore it from a backup"
                )
            grouped[row["watchlist_id"]][name].append(row)
    return grouped


def _rows_in_database(connection: sa.Connection, watchlist_id: str) -> Rows:
    return {
        table.name: [
            dict(row._mapping) for row in connection.execute(table.select().where(table.c.watchlist_id == watchlist_id))
        ]
        for table in TABLES
    }


def _same(present: Rows, rows: Rows) -> bool:
    return all(_keyed(present[name]) == _keyed(rows[name]) for name in rows)


def _keyed(rows: Sequence[Mapping[str, Any]]) -> list[tuple]:
    return sorted(tuple(sorted(row.items())) for row in rows)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
