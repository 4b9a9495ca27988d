"""`lfr alerts purge`: delete the alerts (with their sightings and face crops) past their retention, now.

    lfr alerts purge [--older-than-days N] [--officer NAME]

`lfr serve` and `lfr run` purge on their own every `retention.interval_s`; this command is for a
purge that cannot wait (a shortened retention, a database moved between hosts) or a machine where
neither runs. It purges what `retention.days` (or `--older-than-days`, at most 31) has expired,
keeps held alerts, writes the purge's audit entry (action `purge`, naming who ran it) and prints
what was deleted. Exit status: 0 purged (and erased from the files); 1 purged, but a reader kept
the deleted crops from being erased from the database files (run it again once the reader has
finished); 2 nothing done (bad argument, database or audit log unusable).
"""

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from cluster.alerts.config import RETENTION_MAX_DAYS, SECONDS_PER_DAY
from cluster.alerts.opening import open_alert_store
from cluster.audit.log import AuditLogError
from cluster.cli.watchlist_commands import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, add_officer_argument, officer_of
from cluster.config import LfrConfig
from cluster.enrolment.expiry import iso


def register(commands: argparse._SubParsersAction) -> None:
    alerts = commands.add_parser("alerts", help="Alerts in the records database: purge those past retention.")
    actions = alerts.add_subparsers(dest="alerts_action", required=True, metavar="ACTION")
    purge = actions.add_parser("purge", help="Delete alerts (with their crops) older than the retention, now.")
    purge.add_argument(
        "--older-than-days",
        type=float,
        default=None,
        metavar="N",
        help=f"Purge alerts raised more than N days ago (default retention.days; at most {RETENTION_MAX_DAYS}).",
    )
    add_officer_argument(purge)
    purge.set_defaults(handler=run_purge)


def run_purge(args: argparse.Namespace, config: LfrConfig) -> int:
    days = config.retention.days if args.older_than_days is None else args.older_than_days
    if not 0 < days <= RETENTION_MAX_DAYS:
        sys.stderr.write(f"lfr: --older-than-days must be within (0, {RETENTION_MAX_DAYS}], got {days:g}\n")
        return EXIT_FAILED
    try:
        store = open_alert_store(config.database, config.audit)
        result = store.purge(days * SECONDS_PER_DAY, actor=officer_of(args))
        retention = config.retention
        expired = store.expire_rejections(retention.oversight_s, retention.suppression_s, actor=officer_of(args))
    except (ValueError, AuditLogError, SQLAlchemyError, OSError) as exc:
        sys.stderr.write(f"lfr: nothing purged: {exc}\n")
        return EXIT_FAILED
    sys.stdout.write(
        f"purged {result.alerts} alert{'s' if result.alerts != 1 else ''} raised before {iso(result.cutoff)}:"
        f" {result.sightings} sightings, {result.crops} crops, {result.adjudications} decisions;"
        f" {result.held_kept} held alert{'s' if result.held_kept != 1 else ''} kept; {expired.crops} crops of"
        f" rejected alerts past their oversight period, {expired.suppression_embeddings} expired suppressions\n"
    )
    if not (result.crops_erased and expired.erased):
        sys.stderr.write(
            f"lfr: the deleted crops may still be on disk: {result.erasure}; run `lfr alerts purge` again once"
            " the reader has finished\n"
        )
        return EXIT_REFUSED
    return EXIT_OK
