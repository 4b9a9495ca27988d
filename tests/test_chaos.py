"""Chaos scenarios against one real live deployment (cluster/chaos/scenarios.py), each with its recovery measured.

One deployment for the module, as an operator runs one: a recorded crowd on two cameras replayed
by the RTSP replay server (looping at real time), the watchlist enrolled and frozen on a real
Milvus server, alerts and the audit log in a SQLite file on a size-limited tmpfs mounted for the
module (the dead-letter spool on another disk), all run by `LiveRun` on the session's Ray
cluster. A first pass of the crowd decides who is expected: the watchlist people it alerted.

Then each scenario in turn injects its fault, holds it until its effect shows, restores what it
broke and waits for recovery; afterwards every expected person must be sighted again (they walk by
again each pass of the loop; a person who passed only during the outage is excused, since
frames of an outage are dropped, not queued), no alert stored before may be gone, no alert
raised since may repeat one stored before (one that the product's fusion rules would have grown
instead: the deployment lost track of whom it alerted), the audit log must verify with its
anchors, and no stored vector may show a face of anyone who matched nobody.

- camera-actor: SIGKILL to one camera's actor; Ray restarts it and it reconnects.
- face-replica: SIGKILL to the face replica; Serve starts another.
- coordinator: SIGKILL to the Coordinator; Ray restarts it, it rebuilds its open alerts from the
  store, sightings saved before stay and later ones grow the same alerts (no duplicate).
- rtsp-drop: the RTSP server killed and started again on its port; the cameras reconnect.
- milvus-restart: the Milvus server stopped (searches fail, tracklets wait) and started again.
- disk-full: the records' tmpfs filled; the run goes on, alerts wait in the dead-letter spool and
  are stored once the filler is deleted.
- soak: `LFR_SOAK_S` seconds (default 60) with no fault: memory per role and latency stay flat.
- worker-node: losing a Ray worker node is tests/test_two_nodes.py (two `ray start` nodes, the face
  node killed at once); its scenario object is `WorkerNodeLoss`, not run again here.

Each scenario's figures are shown as a table at the module's end (`pytest tests/test_chaos.py`) and
recorded in docs/benchmarks.md.
"""

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from cluster.application.chaos_system import LiveChaosSystem
from cluster.application.live_run import LiveRun, LiveRunSettings
from cluster.chaos.scenarios import ChaosOutcome, ChaosSettings, Soak, outcomes_table, scenario
from cluster.config import LfrConfig
from cluster.crowd.scoring import score_alerts
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.truth import CrowdTruth
from cluster.database.config import DatabaseConfig
from cluster.demo.scenario import DemoOptions, cameras_of, central_faces, demo_deployment, enrol_watchlist
from cluster.fusion.topology import CameraTopology
from cluster.gallery.config import GalleryConfig, ServerBackendConfig
from cluster.replay.rtsp_server import RtspReplayServer
from loadtest.machine import describe_machine
from loadtest.milvus_server import MilvusServer
from tests.live_deployment import rtsp_cameras
from tests.waiting import scaled, wait_for

pytestmark = pytest.mark.slow

SECONDS = 16.0
"""The crowd's length: one pass of the loop."""
FPS = 10
TMPFS_SIZE = "48m"
RESULTS_S = 180.0
"""From the run's start to its first results: the replica's process imports torch and loads the models."""
RECOVERY_BOUND_S = 60.0
"""Every scenario recovers within this on an idle machine (stretched by load): Ray's and Serve's restarts, an
RTSP reconnect, a Milvus start (about 7 s), the spool's redelivery timer (5 s)."""
FIRST_PASSES = 4
"""Passes of the crowd the first alerts may take (the face service warms up, the machine may be busy)."""
HOLD_S = 3 * SECONDS
"""Longest a fault is held for its effect to show: a fault seen only when someone walks by may take a pass."""
SOAK_S = float(os.environ.get("LFR_SOAK_S", "60"))
SOAK_MEMORY_GROWTH = 64 * 2**20
"""Bytes a role's memory may grow over the soak (fitted trend), beyond a fifth of what it held at the start."""


@dataclass
class Deployment:
    system: LiveChaosSystem
    truth: CrowdTruth
    expected: frozenset[str]
    outcomes: list[ChaosOutcome]


@pytest.fixture(scope="module")
def records_disk(tmp_path_factory) -> Iterator[Path]:
    """A size-limited tmpfs for the records database (needs root: CI and the development machines)."""
    folder = tmp_path_factory.mktemp("records")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(folder)], check=True)
    yield folder
    # Lazily: the run's last SQLite handles may close after the module ends.
    subprocess.run(["umount", "--lazy", str(folder)], check=True)


@pytest.fixture(scope="module")
def milvus(tmp_path_factory) -> Iterator[MilvusServer]:
    server = MilvusServer(tmp_path_factory.mktemp("milvus"), secrets.token_urlsafe(16))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def deployment(
    request, ray_session, records_disk, milvus, tmp_path_factory, face_pipeline, crowds
) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("chaos")
    spec = CrowdSpec(cameras=2, seconds=SECONDS, fps=FPS, width=640, height=360, seed=2)
    truth = crowds.copy(spec, workdir / "crowd")
    config = LfrConfig(
        gallery=GalleryConfig(
            backend=ServerBackendConfig(type="milvus", uri=milvus.uri, token=SecretStr(milvus.token))
        ),
        database=DatabaseConfig(url=str(records_disk / "lfr.sqlite3"), dead_letters=workdir / "dead-letters"),
    )
    config = config.model_copy(update={"matching": config.matching.model_copy(update={"target_fpir": 1e-2})})
    version, _ = enrol_watchlist(truth, config)
    server = RtspReplayServer([workdir / "crowd" / camera.file for camera in truth.cameras])
    server.start()
    config = config.model_copy(
        update={
            "cameras": rtsp_cameras(cameras_of(truth, workdir / "crowd"), server.urls),
            "deployment": demo_deployment(truth, version, DemoOptions(workdir=workdir, target_fpir=1e-2)),
        }
    )
    # The faces the privacy scan looks for, embedded before the run so as not to slow it.
    strangers = faces_of(face_pipeline, [p for p in truth.people if p.id not in watchlist(truth)])
    enrolled = faces_of(face_pipeline, truth.watchlist, enrolment=True)
    run = LiveRun(config, LiveRunSettings(actor="cli:test-chaos", address=ray_session.address))
    run.start()
    system = LiveChaosSystem(
        run=run,
        config=config,
        scanned=(records_disk, config.database.dead_letter_folder(), milvus.data_dir),
        strangers=strangers,
        enrolled=enrolled,
        rtsp=server,
        milvus=milvus,
    )
    outcomes: list[ChaosOutcome] = []
    try:
        wait_for(lambda: sum(system.probe().results.values()) > 0, RESULTS_S, "the first results", interval_s=0.5)
        # The watchlist people alerted over the first passes with the models running are expected after each fault.
        started = video_seconds(run)
        try:
            wait_for(
                lambda: system.alerts() and video_seconds(run) >= started + SECONDS,
                FIRST_PASSES * SECONDS,
                "alerts over the first passes of the crowd",
                interval_s=0.25,
            )
        except pytest.fail.Exception as exc:
            raise AssertionError(f"{exc}; the match stages: {system.run.pipeline.current_sink_summaries()}") from None
        alerts = system.alerts()
        score = score_alerts(alerts, truth)
        assert score.false_alerts == 0, f"false alerts: {[a.person_id for a in alerts]}"
        expected = frozenset(alert.person_id for alert in alerts)
        yield Deployment(system, truth, expected, outcomes)
    finally:
        run.stop()
        server.stop()
        if outcomes:
            plugins = request.config.pluginmanager
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            with plugins.get_plugin("capturemanager").global_and_fixture_disabled():
                plugins.get_plugin("terminalreporter").write_line(
                    f"\nchaos on {describe_machine()}, load average {load}\n{outcomes_table(outcomes)}"
                )


def video_seconds(run: LiveRun) -> float:
    """Seconds of video every camera has decoded (the server replays in real time)."""
    cameras = run.snapshot().cameras
    return min((c.health.frames_decoded / FPS if c.health else 0.0 for c in cameras), default=0.0)


def watchlist(truth: CrowdTruth) -> set[str]:
    return {person.id for person in truth.watchlist}


def faces_of(face_pipeline, people, enrolment: bool = False) -> np.ndarray:
    """The primary model's embeddings of the people's appearance photos (or enrolment photos), one row each."""
    return np.stack(
        [
            face.embedding
            for person in people
            for face in central_faces(face_pipeline, person.enrolment_photos if enrolment else person.appearance_photos)
        ]
    )


def settings(deployment: Deployment) -> ChaosSettings:
    return ChaosSettings(
        recovery_bound_s=scaled(RECOVERY_BOUND_S),
        hold_s=scaled(HOLD_S),
        expected_people=deployment.expected,
        confirm_s=scaled(3 * SECONDS),
        topology=CameraTopology.from_config(deployment.system.config.cameras),
        fusion=deployment.system.config.fusion,
    )


def run_scenario(deployment: Deployment, name: str) -> ChaosOutcome:
    """Run the named scenario and check what every scenario promises; the outcome for the scenario's own checks."""
    outcome = scenario(name).run(deployment.system, settings(deployment))
    deployment.outcomes.append(outcome)
    assert outcome.recovered, f"{name}: not recovered within {RECOVERY_BOUND_S:.0f} s (stretched for load)"
    assert outcome.recovery_s is not None and outcome.recovery_s <= scaled(RECOVERY_BOUND_S)
    assert not outcome.alerts_lost and not outcome.sightings_lost, f"{name}: alerts or sightings stored before lost"
    assert not outcome.duplicates, f"{name}: duplicated alerts {outcome.duplicates}: {describe(deployment)}"
    assert not outcome.people_missed, (
        f"{name}: watchlist people who walked by after recovery were not sighted: {outcome.people_missed}"
    )
    assert outcome.audit_verifies, f"{name}: the audit log does not verify"
    assert outcome.non_match_traces == 0, f"{name}: {outcome.non_match_traces} stored faces of non-matches"
    false = score_alerts(deployment.system.alerts(), deployment.truth).false_alerts
    assert false == 0, f"{name}: {false} false alerts"
    return outcome


def describe(deployment: Deployment) -> list[str]:
    """Each alert's person and sightings (camera, seconds from the first sighting), for a failure's message."""
    alerts = deployment.system.alerts()
    t0 = min((s.first_seen for a in alerts for s in a.sightings), default=0.0)
    return [
        f"{a.alert_id[:8]} {a.person_id}: "
        + " ".join(f"{s.camera_id}@{s.first_seen - t0:.1f}-{s.last_seen - t0:.1f}" for s in a.sightings)
        for a in alerts
    ]


def test_a_killed_camera_actor_is_restarted_and_streams_again(deployment):
    run_scenario(deployment, "camera-actor")


def test_a_killed_face_replica_is_replaced_and_every_camera_answered_again(deployment):
    outcome = run_scenario(deployment, "face-replica")
    assert outcome.fault_seen_s is not None, "no request failed when the replica died"


def test_a_killed_coordinator_keeps_its_alerts_and_fuses_later_sightings_into_them(deployment):
    outcome = run_scenario(deployment, "coordinator")
    assert outcome.alerts_after >= outcome.alerts_before


def test_cameras_reconnect_after_their_rtsp_source_drops(deployment):
    outcome = run_scenario(deployment, "rtsp-drop")
    assert outcome.fault_seen_s is not None, "no camera noticed its source going"


def test_matching_resumes_after_the_milvus_server_restarts(deployment):
    outcome = run_scenario(deployment, "milvus-restart")
    assert outcome.fault_seen_s is not None, "no watchlist search failed while Milvus was down"


def test_a_full_alert_disk_spools_alerts_and_stores_them_once_space_returns(deployment):
    outcome = run_scenario(deployment, "disk-full")
    assert outcome.fault_seen_s is not None, "no alert was dead-lettered while the disk was full"
    assert deployment.system.dead_letters() == 0


def test_memory_and_latency_stay_flat_over_a_soak(deployment):
    soak = Soak(seconds=SOAK_S, sample_every_s=5.0)
    outcome = soak.run(deployment.system, settings(deployment))
    deployment.outcomes.append(outcome)
    figures = outcome.soak
    assert figures is not None and figures.samples >= 3
    for role, growth in figures.memory_growth_bytes.items():
        allowed = SOAK_MEMORY_GROWTH + figures.memory_start_bytes[role] / 5
        assert growth <= allowed, f"{role} grew {growth / 2**20:.0f} MiB over {figures.seconds:.0f} s"
    assert figures.latency_start_s is not None and figures.latency_end_s is not None
    assert figures.latency_end_s <= 2 * figures.latency_start_s + 0.25, (
        f"latency rose from {figures.latency_start_s:.2f} s to {figures.latency_end_s:.2f} s"
    )
    assert not outcome.duplicates and outcome.audit_verifies and outcome.non_match_traces == 0
