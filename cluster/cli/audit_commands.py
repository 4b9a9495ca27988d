"""`lfr audit verify`, `lfr audit show` and `lfr audit unfinished`: check and read the tamper-evident audit log.

`verify` exits 0 when the chain is intact and prints its head (`seq:hash`): keep that line
somewhere the database's administrators cannot edit (a ticket, a signed email) and pass it
back later with `--anchor` to prove nothing was cut from the end since. It exits 1 naming the
first bad entry, and 2 when the database cannot be read.

`unfinished` lists the gallery changes that recorded their intent but never their outcome (see
`cluster.audit.intents`): a process stopped in the middle of them, so each may have been made in
part and needs following up (for an ingest: `lfr social delete --ingest ID`). It exits 1 when
there are any (one still running shows too), 0 when there are none.
"""

import argparse
import json
import sys
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from cluster.audit.entry import AuditAnchor, AuditEntry
from cluster.audit.intents import unfinished_intents
from cluster.audit.log import AuditLog, AuditLogError
from cluster.audit.sealing import DEFAULT_KEY_ENV, sealer_from_env
from cluster.config import LfrConfig
from cluster.database.engine import Database

EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_UNREADABLE = 2
DB_HELP = "SQLite file path or postgresql://USER@HOST:PORT/DATABASE (password from PGPASSWORD or ~/.pgpass)."


def register(commands: argparse._SubParsersAction) -> None:
    audit = commands.add_parser("audit", help="Verify or read the tamper-evident audit log.")
    actions = audit.add_subparsers(dest="audit_action", required=True, metavar="ACTION")

    verify = actions.add_parser("verify", help="Check every entry's hash and link; exit 1 at the first bad entry.")
    verify.add_argument("--db", required=True, help=DB_HELP)
    verify.add_argument(
        "--anchor",
        type=AuditAnchor.parse,
        default=None,
        metavar="SEQ:HASH",
        help="A head printed by an earlier verify: fails if the chain no longer reaches it unchanged.",
    )
    verify.add_argument(
        "--hmac-key-env",
        default=DEFAULT_KEY_ENV,
        metavar="NAME",
        help=f"Environment variable with the HMAC key the log was written with (default {DEFAULT_KEY_ENV}).",
    )
    verify.set_defaults(handler=run_verify)

    show = actions.add_parser("show", help="Print the latest entries, oldest first.")
    show.add_argument("--db", required=True, help=DB_HELP)
    show.add_argument("--limit", type=int, default=20, help="How many of the latest entries (default 20).")
    show.add_argument("--json", action="store_true", help="Print one JSON document instead of text.")
    show.set_defaults(handler=run_show)

    unfinished = actions.add_parser(
        "unfinished", help="List changes whose intent was recorded but never their outcome; exit 1 if any."
    )
    unfinished.add_argument("--db", required=True, help=DB_HELP)
    unfinished.add_argument("--json", action="store_true", help="Print one JSON document instead of text.")
    unfinished.set_defaults(handler=run_unfinished)


def _open_log(target: str, key_env: str | None = None) -> AuditLog:
    sealer = sealer_from_env(key_env) if key_env else None
    return AuditLog(Database(target, create=False), sealer, create=False)


def run_verify(args: argparse.Namespace, config: LfrConfig) -> int:
    try:
        audit = _open_log(args.db, args.hmac_key_env)
        report = audit.verify(args.anchor)
    except (ValueError, AuditLogError, SQLAlchemyError) as exc:
        sys.stderr.write(f"lfr: cannot verify the audit log: {exc}\n")
        return EXIT_UNREADABLE
    sys.stdout.write(report.summary() + "\n")
    if not report.ok:
        return EXIT_BROKEN
    if report.head is not None:
        sys.stdout.write(f"anchor: {report.head}  (keep it elsewhere; check later with --anchor)\n")
    return EXIT_OK


def run_show(args: argparse.Namespace, config: LfrConfig) -> int:
    if args.limit < 1:
        sys.stderr.write(f"lfr: --limit must be >= 1, got {args.limit}\n")
        return EXIT_UNREADABLE
    try:
        entries = _open_log(args.db).latest(args.limit)
    except (ValueError, AuditLogError, SQLAlchemyError) as exc:
        sys.stderr.write(f"lfr: cannot read the audit log: {exc} (run `lfr audit verify`)\n")
        return EXIT_UNREADABLE
    if args.json:
        sys.stdout.write(json.dumps({"entries": [entry.to_json() for entry in entries]}, indent=2) + "\n")
        return EXIT_OK
    for entry in entries:
        sys.stdout.write(_line(entry) + "\n")
    return EXIT_OK


def run_unfinished(args: argparse.Namespace, config: LfrConfig) -> int:
    try:
        entries = unfinished_intents(_open_log(args.db))
    except (ValueError, AuditLogError, SQLAlchemyError) as exc:
        sys.stderr.write(f"lfr: cannot read the audit log: {exc} (run `lfr audit verify`)\n")
        return EXIT_UNREADABLE
    if args.json:
        sys.stdout.write(json.dumps({"unfinished": [entry.to_json() for entry in entries]}, indent=2) + "\n")
    else:
        for entry in entries:
            sys.stdout.write(_line(entry) + "\n")
        sys.stdout.write(
            f"{len(entries)} unfinished operation{'s' if len(entries) != 1 else ''}"
            f"{': each may have been made in part; follow it up' if entries else ''}\n"
        )
    return EXIT_BROKEN if entries else EXIT_OK


def _line(entry: AuditEntry) -> str:
    at = datetime.fromtimestamp(entry.at, UTC).isoformat(timespec="milliseconds")
    details = json.dumps(dict(entry.details), sort_keys=True, ensure_ascii=False)
    return f"{entry.seq:>6}  {at}  {entry.actor}  {entry.action}  {entry.subject}  {details}"
