"""`lfr audit verify`, `show`, `unfinished` and `pseudonym`: check and read the tamper-evident audit log.

`verify` needs the HMAC key the log was written with (unless the configuration runs unkeyed)
and checks the chain against its head record and every line of its anchor file (the head
written down outside the database by each process that appends). It exits 0 when all agree
and prints the head (`seq:hash`); a head kept somewhere else again (a ticket, a signed email)
can be passed back later with `--anchor`. It exits 1 naming the first bad entry or anchor
line, and 2 when the database, the key or the anchor file cannot be used as given.

`unfinished` lists the gallery changes that recorded their intent but never their outcome (see
`cluster.audit.intents`): a process stopped in the middle of them, so each may have been made in
part and needs following up (for an ingest: `lfr social delete --ingest ID`). It exits 1 when
there are any (one still running shows too), 0 when there are none.

`pseudonym` prints the keyed pseudonym a person id appears as in audit entries about alerts,
so an investigator with the key can find that person's entries.
"""

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from cluster.audit.anchors import AnchorFile
from cluster.audit.config import AuditConfig
from cluster.audit.entry import AuditAnchor, AuditEntry
from cluster.audit.intents import unfinished_intents
from cluster.audit.log import AuditLog, AuditLogError
from cluster.audit.opening import configured_sealer
from cluster.audit.sealing import Sealer
from cluster.config import LfrConfig
from cluster.database.engine import Database
from cluster.database.schema import SchemaError

EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_UNREADABLE = 2
DB_HELP = "SQLite file path or postgresql://USER@HOST:PORT/DATABASE (password from PGPASSWORD or ~/.pgpass)."


def register(commands: argparse._SubParsersAction) -> None:
    audit = commands.add_parser("audit", help="Verify or read the tamper-evident audit log.")
    actions = audit.add_subparsers(dest="audit_action", required=True, metavar="ACTION")

    verify = actions.add_parser(
        "verify",
        help="Check every entry's hash and link, the head record and the anchor file; exit 1 at the first bad one.",
    )
    verify.add_argument("--db", required=True, help=DB_HELP)
    verify.add_argument(
        "--anchor",
        type=AuditAnchor.parse,
        default=None,
        metavar="SEQ:HASH",
        help="A head printed by an earlier verify: fails if the chain no longer reaches it unchanged.",
    )
    anchors = verify.add_mutually_exclusive_group()
    anchors.add_argument(
        "--anchor-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="The anchor file the log's writers keep (default: audit.anchor_path, else beside the SQLite file).",
    )
    anchors.add_argument(
        "--no-anchor-file",
        action="store_true",
        help="Verify without the anchor file: a cut tail or a restored older head record then goes unseen.",
    )
    _key_arguments(verify)
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

    pseudonym = actions.add_parser(
        "pseudonym", help="Print the keyed pseudonym a person id appears as in audit entries about alerts."
    )
    pseudonym.add_argument("person_id", help="The watchlist person id to look for.")
    _key_arguments(pseudonym)
    pseudonym.set_defaults(handler=run_pseudonym)


def _key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hmac-key-env",
        default=None,
        metavar="NAME",
        help="Environment variable with the HMAC key the log was written with (default: audit.hmac_key_env,"
        " LFR_AUDIT_HMAC_KEY).",
    )
    parser.add_argument(
        "--unkeyed",
        action="store_true",
        help="The log was written without an HMAC key (audit.require_hmac_key: false): use none.",
    )


def _sealer(args: argparse.Namespace, config: LfrConfig) -> Sealer:
    """The key the log was written with: from --hmac-key-env, else as configured; none with --unkeyed."""
    if args.unkeyed:
        return Sealer(None)
    audit = config.audit
    if args.hmac_key_env is not None:
        audit = AuditConfig.model_validate({**audit.model_dump(), "hmac_key_env": args.hmac_key_env})
    return configured_sealer(audit)


def _read_log(target: str) -> AuditLog:
    """The log for reading only: no key needed, nothing created."""
    return AuditLog(Database(target, create=False), create=False)


def run_verify(args: argparse.Namespace, config: LfrConfig) -> int:
    try:
        audit = AuditLog(Database(args.db, create=False), _sealer(args, config), create=False)
        anchor_file = (
            None if args.no_anchor_file else AnchorFile(args.anchor_file or config.audit.anchor_file_for(args.db))
        )
        report = audit.verify(args.anchor, anchor_file)
    except (ValueError, AuditLogError, SchemaError, SQLAlchemyError, OSError) as exc:
        sys.stderr.write(f"lfr: cannot verify the audit log: {exc}\n")
        return EXIT_UNREADABLE
    sys.stdout.write(report.summary() + "\n")
    if not report.ok:
        return EXIT_BROKEN
    if anchor_file is None:
        sys.stdout.write("anchor file not checked (--no-anchor-file): a cut tail or a restored head would not show\n")
    if report.head is not None:
        sys.stdout.write(f"anchor: {report.head}  (keep it elsewhere; check later with --anchor)\n")
    return EXIT_OK


def run_pseudonym(args: argparse.Namespace, config: LfrConfig) -> int:
    try:
        sealer = _sealer(args, config)
    except ValueError as exc:
        sys.stderr.write(f"lfr: {exc}\n")
        return EXIT_UNREADABLE
    sys.stdout.write(sealer.person_pseudonym(args.person_id) + "\n")
    return EXIT_OK


def run_show(args: argparse.Namespace, config: LfrConfig) -> int:
    if args.limit < 1:
        sys.stderr.write(f"lfr: --limit must be >= 1, got {args.limit}\n")
        return EXIT_UNREADABLE
    try:
        entries = _read_log(args.db).latest(args.limit)
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
        entries = unfinished_intents(_read_log(args.db))
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
