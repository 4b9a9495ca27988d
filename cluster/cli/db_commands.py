"""`lfr db upgrade` and `lfr db current`: the records database's schema revision (see `cluster.database.schema`).

`upgrade` brings the configured database (or `--db`) to the revision this release needs and
records the change in the audit log as CONFIG_CHANGE (from, to). Upgrading a keyed audit log
needs its HMAC key: the head record is sealed again over the revision-2 payload after its old
seal has been checked. Back the database up first; a refused upgrade changes nothing.
`current` prints where the database stands and exits 1 when it is behind (0 at head).
"""

import argparse
import getpass
import sys

from sqlalchemy.exc import SQLAlchemyError

from cluster.audit.actions import AuditAction
from cluster.audit.anchors import AnchorFile
from cluster.audit.head_sealing import HeadResealer
from cluster.audit.log import AuditLog, AuditLogError
from cluster.audit.opening import configured_sealer
from cluster.config import LfrConfig
from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database
from cluster.database.migrations.hooks import UpgradeHooks
from cluster.database.schema import SchemaError, schema_state, upgrade

EXIT_OK = 0
EXIT_BEHIND = 1
EXIT_FAILED = 2
SCHEMA_SUBJECT = "database:schema"
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
