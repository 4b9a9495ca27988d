"""`lfr report deployment ID`: a deployment's report, from the records database, as report.json and report.html.

    lfr report deployment ID [--out DIR] [--officer NAME]

It reads the configured records database only (`database.url`: alerts, audit log, watchlist
catalogue), so it works after the run on any host that can open that database. Making the report
is audited (a REQUEST entry on the deployment with the report's SHA-256) before anything is
written. Exit status: 0 written; 2 nothing written (no such deployment in these records, database
or audit log unusable, folder not writable). No PDF: print report.html to PDF from a browser, as
no maintained pure-Python library here renders this HTML (see docs/oversight.md).
"""

import argparse
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from cluster.alerts.opening import open_alert_store
from cluster.application.reports import DeploymentReports
from cluster.audit.log import AuditLogError
from cluster.cli.watchlist_commands import EXIT_FAILED, EXIT_OK, add_officer_argument, officer_of
from cluster.config import LfrConfig


def register(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="Reports for oversight: what a deployment did, from its records.")
    kinds = report.add_subparsers(dest="report_kind", required=True, metavar="KIND")
    deployment = kinds.add_parser(
        "deployment", help="Write a deployment's report.json and report.html (authorisation, alerts, outcomes, rates)."
    )
    deployment.add_argument("deployment_id", metavar="ID", help="The deployment's id (deployment.id of its run).")
    deployment.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="Folder to write into (default: ./report-ID)."
    )
    add_officer_argument(deployment)
    deployment.set_defaults(handler=run_deployment_report)


def run_deployment_report(args: argparse.Namespace, config: LfrConfig) -> int:
    folder = args.out if args.out is not None else Path(f"report-{args.deployment_id}")
    try:
        reports = DeploymentReports(open_alert_store(config.database, config.audit))
        report = reports.make(args.deployment_id, officer=officer_of(args), channel="cli")
        files = reports.write(report, folder)
    except (LookupError, ValueError, AuditLogError, SQLAlchemyError, OSError) as exc:
        sys.stderr.write(f"lfr: no report written: {exc}\n")
        return EXIT_FAILED
    outcomes = report.outcomes
    sys.stdout.write(
        f"deployment {report.deployment_id} ({report.authorisation.place}): {report.alerts_raised} alerts raised,"
        f" {outcomes.confirmed} confirmed, {outcomes.rejected} rejected, {outcomes.not_adjudicated} not adjudicated\n"
        f"wrote {files.json} and {files.html}\n"
    )
    return EXIT_OK
