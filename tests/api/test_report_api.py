"""GET /deployments/{id}/report on a real server over a real SQLite store: the report a supervisor reads is the
store's figures, byte for byte the report.json its audit entry's digest covers, and an operator cannot read it."""

import hashlib

import pytest

from cluster.alerts.query import AlertFilter
from cluster.audit.actions import AuditAction
from cluster.oversight.report import DeploymentReport
from tests.api.factories import DEPLOYMENT, PEOPLE
from tests.deployment_records import record_deployment


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True)
def test_a_supervisor_reads_the_report_and_its_making_is_audited(control_room):
    record_deployment(control_room.store)
    response = control_room.get(f"/deployments/{DEPLOYMENT}/report", control_room.supervisor.token)
    assert response.status_code == 200, response.text
    report = DeploymentReport.model_validate_json(response.content)
    stats = control_room.store.stats(DEPLOYMENT)
    assert (report.outcomes.alerts, report.outcomes.confirmed, report.outcomes.rejected) == (
        stats.alerts,
        stats.confirmed,
        stats.rejected,
    )
    assert report.outcomes.not_adjudicated == control_room.store.count(
        AlertFilter(deployment_id=DEPLOYMENT, states=("new", "acknowledged"))
    )
    assert not any(person in response.text for person in PEOPLE), "no person id leaves in a report"
    made = [
        e
        for e in control_room.audit.entries()
        if e.action is AuditAction.REQUEST and e.details.get("command") == "report deployment"
    ]
    assert len(made) == 1 and made[0].actor == control_room.supervisor.name
    assert made[0].details["channel"] == "api"
    assert made[0].details["report_sha256"] == hashlib.sha256(response.content).hexdigest()


def test_operators_are_refused_and_an_unknown_deployment_is_404(control_room):
    record_deployment(control_room.store, alerts=False)
    refused = control_room.get(f"/deployments/{DEPLOYMENT}/report", control_room.operator.token)
    assert refused.status_code == 403 and "supervisor or auditor role" in refused.json()["detail"]
    missing = control_room.get("/deployments/nowhere/report", control_room.supervisor.token)
    assert missing.status_code == 404 and "no start of deployment 'nowhere'" in missing.json()["detail"]
    assert not [e for e in control_room.audit.entries() if e.details.get("command") == "report deployment"]
