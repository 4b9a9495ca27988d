"""`lfr db upgrade` and `lfr db current`: the records database's schema revision (see `cluster.database.schema`).

`upgrade` brings the configured database (or `--db`) to the revision this release needs and
records the change in the audit log as CONFIG_CHANGE (from, to). Upgrading a keyed audit log
needs its HMAC key: the head record is sealed again over the revision-2 payload after its old
seal has been checked. Back the database up first; a refused upgrade changes nothing.
`current` prints where the database stands and exits 1 when it is behind (0 at head).
`import-catalogue PATH` copies a watchlist catalogue file (the former `gallery.catalogue_path`)
into the database, once, in one transaction with its audit entry (`cluster.gallery.catalogue_import`).
"""

import argparse
import getpass
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from cluster.audit.actions import AuditAction
from cluster.audit.anchors import AnchorFile
from cluster.audit.head_sealing import HeadResealer
from cluster.audit.log import AuditLog, AuditLogError
from cluster.audit.opening import configured_sealer, open_audit_log
from cluster.cli.watchlist_commands import add_officer_argument, officer_of
from cluster.config import LfrConfig
from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database
from cluster.database.migrations.hooks import UpgradeHooks
from cluster.database.schema import SchemaError, schema_state, upgrade
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.catalogue_import import import_catalogue
from cluster.gallery.config import FORMER_CATALOGUE_PATH

EXIT_OK = 0
EXIT_BEHIND = 1
EXIT_FAILED = 2
SCHEMA_SUBJECT = "database:schema"
CATALOGUE_FILE_REVISIONS = (None, "0001", "0002")
"""Revisions (None: unversioned) of databases from before the catalogue moved in, when hosts kept it in a file."""
DB_HELP = "SQLite file path or postgresql://USER@HOST:PORT/DATABASE (default: database.url of the configuration)."


def register(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="Upgrade the records database's schema, or show its revision.")
    actions = db.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    up = actions.add_parser("upgrade", help="Bring the records database to this release's schema (audited).")
    up.add_argument("--db", default=None, help=DB_HELP)
    up.set_defaults(handler=run_upgrade)
    current = actions.add_parser("current", help="Print the database's schema revision; exit 1 if it is behind.")
    current.add_argument("--db", default=None, help=DB_HELP)
    current.set_defaults(handler=run_current)
    copy = actions.add_parser(
        "import-catalogue",
        help="Copy a watchlist catalogue file (the former gallery.catalogue_path) into the database (audited).",
    )
    copy.add_argument(
        "path",
        type=Path,
        metavar="PATH",
        help=f"The catalogue file; the former default was {FORMER_CATALOGUE_PATH}. It is only read.",
    )
    copy.add_argument("--db", default=None, help=DB_HELP)
    add_officer_argument(copy)
    copy.set_defaults(handler=run_import_catalogue)


def _database_config(args: argparse.Namespace, config: LfrConfig) -> DatabaseConfig:
    if args.db is None:
        return config.database
    return DatabaseConfig.model_validate({**config.database.model_dump(), "url": args.db})


def run_upgrade(args: argparse.Namespace, config: LfrConfig) -> int:
    try:
        settings = _database_config(args, config)
        sealer = configured_sealer(config.audit)
        with Database(settings.url, busy_timeout_s=settings.busy_timeout_s, erasure=settings.erasure) as database:
            hooks = UpgradeHooks(head=HeadResealer(sealer), key_lifetime_days=config.serve.key_lifetime_days)
            result = upgrade(database, hooks)
            if result.changed:
                audit = AuditLog(
                    database,
                    sealer,
                    anchors=AnchorFile(config.audit.anchor_file_for(settings.url)),
                    anchor_interval_s=config.audit.anchor_interval_s,
                )
                try:
                    audit.record(
                        f"cli:{getpass.getuser()}",
                        AuditAction.CONFIG_CHANGE,
                        SCHEMA_SUBJECT,
                        {"change": "schema_upgraded", "from": result.before, "to": result.after},
                    )
                finally:
                    audit.close()
            where = database.describe()
    except (ValueError, SchemaError, AuditLogError, SQLAlchemyError, OSError) as exc:
        sys.stderr.write(f"lfr: cannot upgrade the database: {exc}\n")
        return EXIT_FAILED
    if not result.changed:
        sys.stdout.write(f"{where} is already at {result.after}\n")
        return EXIT_OK
    stamped = f" (unversioned, found to match {result.stamped})" if result.stamped else ""
    sys.stdout.write(f"{where} upgraded from {result.before or 'nothing'}{stamped} to {result.after}\n")
    former = FORMER_CATALOGUE_PATH.expanduser()
    if result.before in CATALOGUE_FILE_REVISIONS and former.is_file():
        sys.stdout.write(f"the watchlist catalogue now lives in the database: run `lfr db import-catalogue {former}`\n")
    return EXIT_OK


def run_import_catalogue(args: argparse.Namespace, config: LfrConfig) -> int:
    try:
        settings = _database_config(args, config)
        audit = open_audit_log(settings, config.audit)
        try:
            result = import_catalogue(args.path, Catalogue(audit.database), audit, officer_of(args))
            where = audit.database.describe()
        finally:
            audit.close()
            audit.database.close()
    except (ValueError, SchemaError, AuditLogError, SQLAlchemyError, OSError) as exc:
        sys.stderr.write(f"lfr: cannot import the catalogue: {exc}\n")
        return EXIT_FAILED
    copied = ", ".join(f"{count} {table}" for table, count in result.rows.items() if count) or "no rows"
    sys.stdout.write(f"imported {len(result.imported)} watchlists from {result.source} into {where} ({copied})\n")
    if result.already_present:
        sys.stdout.write(f"already there, unchanged: {', '.join(result.already_present)}\n")
    return EXIT_OK


def run_current(args: argparse.Namespace, config: LfrConfig) -> int:
    try:
        settings = _database_config(args, config)
        with Database(settings.url, create=False, busy_timeout_s=settings.busy_timeout_s) as database:
            state = schema_state(database)
            where = database.describe()
    except (ValueError, SchemaError, SQLAlchemyError, OSError) as exc:
        sys.stderr.write(f"lfr: cannot read the database's revision: {exc}\n")
        return EXIT_FAILED
    sys.stdout.write(f"{where}: {state.describe()}\n")
    if state.at_head:
        return EXIT_OK
    sys.stdout.write("run `lfr db upgrade` to bring it to head (back it up first)\n")
    return EXIT_BEHIND
