"""The control room's /metrics: real server, real store; counts requests and refusals, reads the records, gated."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster.api.metrics import METRICS_TOKEN_ENV
from tests.api.conftest import start_control_room
from tests.api.factories import PEOPLE, make_alert


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_refusals_and_read_the_records(control_room):
    room = control_room
    for index in range(3):
        room.store.save(make_alert(f"al-{index}"))
    room.post("/alerts/al-1/reject", {"reason": "not him"}).raise_for_status()
    room.post("/alerts/al-2/acknowledge", {}).raise_for_status()
    room.post("/alerts/al-2/confirm", {"reason": "stopped, identity checked"}).raise_for_status()
    assert room.get("/alerts/al-0").status_code == 200
    assert room.get("/me", token="lfr_wrong").status_code == 401
    assert room.call("GET", "/me", None).status_code == 401

    response = room.call("GET", "/metrics", None)
    assert response.status_code == 200
    found = samples(response.text)
    assert found[("lfr_api_requests_total", (("code", "200"), ("method", "GET"), ("route", "/alerts/{alert_id}")))] == 1
    assert found[("lfr_api_refusals_total", (("code", "401"), ("reason", "no credential")))] == 1
    assert found[("lfr_stored_alerts", (("state", "new"),))] == 1
    assert found[("lfr_stored_alerts", (("state", "rejected"),))] == 1
    assert found[("lfr_false_alert_ratio", ())] == 0.5
    assert found[("lfr_retention_overdue_alerts", ())] == 0
    assert found[("lfr_audit_entries_total", ())] == room.audit.head().seq
    assert found[("lfr_api_stream_clients", ())] == 0
    assert "al-0" not in response.text and PEOPLE[0] not in response.text, "no alert or person in any label"


def test_metrics_are_refused_to_a_remote_client_without_the_token(database, tmp_path, monkeypatch):
    server, room = start_control_room(database, tmp_path / "photos", trusted_proxies=("127.0.0.1",))
    remote = {"X-Forwarded-For": "203.0.113.9"}
    try:
        refused = room.call("GET", "/metrics", None, headers=remote)
        assert refused.status_code == 403
        assert METRICS_TOKEN_ENV in refused.json()["detail"]
        assert room.call("GET", "/metrics", room.operator.token, headers=remote).status_code == 403
        monkeypatch.setenv(METRICS_TOKEN_ENV, "scrape-token-for-tests")
        assert room.call("GET", "/metrics", "not-the-token", headers=remote).status_code == 403
        allowed = room.call("GET", "/metrics", "scrape-token-for-tests", headers=remote)
        assert allowed.status_code == 200
        assert ('lfr_api_refusals_total{code="403",reason="metrics not allowed"} 3.0') in allowed.text
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/metrics"])
def test_metrics_hold_no_route_ids(control_room, path):
    control_room.get("/alerts/does-not-exist")
    text = control_room.call("GET", path, None).text
    assert "does-not-exist" not in text
    assert 'route="/alerts/{alert_id}"' in text
