"""`lfr loadtest` as a user runs it: a real process on a short 4-camera crowd, replayed over RTSP through Ray.

One run of two short steps (2 then 4 cameras), then a camera actor killed on the last step
(`--chaos camera-actor`); its report.json is checked against what the run left behind: frames and
faces went through, every step's figures are there, the processes of each role used CPU, its
accuracy is the alert store's alerts scored against the crowd's truth, and the chaos outcome says
the camera came back with nothing lost.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.alerts.opening import open_alert_store
from cluster.alerts.query import AlertFilter
from cluster.audit.config import AuditConfig
from cluster.crowd.truth import CrowdTruth
from cluster.database.config import DatabaseConfig
from cluster.loadtesting.accuracy import score
from cluster.loadtesting.cameras import replay_cameras
from cluster.loadtesting.report import LoadReport
from tests.waiting import scaled

pytestmark = pytest.mark.slow

CROWD_S = 10
RUN_LIMIT_S = 360.0
"""Enrolment, Ray and the face service starting, two steps, a camera killed and back, stopping: about three
minutes on two quiet cores."""


@pytest.fixture(scope="module")
def loadtest(tmp_path_factory) -> tuple[LoadReport, Path, Path, str]:
    folder = tmp_path_factory.mktemp("loadtest")
    crowd, out, work = folder / "crowd", folder / "out", folder / "work"
    lfr = [sys.executable, "-m", "cluster.cli.main"]
    made = subprocess.run(
        [*lfr, "crowd", "make", str(crowd), "--cameras", "4", "--seconds", str(CROWD_S)]
        + ["--fps", "10", "--width", "640", "--height", "360"],
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )
    assert made.returncode == 0, made.stderr
    command = [*lfr, "loadtest", str(crowd), "--cameras", "2", "4", "--step-seconds", "6", "--warmup-seconds", "1"]
    command += ["--out", str(out), "--workdir", str(work), "--chaos", "camera-actor"]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=scaled(RUN_LIMIT_S),
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
    )
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return LoadReport.load(out / "report.json"), crowd, work, run.stdout


def test_each_step_measured_frames_faces_latency_and_resources(loadtest):
    report, _, _, output = loadtest
    assert [(s.cameras, s.sample_fps) for s in report.steps][:1] == [(2, 5.0)]
    for step in report.steps:
        assert step.frames_per_s > 0 and step.drops.offered > 0
        assert step.frame_latency.samples > 0 and 0 < step.frame_latency.p50 <= step.frame_latency.p99
        roles = {usage.role: usage for usage in step.roles}
        for role in ("driver", "camera actors", "forwarders + matching", "face service replicas", "rtsp replay (load)"):
            assert role in roles and roles[role].own_bytes > 0, (role, sorted(roles))
        assert roles["camera actors"].processes == step.cameras, step.roles
        assert roles["face service replicas"].cpu_cores > 0.05
    assert sum(step.faces_per_s for step in report.steps) > 0
    assert re.search(r"step 1/2: 2 cameras at 5 fps\s+\d+ s left\s+[\d.]+ frames/s", output), "no live status line"
    assert "report: " in output


def test_accuracy_is_the_alert_store_scored_against_the_truth(loadtest):
    report, crowd, work, _ = loadtest
    store = open_alert_store(DatabaseConfig(url=str(work / "records.sqlite3")), AuditConfig())
    alerts = store.list(AlertFilter(), limit=500).alerts
    truth = CrowdTruth.load(crowd / "ground_truth.json")
    ran = replay_cameras(truth, crowd, report.steps[-1].cameras)
    assert report.accuracy == score(alerts, truth, ran)
    assert report.accuracy.alerts == len(alerts) >= sum(step.accuracy.alerts for step in report.steps)
    timed = sum(step.alert_latency.samples for step in report.steps)
    if any(step.accuracy.alerts for step in report.steps):
        assert timed > 0, "a step raised alerts, yet no sighting was timed from its face to the store"
    assert timed <= sum(len(alert.sightings) for alert in alerts)
    assert report.accuracy.watchlist_people_seen >= 1
    assert report.accuracy.false_alerts == 0, [alert.person_id for alert in alerts]


def test_the_html_report_is_written_beside_the_json(loadtest):
    report, _, work, _ = loadtest
    page = (Path(report.crowd.folder).parent / "out" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert "whole run" in page and work.exists()


def test_the_chaos_scenario_ran_on_the_last_step_and_lost_nothing(loadtest):
    report, _, work, output = loadtest
    (chaos,) = report.chaos
    assert chaos.scenario == "camera-actor" and chaos.injected
    assert chaos.recovery_s is not None, f"the killed camera never streamed again:\n{output[-3000:]}"
    assert chaos.people_expected >= 1, "nobody was sighted twice before the fault: nobody was checked after it"
    assert chaos.nothing_lost and chaos.audit_verifies and chaos.non_match_traces == 0, chaos
    assert chaos.alerts_after >= chaos.alerts_before
    assert "chaos camera-actor: recovered in" in output
    page = (Path(report.crowd.folder).parent / "out" / "report.html").read_text()
    assert "Chaos on the last step" in page and "nothing lost" in page
