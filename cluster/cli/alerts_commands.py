"""`lfr alerts purge`: delete the alerts (with their sightings and face crops) past their retention, now.

    lfr alerts purge [--older-than-days N] [--officer NAME]

`lfr serve` and `lfr run` purge on their own every `retention.interval_s`; this command is for a
purge that cannot wait (a shortened retention, a database moved between hosts) or a machine where
neither runs. It purges what `retention.days` (or `--older-than-days`, at most 31) has expired,
keeps held alerts, writes the purge's audit entry (action `purge`, naming who ran it) and prints
what was deleted, then deletes the crops of rejected alerts past their oversight period. Exit
status as `cluster.cli.purge_arguments` says.
"""

import argparse

from cluster.alerts.opening import open_alert_store
from cluster.cli.purge_arguments import PurgeOutcome, add_purge_action, counted, run_purge
from cluster.config import LfrConfig
from cluster.enrolment.expiry import iso


def register(commands: argparse._SubParsersAction) -> None:
    alerts = commands.add_parser("alerts", help="Alerts in the records database: purge those past retention.")
    actions = alerts.add_subparsers(dest="alerts_action", required=True, metavar="ACTION")
    add_purge_action(
        actions,
        purge_alerts,
        summary="Delete alerts (with their crops) older than the retention, now.",
        records="alerts raised",
        default="retention.days",
    )


def purge_alerts(args: argparse.Namespace, config: LfrConfig) -> int:
    def purge(older_than_s: float, officer: str) -> PurgeOutcome:
        store = open_alert_store(config.database, config.audit)
        result = store.purge(older_than_s, actor=officer)
        retention = config.retention
        expired = store.expire_rejections(retention.oversight_s, retention.suppression_s, actor=officer)
        return PurgeOutcome(
            f"purged {counted(result.alerts, 'alert')} raised before {iso(result.cutoff)}: {result.sightings}"
            f" sightings, {result.crops} crops, {result.adjudications} decisions;"
            f" {counted(result.held_kept, 'held alert')} kept; {expired.crops} crops of rejected alerts past their"
            f" oversight period, {expired.suppression_embeddings} expired suppressions",
            None if result.crops_erased and expired.erased else result.erasure,
        )

    return run_purge(args, config.retention.days, "lfr alerts purge", purge)
