"""The Grafana dashboards as code: they render to JSON that the SDK's model reads back unchanged, every query
names a metric we export, and `lfr dashboards render` / `push` work as documented.

No Grafana runs here: `push` is checked against a local HTTP server that answers as Grafana's
dashboard API does, to see the request grafana-client makes (path, token, payload). Every panel's
query returning data from a real run is checked in tests/test_observed_run.py.
"""

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from actors import metrics as ray_side
from cluster.api import metrics as control_room_side
from cluster.cli.main import main
from cluster.observability import dashboards
from cluster.observability.conventions import MetricKind

METRIC = re.compile(r"\blfr_[a-z0-9_]+")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def exported_series() -> set[str]:
    """Every series name the two exporters produce (a histogram's as _bucket, _sum and _count)."""
    names = set()
    for spec in (*ray_side.SPECS, *control_room_side.SPECS):
        if spec.kind is MetricKind.HISTOGRAM:
            names.update(spec.name + suffix for suffix in HISTOGRAM_SERIES)
        else:
            names.add(spec.name)
    return names


def _without_empty(value: object) -> object:
    """`value` without empty objects (the model adds `"custom": {}` to a panel's field defaults)."""
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v != {}}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


@pytest.mark.parametrize("spec", dashboards.DASHBOARDS, ids=lambda spec: spec.uid)
def test_a_dashboard_renders_to_json_the_sdk_model_reads_back_unchanged(spec):
    register_default_plugins()
    rendered = json.loads(dashboards.to_json(spec))
    model = Dashboard.from_json(rendered)
    read_back = json.loads(json.dumps(model.to_json(), default=lambda o: o.to_json()))
    assert _without_empty(read_back) == _without_empty(rendered), "the SDK's model drops or changes a field"
    assert rendered["uid"] == spec.uid and len(spec.uid) <= 40
    panels = rendered["panels"]
    assert [p["title"] for p in panels] == [p.title for p in spec.panels]
    for panel, panel_spec in zip(panels, spec.panels, strict=True):
        assert panel["type"] == panel_spec.kind
        assert [t["expr"] for t in panel["targets"]] == [q.expr for q in panel_spec.queries]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    assert rendered["templating"]["list"][0]["query"] == "prometheus"


def test_every_query_names_only_metrics_we_export():
    known = exported_series()
    for spec in dashboards.DASHBOARDS:
        for panel in spec.panels:
            for query in panel.queries:
                unknown = set(METRIC.findall(query.expr)) - known
                assert not unknown, f"{spec.uid} / {panel.title}: {unknown} is not exported"


def test_the_dashboards_cover_every_watched_area():
    watched = {
        name
        for spec in dashboards.DASHBOARDS
        for p in spec.panels
        for q in p.queries
        for name in METRIC.findall(q.expr)
    }
    for metric in (
        "lfr_camera_state_info",
        "lfr_face_replicas",
        "lfr_tracklets_total",
        "lfr_false_alert_ratio",
        "lfr_api_refusals_total",
        "lfr_audit_anchor_age_seconds",
        "lfr_retention_overdue_alerts",
    ):
        assert metric in watched
    assert len({spec.uid for spec in dashboards.DASHBOARDS}) == len(dashboards.DASHBOARDS)


def test_a_panel_needs_one_to_eight_queries():
    with pytest.raises(ValueError, match="give 1 to 8"):
        dashboards.PanelSpec("Empty", "nothing", "none", ())


def test_lfr_dashboards_render_writes_one_file_per_dashboard(tmp_path, capsys):
    assert main(["dashboards", "render", str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{spec.uid}.json" for spec in dashboards.DASHBOARDS)
    for spec in dashboards.DASHBOARDS:
        assert json.loads((tmp_path / "out" / f"{spec.uid}.json").read_text())["title"] == spec.title
    assert capsys.readouterr().out.count(".json") == len(dashboards.DASHBOARDS)


def test_lfr_dashboards_push_without_a_token_says_which_variable_to_set(monkeypatch, capsys):
    monkeypatch.delenv(dashboards.GRAFANA_TOKEN_ENV, raising=False)
    assert main(["dashboards", "push", "--url", "http://127.0.0.1:9"]) == 2
    assert dashboards.GRAFANA_TOKEN_ENV in capsys.readouterr().err


@dataclass
class GrafanaStandIn:
    """What a stand-in for Grafana's dashboard API received; it answers each save as Grafana does."""

    url: str
    requests: list[tuple[str, str, dict]] = field(default_factory=list)


@pytest.fixture
def grafana_stand_in() -> Iterator[GrafanaStandIn]:
    received: list[tuple[str, str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, self.headers.get("Authorization", ""), body))
            uid = body["dashboard"]["uid"]
            answer = json.dumps({"status": "success", "uid": uid, "version": 3, "url": f"/d/{uid}/x"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield GrafanaStandIn(f"http://127.0.0.1:{server.server_address[1]}", received)
    server.shutdown()
    server.server_close()


def test_lfr_dashboards_push_saves_each_dashboard_with_the_token(grafana_stand_in, monkeypatch, capsys):
    pytest.importorskip("grafana_client", reason="the grafana extra is not installed (docs/observability.md)")
    monkeypatch.setenv(dashboards.GRAFANA_TOKEN_ENV, "glsa_test_token")
    assert main(["dashboards", "push", "--url", grafana_stand_in.url, "--folder", "ops"]) == 0
    assert [path for path, _, _ in grafana_stand_in.requests] == ["/api/dashboards/db"] * len(dashboards.DASHBOARDS)
    assert {auth for _, auth, _ in grafana_stand_in.requests} == {"Bearer glsa_test_token"}
    for (_, _, body), spec in zip(grafana_stand_in.requests, dashboards.DASHBOARDS, strict=True):
        assert body["dashboard"] == json.loads(dashboards.to_json(spec))
        assert body["overwrite"] is True and body["folderUid"] == "ops"
    out = capsys.readouterr().out
    assert f"{len(dashboards.DASHBOARDS)} of {len(dashboards.DASHBOARDS)} dashboards pushed" in out
    assert "version 3" in out
