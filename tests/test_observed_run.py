"""A real Prometheus scrapes a real run: the control room's /metrics and the Ray node's metrics export port.

`lfr run` plays a recorded crowd on two cameras through the face service, matching and the
Coordinator, on the session's Ray cluster (started by `ray start --metrics-export-port`, as an
operator starts one); the control room (`lfr serve`'s app on a real uvicorn) reads the same
SQLite records, where an officer rejects an alert and a caller without a key is refused.
Prometheus, started on loopback with the generated scrape config and our alerting rules,
scrapes both every second. The tests then ask it for what a platform engineer watches: the Ray
side's metrics appear under their `lfr_` names, the rules evaluate, and every dashboard panel's
query returns data from the run.
"""

import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from actors import metrics as ray_side
from cluster.alerts.opening import open_alert_store
from cluster.alerts.query import AlertFilter
from cluster.api.app import create_app
from cluster.api.photos import FolderWatchlistPhotos
from cluster.api.server import ApiServer
from cluster.api.services import ControlRoomServices
from cluster.observability import dashboards
from cluster.observability.conventions import MetricKind
from cluster.observability.preview import Curve, plot
from cluster.observability.scrape import CONTROL_ROOM_JOB, RAY_JOB, ScrapeTargets
from tests.live_deployment import stop_gallery, write_deployment
from tests.prometheus_server import PROMETHEUS, PrometheusServer, Series
from tests.ray_cluster import LocalRayCluster
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed: apt-get install -y prometheus"),
]

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "configs" / "prometheus" / "rules.yaml"
SECONDS = 12.0
RUN_S = 45.0
"""How long `lfr run` runs: the face service's start, then the crowd's seconds, then some quiet."""
RUN_DEADLINE_S = RUN_S + 180.0
SCRAPE_S = 1.0
STEADY_SAMPLES = 15
"""Seconds of the run a face service replica is up at the least (it starts in seconds and runs to the end)."""

HEALTHY_RUN_METRICS = (
    ray_side.CAMERA_STATE,
    ray_side.CAMERA_DECODED,
    ray_side.CAMERA_SAMPLED,
    ray_side.CAMERA_QUEUE,
    ray_side.FORWARD_IN_FLIGHT,
    ray_side.FRAME_LATENCY,
    ray_side.FACE_STAGE,
    ray_side.FACE_BATCH,
    ray_side.FACE_FRAMES,
    ray_side.FACE_FACES,
    ray_side.FACE_QUEUE,
    ray_side.FACE_REPLICAS,
    ray_side.TRACKLETS,
    ray_side.GALLERY_SEARCH,
    ray_side.ALERTS_RAISED,
    ray_side.ALERT_LATENCY,
)
"""The Ray side's metrics a run without faults produces (errors, drops and reconnects need a fault)."""
NEED_A_FACE = (ray_side.FACE_FACES, ray_side.TRACKLETS, ray_side.GALLERY_SEARCH)
"""Reported for a camera once a face was found in its frames: on a loaded machine one camera's few
faces can all fall in frames the forwarder dropped as stale, so these need only one camera."""


@dataclass(frozen=True)
class ObservedRun:
    """The Prometheus that watched the run, and the run's window (Unix seconds)."""

    prometheus: PrometheusServer
    start: float
    end: float
    output: str

    def over_the_run(self, promql: str) -> list[Series]:
        return self.prometheus.query_range(promql, self.start, self.end, SCRAPE_S)

    def counted_by(self, counter: str, label: str) -> set[str]:
        """The `label` values whose `counter` rose during the run.

        The session's Ray node keeps exporting the last totals of earlier tests' cameras (Ray keeps a
        counter of a finished worker), so a camera counts only if its total moved while this run ran.
        """
        window_s = math.ceil(self.end - self.start) + 1
        rose = self.prometheus.query(f"sum by ({label}) (increase({counter}[{window_s}s])) > 0", at=self.end)
        return {s.labels[label] for s in rose}


def _finite(series: list[Series]) -> bool:
    return any(math.isfinite(value) for one in series for _, value in one.samples)


@pytest.fixture(scope="module")
def observed_run(ray_cluster: LocalRayCluster, tmp_path_factory, crowds) -> Iterator[ObservedRun]:
    workdir = tmp_path_factory.mktemp("observed-run")
    path, config = write_deployment(workdir, SECONDS, crowds)
    store = open_alert_store(config.database, config.audit)
    (workdir / "photos").mkdir()
    services = ControlRoomServices.over(store, FolderWatchlistPhotos(workdir / "photos"))
    key = services.keys.add_user("duty-officer", "operator", actor="test").token
    server = ApiServer(create_app(services), "127.0.0.1", 0).start()
    control_room = server.url.removeprefix("http://")
    targets = ScrapeTargets(
        control_rooms=(control_room,),
        ray_nodes=(f"127.0.0.1:{ray_cluster.metrics_port}",),
        interval_s=SCRAPE_S,
        rule_files=(RULES,),
    )
    prometheus = PrometheusServer.start(targets, workdir / "prometheus")
    run = None
    run_log = workdir / "lfr-run.log"
    try:
        start = time.time()
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cluster.cli.main",
                "--config",
                str(path),
                "run",
                "--address",
                ray_cluster.address,
                "--duration",
                str(RUN_S),
            ],  # fmt: skip
            stdout=run_log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        )

        def first_alert() -> tuple:
            if run.poll() is not None:
                pytest.fail(f"lfr run ended before raising an alert:\n{run_log.read_text()[-4000:]}")
            return store.list(AlertFilter(), limit=1).alerts

        alert = wait_for(first_alert, RUN_DEADLINE_S, "an alert from the run", interval_s=0.5)[0]
        officer = {"Authorization": f"Bearer {key}"}
        for action in ("acknowledge", "reject"):
            url = f"{server.url}/alerts/{alert.alert_id}/{action}"
            decided = requests.post(url, json={"reason": "not them"}, headers=officer, timeout=30)
            assert decided.status_code == 200, decided.text
        assert requests.get(f"{server.url}/alerts", timeout=30).status_code == 401
        run.wait(timeout=RUN_DEADLINE_S)
        output = run_log.read_text()
        assert run.returncode == 0, output[-4000:]
        wait_for(
            lambda: prometheus.query('lfr_stored_alerts{state="rejected"} > 0'),
            30,
            "a scrape of the control room after the rejection",
        )
        yield ObservedRun(prometheus, start, time.time(), output)
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.wait(30)
        prometheus.stop()
        server.stop()
        store.database.close()
        stop_gallery(config)


def test_prometheus_scrapes_the_control_room_and_the_ray_node(observed_run):
    """Both targets answered most scrapes of the run: on a busy machine one of Ray's exports can miss a
    scrape's deadline (seen at load 12), which Prometheus shows as `down` until the next scrape."""
    assert set(observed_run.prometheus.targets_health()) == {CONTROL_ROOM_JOB, RAY_JOB}
    answered = {
        series.labels["job"]: [value for _, value in series.samples] for series in observed_run.over_the_run("up")
    }
    assert set(answered) == {CONTROL_ROOM_JOB, RAY_JOB}, answered
    for job, values in answered.items():
        assert values and sum(values) >= len(values) / 2, f"{job} answered {sum(values):.0f} of {len(values)} scrapes"
    routes = {s.labels["route"] for s in observed_run.over_the_run("lfr_api_requests_total")}
    assert "/alerts/{alert_id}/reject" in routes, routes
    refused = observed_run.over_the_run("lfr_api_refusals_total")
    assert refused and all(s.labels["code"] == "401" for s in refused), refused
    assert _finite(observed_run.over_the_run("lfr_false_alert_ratio == 1")), "the one adjudicated alert was rejected"


@pytest.mark.parametrize("spec", HEALTHY_RUN_METRICS, ids=lambda spec: spec.name)
def test_the_ray_side_metrics_appear_under_their_lfr_names(observed_run, spec):
    name = f"{spec.name}_count" if spec.kind is MetricKind.HISTOGRAM else spec.name
    series = observed_run.over_the_run(name)
    assert series, f"{name} never reached Prometheus from the run (the run said:\n{observed_run.output[-2000:]})"
    assert all(s.labels["job"] == RAY_JOB for s in series)
    if ray_side.CAMERA in spec.labels and spec.kind is MetricKind.GAUGE:
        cameras = {s.labels[ray_side.CAMERA] for s in series}
        assert {"cam0", "cam1"} <= cameras, cameras
    elif ray_side.CAMERA in spec.labels:
        cameras = observed_run.counted_by(name, ray_side.CAMERA)
        if spec in NEED_A_FACE:
            assert cameras and cameras <= {"cam0", "cam1"}, cameras
        else:
            assert cameras == {"cam0", "cam1"}, cameras
    assert not observed_run.over_the_run(f"ray_{name}"), "the scrape keeps Ray's prefix: the relabel did not apply"


def test_the_face_service_gauges_stay_exported_while_its_replica_runs(observed_run):
    """Ray drops a gauge from its export a while after it was last set; the replica sets its gauges again at
    each health check, so they do not vanish while it sits idle or steady."""
    for name in (ray_side.FACE_REPLICAS.name, ray_side.FACE_QUEUE.name):
        (replicas,) = observed_run.over_the_run(f"sum({name})")
        assert len(replicas.samples) >= STEADY_SAMPLES, f"{name}: only {len(replicas.samples)} s of the run"


def test_the_alerting_rules_evaluate_on_the_run(observed_run):
    groups = observed_run.prometheus.rule_groups()
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 6
    assert all(rule["health"] == "ok" for rule in rules), [(r["name"], r.get("lastError")) for r in rules]


PANEL_QUERIES = [
    pytest.param(query.expr, id=f"{spec.uid}/{panel.title}/{query.legend}")
    for spec in dashboards.DASHBOARDS
    for panel in spec.panels
    for query in panel.queries
]


@pytest.mark.parametrize("expr", PANEL_QUERIES)
def test_every_dashboard_panel_shows_data_from_the_run(observed_run, expr):
    series = observed_run.over_the_run(expr)
    assert _finite(series), f"no value over the run for {expr} (got {series[:3]})"


PREVIEWS_ENV = "LFR_DASHBOARD_PREVIEWS"
"""Set to a folder (docs/dashboards) to keep the previews; otherwise they go to the test's temp dir."""


def test_each_dashboard_has_a_preview_drawn_from_the_run(observed_run, tmp_path):
    folder = Path(os.environ.get(PREVIEWS_ENV) or tmp_path)

    def curves(query: dashboards.Query) -> list[Curve]:
        return [Curve(s.labels, s.samples) for s in observed_run.over_the_run(query.expr)]

    for spec in dashboards.DASHBOARDS:
        drawn = plot(spec, curves, folder / f"{spec.uid}.png")
        assert drawn.empty_panels == (), f"{spec.uid}: nothing to draw in {drawn.empty_panels}"
        assert drawn.path.stat().st_size > 10_000
