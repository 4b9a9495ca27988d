"""`lfr cases purge`: delete the cases of retrospective and social-media searches past their retention, now.

    lfr cases purge [--older-than-days N] [--officer NAME]

`lfr serve` and `lfr run` purge expired cases on their own, with the alerts, every
`retention.interval_s`; this command is for a purge that cannot wait or a machine where neither
runs. It purges the cases `retention.case_days` (or `--older-than-days`, at most 31) has expired,
with their candidates' crops and the report files their searches wrote, keeps held cases, writes
the purge's audit entry (action `purge` on `cases`, naming who ran it) and prints what was deleted.
Exit status as `cluster.cli.purge_arguments` says.
"""

import argparse

from cluster.alerts.opening import open_alert_store
from cluster.cases.store import CaseStore
from cluster.cli.purge_arguments import PurgeOutcome, add_purge_action, counted, run_purge
from cluster.config import LfrConfig
from cluster.enrolment.expiry import iso


def register(commands: argparse._SubParsersAction) -> None:
    cases = commands.add_parser("cases", help="Searches' cases in the records database: purge those past retention.")
    actions = cases.add_subparsers(dest="cases_action", required=True, metavar="ACTION")
    add_purge_action(
        actions,
        purge_cases,
        summary="Delete cases (with their crops and reports) older than the retention.",
        records="cases opened",
        default="retention.case_days",
    )


def purge_cases(args: argparse.Namespace, config: LfrConfig) -> int:
    def purge(older_than_s: float, officer: str) -> PurgeOutcome:
        alerts = open_alert_store(config.database, config.audit)
        result = CaseStore(alerts.database, alerts.audit).purge(older_than_s, actor=officer)
        return PurgeOutcome(
            f"purged {counted(result.cases, 'case')} opened before {iso(result.cutoff)}: {result.items} candidates,"
            f" {result.crops} crops, {result.reports} report files; {counted(result.held_kept, 'held case')} kept",
            None if result.erased else "a reader kept them from being erased",
        )

    return run_purge(args, config.retention.case_days, "lfr cases purge", purge)
