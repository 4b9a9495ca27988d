"""`lfr cases purge`: delete the cases of retrospective and social-media searches past their retention, now.

    lfr cases purge [--older-than-days N] [--officer NAME]

`lfr serve` and `lfr run` purge expired cases on their own, with the alerts, every
`retention.interval_s`; this command is for a purge that cannot wait or a machine where neither
runs. It purges the cases `retention.case_days` (or `--older-than-days`, at most 31) has expired,
with their candidates' crops and the report files their searches wrote, keeps held cases, writes
the purge's audit entry (action `purge` on `cases`, naming who ran it) and prints what was deleted.
Exit status: 0 purged (and erased from the files); 1 purged, but a reader kept the deleted crops
from being erased from the database files (run it again once the reader has finished); 2 nothing
done (bad argument, database or audit log unusable).
"""

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from cluster.alerts.config import RETENTION_MAX_DAYS, SECONDS_PER_DAY
from cluster.alerts.opening import open_alert_store
from cluster.audit.log import AuditLogError
from cluster.cases.store import CaseStore
from cluster.cli.watchlist_commands import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, add_officer_argument, officer_of
from cluster.config import LfrConfig
from cluster.enrolment.expiry import iso


def register(commands: argparse._SubParsersAction) -> None:
    cases = commands.add_parser("cases", help="Searches' cases in the records database: purge those past retention.")
    actions = cases.add_subparsers(dest="cases_action", required=True, metavar="ACTION")
    purge = actions.add_parser("purge", help="Delete cases (with their crops and reports) older than the retention.")
    purge.add_argument(
        "--older-than-days",
        type=float,
        default=None,
        metavar="N",
        help=f"Purge cases opened more than N days ago (default retention.case_days; at most {RETENTION_MAX_DAYS}).",
    )
    add_officer_argument(purge)
    purge.set_defaults(handler=run_purge)


def run_purge(args: argparse.Namespace, config: LfrConfig) -> int:
    days = config.retention.case_days if args.older_than_days is None else args.older_than_days
    if not 0 < days <= RETENTION_MAX_DAYS:
        sys.stderr.write(f"lfr: --older-than-days must be within (0, {RETENTION_MAX_DAYS}], got {days:g}\n")
        return EXIT_FAILED
    try:
        alerts = open_alert_store(config.database, config.audit)
        result = CaseStore(alerts.database, alerts.audit).purge(days * SECONDS_PER_DAY, actor=officer_of(args))
    except (ValueError, AuditLogError, SQLAlchemyError, OSError) as exc:
        sys.stderr.write(f"lfr: nothing purged: {exc}\n")
        return EXIT_FAILED
    sys.stdout.write(
        f"purged {result.cases} case{'s' if result.cases != 1 else ''} opened before {iso(result.cutoff)}:"
        f" {result.items} candidates, {result.crops} crops, {result.reports} report files;"
        f" {result.held_kept} held case{'s' if result.held_kept != 1 else ''} kept\n"
    )
    if not result.erased:
        sys.stderr.write(
            "lfr: the deleted crops may still be on disk: a reader kept them from being erased; run"
            " `lfr cases purge` again once it has finished\n"
        )
        return EXIT_REFUSED
    return EXIT_OK
