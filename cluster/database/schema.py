"""The records database's schema revision: read it, upgrade it with Alembic, and refuse to work on an old one.

The revisions live in `cluster.database.migrations` and run programmatically, inside one write
transaction of `Database.writing()` (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory lock), so two
processes never upgrade at once and a failed revision leaves the database as it was.

Policy: an empty database (no records tables at all, SQLite or PostgreSQL) is brought to head by
the first process that opens its audit log: there is nothing to lose. A database that holds
records and is behind head (or predates migrations and carries no revision) is never upgraded
implicitly: every process refuses it until an operator runs `lfr db upgrade`, which can be
backed up before and is audited. An unversioned database is first matched against the known
revisions' layouts (`migrations.layouts`) and stamped with the one it matches; one that matches
none is refused, naming the table that differs.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa
import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cluster.database.engine import Database
from cluster.database.migrations.hooks import UpgradeHooks, UpgradeRefused
from cluster.database.migrations.layouts import columns_by_revision

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
UPGRADE_HINT = "run `lfr db upgrade` (back the database up first)"


class SchemaError(RuntimeError):
    """The database's schema is not one this code can use, or an upgrade was refused; the message says why."""


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: its revision (None: unversioned or empty), the code's head, and whether it is empty.

    matches: for an unversioned database with tables, the revision its layout matches (None if none)."""

    current: str | None
    head: str
    empty: bool
    matches: str | None = None
    missing: tuple[str, ...] = ()
    """Records tables the head revision has that the database lacks (dropped behind the code's back)."""

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.empty:
            return f"empty (no records tables); head is {self.head}"
        if self.current is None:
            found = f"matches revision {self.matches}" if self.matches else "matches no known revision"
            return f"unversioned ({found}); head is {self.head}"
        return f"at {self.current}" + ("" if self.at_head else f", behind head {self.head}")


@dataclass(frozen=True)
class Upgrade:
    """What `upgrade` did: the revision before (None: empty or unversioned) and after."""

    before: str | None
    after: str
    stamped: str | None = None
    """The revision an unversioned database was found to match and stamped with, if it was."""

    @property
    def changed(self) -> bool:
        return self.before != self.after


def head_revision() -> str:
    head = _scripts().get_current_head()
    if head is None:
        raise SchemaError(f"no migrations found in {MIGRATIONS}: the installation is incomplete")
    return head


def schema_state(database: Database) -> SchemaState:
    with database.reading() as connection:
        return _state(connection)


def require_current(database: Database) -> None:
    """Refuse a database that is not at head: the code would read or write columns it does not have."""
    state = schema_state(database)
    if state.at_head and state.missing:
        raise SchemaError(
            f"{database.describe()} is at {state.current} but its tables {', '.join(state.missing)} are gone: they"
            " were dropped; restore the database from a backup"
        )
    if state.at_head:
        return
    if state.empty:
        raise SchemaError(
            f"{database.describe()} holds no records tables yet: open its audit log first, or {UPGRADE_HINT}"
        )
    if state.current is not None and state.current not in _known():
        raise SchemaError(
            f"{database.describe()} is at revision {state.current}, which this release does not know: it was upgraded"
            " by a newer release; run that release"
        )
    raise SchemaError(f"{database.describe()} is {state.describe()}: {UPGRADE_HINT}")


def prepare(database: Database, hooks: UpgradeHooks) -> None:
    """Bring an empty database to head (nothing to lose); require any other to be at head already."""
    with database.writing() as connection:
        if _state(connection).empty:
            _run(connection, hooks)
            return
    require_current(database)


def upgrade(database: Database, hooks: UpgradeHooks) -> Upgrade:
    """Bring the database to head. An unversioned one is first checked table by table against the known layouts:
    stamped with the revision it matches when it holds all of that revision's tables, else upgraded from the start
    (revisions skip what a table already has)."""
    with database.writing() as connection:
        state = _state(connection)
        stamped = None
        if not state.empty and state.current is None:
            problem = _unknown_layout(connection)
            if problem is not None:
                raise SchemaError(f"{database.describe()}: {problem}")
            if state.matches is not None and _complete(connection, state.matches):
                stamped = state.matches
                _command(connection, hooks, lambda config: command.stamp(config, stamped))
        _run(connection, hooks)
    result = Upgrade(state.current, head_revision(), stamped)
    log.info(
        "records_schema_upgraded",
        database=database.describe(),
        before=result.before,
        after=result.after,
        stamped=stamped,
    )
    return result


def _run(connection: sa.Connection, hooks: UpgradeHooks) -> None:
    _command(connection, hooks, lambda config: command.upgrade(config, "head"))


def _command(connection: sa.Connection, hooks: UpgradeHooks, action) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["hooks"] = hooks
    try:
        action(config)
    except UpgradeRefused as exc:
        raise SchemaError(f"upgrade refused: {exc}") from exc


@cache
def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def _known() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def _state(connection: sa.Connection) -> SchemaState:
    head = head_revision()
    tables = set(sa.inspect(connection).get_table_names()) - {VERSION_TABLE}
    records = tables & set(columns_by_revision()[head])
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None and not records:
        return SchemaState(None, head, empty=True)
    matches = None if current is not None else _matching_revision(connection, records)
    missing = tuple(sorted(set(columns_by_revision()[head]) - records)) if current == head else ()
    return SchemaState(current, head, empty=False, matches=matches, missing=missing)


def _matching_revision(connection: sa.Connection, present: set[str]) -> str | None:
    """The latest revision whose layout every present records table has exactly, preferring one that has no table
    beyond those present (a later revision that only adds tables matches too; its missing tables are made by it).
    A revision that changes no columns (0010_audit_by_subject adds an index) is never the match: the one before it
    is, so the upgrade runs it rather than taking for granted what it adds."""
    found = _columns(connection, present)
    layouts = list(columns_by_revision().items())
    changed = [layouts[0]] + [
        (revision, layout) for (_, before), (revision, layout) in zip(layouts, layouts[1:]) if layout != before
    ]
    matching = [
        (revision, layout)
        for revision, layout in reversed(changed)
        if all(layout.get(name) == columns for name, columns in found.items())
    ]
    complete = [revision for revision, layout in matching if set(layout) <= present]
    if complete:
        return complete[0]
    return matching[0][0] if matching else None


def _complete(connection: sa.Connection, revision: str) -> bool:
    return set(columns_by_revision()[revision]) <= set(sa.inspect(connection).get_table_names())


def _unknown_layout(connection: sa.Connection) -> str | None:
    """Why a present records table cannot be upgraded (its columns are no revision's), or None."""
    layouts = columns_by_revision()
    present = set(sa.inspect(connection).get_table_names()) & set(layouts[head_revision()])
    for name, columns in sorted(_columns(connection, present).items()):
        if not any(layout.get(name) == columns for layout in layouts.values()):
            return (
                f"table {name} has columns {sorted(columns)}, which no known revision has: it was changed by hand or"
                " by another program; restore it from a backup before upgrading"
            )
    return None


def _columns(connection: sa.Connection, names: set[str]) -> dict[str, frozenset[str]]:
    inspector = sa.inspect(connection)
    return {name: frozenset(column["name"] for column in inspector.get_columns(name)) for name in names}
