"""`DeploymentReports`: a deployment's report made from the records database, and its making audited.

The CLI (`lfr report deployment`) and the control room (`GET /deployments/{id}/report`) both go
through `make`, so every report that leaves the system has an audit entry first: who made it,
for which deployment, how many alerts it covers, and the SHA-256 of its JSON, so a copy handed
to an oversight body can later be matched to the entry. If the entry cannot be written, no report
is made.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import structlog

from cluster.alerts.store import AlertStore
from cluster.audit.actions import AuditAction
from cluster.gallery.catalogue import Catalogue
from cluster.oversight.html_report import render_html
from cluster.oversight.records import deployment_subject, read_records
from cluster.oversight.report import DeploymentReport, build_report
from cluster.private_files import private_folder, write_private

log = structlog.get_logger(__name__)

JSON_NAME = "report.json"
HTML_NAME = "report.html"


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written."""

    json: Path
    html: Path


def report_json(report: DeploymentReport) -> str:
    """The report as report.json holds it (and as its audit entry's digest covers)."""
    return report.model_dump_json(indent=2) + "\n"


class DeploymentReports:
    """Reports over one alert store (its database holds the audit log and the watchlist catalogue too)."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        self.catalogue = Catalogue(store.database)

    def make(self, deployment_id: str, *, officer: str, channel: str) -> DeploymentReport:
        """The deployment's report, audited (REQUEST on the deployment) before it is returned.

        channel: how it leaves (`cli`, `api`), as the entry records it. NoDeploymentRecordsError
        (a LookupError) when the deployment never started against this database.
        """
        report = build_report(read_records(self.store, self.catalogue, deployment_id))
        digest = hashlib.sha256(report_json(report).encode("utf-8")).hexdigest()
        self.store.audit.record(
            officer,
            AuditAction.REQUEST,
            deployment_subject(deployment_id),
            {
                "command": "report deployment",
                "channel": channel,
                "alerts": report.outcomes.alerts,
                "report_sha256": digest,
            },
        )
        log.info("deployment_report_made", deployment_id=deployment_id, officer=officer, channel=channel)
        return report

    @staticmethod
    def write(report: DeploymentReport, folder: Path) -> ReportFiles:
        """report.json and report.html in `folder`, owner-only (the report names officers and alert ids)."""
        private_folder(folder)
        files = ReportFiles(folder / JSON_NAME, folder / HTML_NAME)
        write_private(files.json, report_json(report).encode("utf-8"))
        write_private(files.html, render_html(report).encode("utf-8"))
        return files
