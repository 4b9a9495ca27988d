"""The auditor role over a real server: every route of the app, as an auditor and with no credential.

The routes an auditor may use are listed here by hand (AUDITOR_ROUTES); every other route the app
has must refuse an auditor (403), so a route added later is refused to auditors until someone
decides otherwise and lists it here. Every request, allowed or refused, must leave its trace in
the audit log: an entry of its own for the auditor's, a counted entry for one without a credential.
"""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cluster.alerts.model import AlertState
from cluster.api.app import PUBLIC_PATHS
from cluster.api.gate import REFUSED_DETAIL
from cluster.api.keys import Role
from cluster.api.routers.public import PUBLIC_PREFIX
from cluster.audit.actions import AuditAction
from cluster.deployment.config import DeploymentConfig
from tests.api.factories import CAMERAS, DEPLOYMENT, PEOPLE, WATCHLIST, deployment_status, make_alert, open_case
from tests.api.test_auth import concrete, routes
from tests.api.test_serve_cli import lfr
from tests.deployment_records import record_start

AUDITOR = "ms.auditor"
AUDITOR_ROUTES = {
    "GET /me",
    "GET /alerts",
    "GET /alerts/{alert_id}",
    "GET /cases",
    "GET /cases/{case_id}",
    "GET /deployments",
    "GET /deployments/{deployment_id}",
    "GET /deployments/{deployment_id}/authorisation",
    "GET /deployments/{deployment_id}/report",
    "GET /cameras",
    "GET /audit",
    "GET /users",
    "GET /openapi.json",
}
"""What oversight reads: alerts with their adjudications, retrospective searches' cases with their decisions,
deployments (their status, cameras, authorisation and
report), the audit log, who has access, and the API's own schema. Not faces (crops, watchlist photos), not the live
stream, and no change."""
CHANGES = {
    AuditAction.ADJUDICATION,
    AuditAction.ALERT_HELD,
    AuditAction.ALERT_RELEASED,
    AuditAction.PURGE,
    AuditAction.ACCESS_CHANGE,
    AuditAction.CASE_HELD,
    AuditAction.CASE_RELEASED,
}


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(f"{PUBLIC_PREFIX}/")


@pytest.fixture
def room(control_room):
    """A confirmed alert, a deployment on the board, configured and with a run in its records, and an auditor's key."""
    now = datetime.now(UTC).timestamp()
    control_room.store.save(make_alert("a1", PEOPLE[0]))
    control_room.store.transition("a1", AlertState.ACKNOWLEDGED, "pc.operator")
    control_room.store.transition("a1", AlertState.CONFIRMED, "pc.operator", "matched the custody photo")
    control_room.services.board.publish(deployment_status(now))
    record_start(control_room.store)
    open_case(control_room.services.cases)
    deployment = DeploymentConfig(
        id=DEPLOYMENT,
        place="Oxford Circus, London W1",
        starts_at=datetime(2025, 6, 14, 9, tzinfo=UTC),
        ends_at=datetime(2025, 6, 14, 17, tzinfo=UTC),
        cameras=CAMERAS,
        watchlist_id=WATCHLIST,
        watchlist_version=f"{WATCHLIST}@v1",
        purpose="wanted_for_offences",
        signage_notice="Live facial recognition in use",
        authorised_by="Supt. A. Example",
        reason="Wanted for serious violence; proportionate at this place and time",
    )
    control_room.app.state.services = replace(control_room.services, deployment=deployment)
    control_room.auditor = control_room.services.keys.add_user(AUDITOR, Role.AUDITOR, actor="cli:test")
    return control_room


def test_the_auditor_reads_the_oversight_records_and_is_refused_everything_else(room):
    token = room.auditor.token
    answered, refused = set(), set()
    for method, path, _route in routes(room.app):
        url = concrete(path)
        response = room.call(method, url, token, json={"reason": "auditing"})
        name = f"{method} {path}"
        if is_public(path):
            assert response.status_code == 200, f"{name}: {response.status_code}"
            continue
        if name in AUDITOR_ROUTES:
            assert response.status_code == 200, f"{name}: {response.status_code} {response.text[:200]}"
            answered.add(name)
        else:
            assert response.status_code == 403, f"{name} must refuse an auditor, got {response.status_code}"
            assert response.json()["detail"].startswith(f"{AUDITOR} is auditor; this needs the")
            refused.add(name)
        entry = room.audit.latest(1)[0]
        expected = AuditAction.LOGIN if path == "/me" else AuditAction.REQUEST
        assert (entry.actor, entry.action, entry.subject) == (AUDITOR, expected, url), name
        assert (entry.details["method"], entry.details["status"]) == (method, response.status_code), name
        assert entry.details["key_id"] == room.auditor.key_id
    assert answered == AUDITOR_ROUTES, "a route listed for auditors no longer exists"
    assert {"POST /alerts/{alert_id}/reject", "POST /retention/purge", "POST /users", "GET /events"} <= refused
    assert {"POST /cases/{case_id}/items/{number}/confirm", "GET /cases/{case_id}/items/{number}/crop"} <= refused
    assert any(name.endswith("/crop") for name in refused) and "GET /alerts/{alert_id}/watchlist-photo" in refused

    alert = room.store.get("a1")
    assert (alert.state, alert.held, len(alert.adjudications)) == (AlertState.CONFIRMED, False, 2)
    assert {user.name: user.active_keys for user in room.services.keys.users()} == {
        AUDITOR: 1,
        "pc.operator": 1,
        "sgt.supervisor": 1,
    }
    assert not [e for e in room.audit.latest(200) if e.actor == AUDITOR and e.action in CHANGES]
    assert room.audit.verify().ok


def test_what_the_auditor_reads_is_the_record(room):
    token = room.auditor.token
    assert room.get("/me", token=token).json() == {"name": AUDITOR, "role": "auditor"}
    (summary,) = room.get("/alerts", token=token).json()["alerts"]
    assert (summary["alert_id"], summary["state"]) == ("a1", "confirmed")
    decisions = room.get("/alerts/a1", token=token).json()["adjudications"]
    assert [(d["state"], d["officer"], d["reason"]) for d in decisions] == [
        ("acknowledged", "pc.operator", ""),
        ("confirmed", "pc.operator", "matched the custody photo"),
    ]
    authorisation = room.get(f"/deployments/{DEPLOYMENT}/authorisation", token=token).json()
    assert authorisation["authorised_by"] == "Supt. A. Example"
    assert room.get(f"/deployments/{DEPLOYMENT}", token=token).json()["adjudication"]["confirmed"] == 1
    users = {user["name"]: user["role"] for user in room.get("/users", token=token).json()}
    assert users == {AUDITOR: "auditor", "pc.operator": "operator", "sgt.supervisor": "supervisor"}


def test_without_a_credential_every_route_answers_401_and_each_request_is_counted_in_the_audit_log(room):
    tally = room.app.state.tally
    tally.flush(room.audit)
    checked = 0
    for method, path, _route in routes(room.app):
        if is_public(path):
            continue
        url = concrete(path)
        response = room.call(method, url, None, json={"reason": "auditing"})
        assert response.status_code == 401 and response.json() == {"detail": REFUSED_DETAIL}, f"{method} {path}"
        assert tally.flush(room.audit) == 1
        counted = room.audit.latest(1)[0]
        assert (counted.actor, counted.action, counted.details["reason"]) == ("anonymous", "login", "no credential")
        assert (counted.details["status"], counted.details["count"], counted.details["paths"]) == (401, 1, {url: 1})
        checked += 1
    assert checked >= len(AUDITOR_ROUTES) + 10


def test_the_audit_log_reads_page_by_page_and_by_action(room):
    token = room.auditor.token
    head = room.audit.head().seq
    first = room.get("/audit?limit=3", token=token).json()
    assert [e["seq"] for e in first["entries"]] == [1, 2, 3] and first["next_after"] == 3
    assert first["head_seq"] == head
    seen, after = [], 0
    while True:
        page = room.get(f"/audit?after={after}&limit=50", token=token).json()
        seen += page["entries"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1)) and len(seen) >= head
    stored = {entry.seq: entry.to_json() for entry in room.audit.entries(limit=len(seen))}
    assert all(entry == stored[entry["seq"]] for entry in seen[:head]), "entries are served as stored"
    decisions = room.get("/audit?action=adjudication&action=access_change", token=token).json()["entries"]
    assert [e["action"] for e in decisions] == ["access_change"] * 2 + ["adjudication"] * 2 + ["access_change"]
    assert room.get("/audit?action=no_such_action", token=token).status_code == 422
    assert room.get("/audit?limit=501", token=token).status_code == 422
    assert room.get("/audit").status_code == 403, "operators do not read the audit log"
    assert room.get("/audit", token=room.supervisor.token).status_code == 200


def test_an_auditor_is_issued_like_any_other_user(room, tmp_path, capsys):
    issued = room.post("/users", {"name": "dr.overseer", "role": "auditor"}, token=room.supervisor.token)
    assert issued.status_code == 201 and issued.json()["role"] == "auditor"
    assert room.get("/me", token=issued.json()["token"]).json() == {"name": "dr.overseer", "role": "auditor"}
    assert room.post("/users", {"name": "dr.other", "role": "auditor"}, token=room.auditor.token).status_code == 403

    config = tmp_path / "lfr.yaml"
    config.write_text(f"database:\n  url: {tmp_path / 'cli.sqlite3'}\n")
    assert lfr(["--config", str(config), "serve", "add-user", "ms.reviewer", "--role", "auditor"]) == 0
    token, explanation = capsys.readouterr().out.splitlines()
    assert token.startswith("lfr_") and "(auditor)" in explanation


def test_metrics_scrapes_are_counted_in_the_audit_log_too(room):
    tally = room.app.state.tally
    tally.flush(room.audit)
    for _ in range(3):
        assert room.call("GET", "/metrics", None).status_code == 200
    assert tally.flush(room.audit) == 1
    (counted,) = room.audit.latest(1)
    assert (counted.actor, counted.details["outcome"], counted.details["reason"]) == ("anonymous", "served", "metrics")
    assert (counted.details["count"], counted.details["paths"]) == (3, {"/metrics": 3})
