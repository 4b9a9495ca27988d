"""A deployment on two Ray nodes, as a cluster runs it: cameras on one node, the face service on the other.

Two `ray start` processes on this machine, each node labelled with its role (`lfr-role: cameras` on
the head, `lfr-role: faces` on the worker) and keeping its objects on a tmpfs of its own. The same
recorded crowd, watchlist version and configuration (`face_service.placement` naming the labels)
run twice through `LiveRun`, the live run behind `lfr run`:

1. on the head alone: the face replica finds no `faces` node and falls back to the head;
2. on both nodes: the cameras and their forwarders run on the head, the face replica on the worker;
   once results flow, the worker is killed at once (every process of it, as a machine losing power).
   The run goes on: Ray declares the node dead, Serve starts the replica again on the head, the
   forwarders' requests are answered again, and the run stops cleanly.

The cameras loop the crowd, and each run watches one whole pass of it after its first results (the
two-node run: after the replica came back), so a person who walked by only while no replica ran
walks by again: frames of an outage are dropped, not queued (a live system shows the present). While
a person the one-node run alerted is still unalerted, the two-node run watches on, a second pass at
most: once in CI, a person's one visit in the pass after the failover raised no alert (the replica
that starts anew on the head shares its two CPUs with the cameras), and a second visit is the fair
comparison; a deployment that stays broken after the failover still fails.
Both runs raise no false alert; the two-node run alerts every watchlist person the one-node run
alerted; at least one alert holds a sighting made after the replica came back; and every alert
stored before the kill is still there.
"""

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray
import ray._private.state

from cluster.application.live_run import LiveRun, LiveRunSettings, LiveSnapshot
from cluster.application.ray_runtime import start_ray, stop_ray
from cluster.audit.config import ANCHOR_SUFFIX
from cluster.config import LfrConfig
from cluster.crowd.scoring import AlertScore, score_alerts
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.synthesis import make_crowd
from cluster.crowd.truth import CrowdTruth
from cluster.database.config import DatabaseConfig
from cluster.demo.scenario import DemoOptions, cameras_of, demo_deployment, enrol_watchlist, read_alerts
from cluster.gallery.config import GalleryConfig, LiteBackendConfig
from cluster.gallery.lite_backend import EmbeddedMilvus
from cluster.live.placement import NodePlacement, PlacementConfig
from tests.ray_cluster import LocalRayCluster, RayWorkerNode
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

ROLE = "lfr-role"
CAMERAS_NODE = {ROLE: "cameras"}
FACES_NODE = {ROLE: "faces"}
NODE_CPUS = 2
SECONDS = 24.0
"""The crowd's length. The cameras loop it, and each run watches one whole pass after its first results (the
two-node run: after the face service is back), so every watchlist person walks by while the models run."""
FPS = 10
REPLICA_CLASS = "ServeReplica:faces:FaceService"
JOIN_S = 60.0
RESULTS_S = 180.0
"""From the run's start to its first results: the replica's process imports torch and loads the models."""
RECOVERY_S = 150.0
"""From the kill to results again: Ray notices the node is gone (missed heartbeats), then the replica starts anew."""
NODE_DEATH_SETTINGS = {"health_check_period_ms": "1000", "health_check_failure_threshold": "3"}
"""The GCS declares a node dead after 3 failed health checks a second apart, not Ray's default 5 three seconds
apart: the test is of what the deployment does once Ray has declared the node dead, and the default only adds
about 12 s of waiting to it (the product's clusters keep Ray's defaults). A killed node refuses each check at
once; a live but busy one still has each check's 10 s timeout to answer, so load does not kill it."""


@dataclass(frozen=True)
class RunOutcome:
    alerts: tuple
    score: AlertScore
    alerts_before_kill: frozenset[str] = frozenset()
    outage: tuple[float, float] | None = None
    """Video seconds from the kill to the first result after it."""
    recovered_at: float | None = None
    """Wall time of the first result after the kill."""
    watched_to: float = 0.0
    """Video seconds when the run stopped."""
    streams_after: str = ""
    """Each camera's answered, stale and dropped frames from the first result after the kill to the stop."""


@pytest.fixture(scope="module")
def crowd(tmp_path_factory) -> Iterator[tuple[CrowdTruth, LfrConfig, Path]]:
    """A recorded crowd on two cameras, its watchlist enrolled and frozen, the deployment placed by node labels."""
    workdir = tmp_path_factory.mktemp("two-nodes")
    truth = make_crowd(CrowdSpec(cameras=2, seconds=SECONDS, fps=FPS, width=640, height=360, seed=1), workdir / "crowd")
    milvus = LiteBackendConfig(data_dir=workdir / "milvus")
    config = LfrConfig(
        gallery=GalleryConfig(backend=milvus),
        database=DatabaseConfig(url=str(workdir / "enrolment.sqlite3")),
    )
    config = config.model_copy(update={"matching": config.matching.model_copy(update={"target_fpir": 1e-2})})
    version, _ = enrol_watchlist(truth, config)
    placement = PlacementConfig(cameras=NodePlacement(labels=CAMERAS_NODE), replicas=NodePlacement(labels=FACES_NODE))
    config = config.model_copy(
        update={
            "cameras": [camera.model_copy(update={"loop": True}) for camera in cameras_of(truth, workdir / "crowd")],
            "deployment": demo_deployment(truth, version, DemoOptions(workdir=workdir, target_fpir=1e-2)),
            # One thread, so one logical CPU: the replica must fit beside the cameras on the head when it fails over.
            "face_service": config.face_service.model_copy(update={"placement": placement, "threads_per_replica": 1}),
        }
    )
    yield truth, config, workdir
    EmbeddedMilvus(milvus, config.gallery.timeouts).stop()


@pytest.fixture(scope="module")
def head() -> Iterator[LocalRayCluster]:
    """The head node, labelled for cameras; this module's driver joins it as `lfr run --address` does."""
    cluster = LocalRayCluster.start(num_cpus=NODE_CPUS, labels=CAMERAS_NODE, settings=NODE_DEATH_SETTINGS)
    start_ray(cluster.address)
    yield cluster
    stop_ray()
    cluster.stop()


def test_two_nodes_alert_as_one_and_survive_losing_the_face_node(crowd, head):
    truth, config, workdir = crowd
    one = run_deployment(config, workdir / "one-node.sqlite3", truth, head, worker=None)
    one_people = frozenset(alert.person_id for alert in one.alerts)
    worker = RayWorkerNode.join(head.address, NODE_CPUS, FACES_NODE)
    try:
        wait_for(lambda: len(alive_nodes()) == 2, JOIN_S, "the worker joining the cluster", interval_s=0.5)
        two = run_deployment(config, workdir / "two-nodes.sqlite3", truth, head, worker, awaited=one_people)
    finally:
        worker.stop()

    assert one.score.false_alerts == 0, f"one node: false alerts {[a.person_id for a in one.alerts]}"
    assert two.score.false_alerts == 0, f"two nodes: false alerts {[a.person_id for a in two.alerts]}"
    assert one.score.people_alerted >= 1, "the one-node run alerted nobody: nothing to compare"
    assert two.outage is not None and two.recovered_at is not None
    two_people = {alert.person_id for alert in two.alerts}
    assert one_people <= two_people, (
        f"alerted on one node but not on two: {sorted(one_people - two_people)}"
        f" (no replica ran from {two.outage[0]:.1f} to {two.outage[1]:.1f} s of video; watched to"
        f" {two.watched_to:.1f} s; per camera after the failover: {two.streams_after})"
    )
    assert two.alerts_before_kill <= {alert.alert_id for alert in two.alerts}, "an alert stored before the kill is gone"
    assert any(s.first_seen > two.recovered_at for alert in two.alerts for s in alert.sightings), (
        "no alert came from sightings after the face service was rescheduled"
    )


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a live SQLite database with the backup API, so what still sits in its -wal comes along."""
    with closing(sqlite3.connect(source)) as reading, closing(sqlite3.connect(target)) as writing:
        reading.backup(writing)


def run_deployment(
    config: LfrConfig,
    database: Path,
    truth: CrowdTruth,
    head: LocalRayCluster,
    worker: RayWorkerNode | None,
    awaited: frozenset[str] = frozenset(),
) -> RunOutcome:
    """One live run of the deployment over the whole crowd; with a worker, the worker is killed once results flow.

    Each run keeps its alerts in a copy of the enrolment's records (the watchlist catalogue lives there). The run
    watches a second pass while a person in `awaited` has no alert.
    """
    enrolment = Path(config.database.url)
    copy_sqlite(enrolment, database)
    shutil.copy(f"{enrolment}{ANCHOR_SUFFIX}", f"{database}{ANCHOR_SUFFIX}")
    config = config.model_copy(update={"database": DatabaseConfig(url=str(database))})
    run = LiveRun(config, LiveRunSettings(actor="cli:test-two-nodes", address=head.address))
    run.start()
    head_node = ray.get_runtime_context().get_node_id()
    before_kill: frozenset[str] = frozenset()
    outage: tuple[float, float] | None = None
    recovered_at: float | None = None
    recovered: LiveSnapshot | None = None
    try:
        wait_for(lambda: results(run.snapshot()) > 0, RESULTS_S, "the face service's first answer", interval_s=0.5)
        watched_from = video_seconds(run.snapshot())
        replica_nodes = actor_nodes(REPLICA_CLASS)
        assert set(actor_nodes("CameraActor")) == {head_node}, "a camera ran off the cameras node"
        assert set(actor_nodes("StreamForwarder")) == {head_node}, "a forwarder ran off its cameras' node"
        if worker is None:
            assert replica_nodes == [head_node], "with no faces node the replica falls back to the head"
        else:
            assert replica_nodes and head_node not in replica_nodes, "the replica ran off the faces node"
            before = run.snapshot()
            before_kill = frozenset(alert.alert_id for alert in read_alerts(config.database, config.audit))
            worker.kill()
            killed_at = video_seconds(before)
            seen = results(run.snapshot())
            wait_for(
                lambda: results(run.snapshot()) > seen,
                RECOVERY_S,
                "an answer after the faces node died",
                interval_s=0.5,
            )
            recovered_at = time.time()
            recovered = run.snapshot()
            outage = (killed_at, video_seconds(recovered))
            watched_from = outage[1]
            assert actor_nodes(REPLICA_CLASS) == [head_node], "the replica was not rescheduled on the head"
        # One whole pass of the crowd with the models running; stopping decides the last tracklets.
        wait_for(
            lambda: video_seconds(run.snapshot()) >= watched_from + SECONDS,
            SECONDS * 3,
            "a whole pass of the crowd",
            interval_s=0.5,
        )
        wait_for(
            lambda: (
                awaited <= {alert.person_id for alert in read_alerts(config.database, config.audit)}
                or video_seconds(run.snapshot()) >= watched_from + 2 * SECONDS
            ),
            SECONDS * 3,
            "every awaited person alerted, or a second pass",
            interval_s=0.5,
        )
        last = run.snapshot()
    finally:
        run.stop()
    alerts = tuple(read_alerts(config.database, config.audit))
    return RunOutcome(
        alerts,
        score_alerts(alerts, truth),
        before_kill,
        outage,
        recovered_at,
        video_seconds(last),
        "" if recovered is None else streams_since(recovered, last),
    )


def streams_since(earlier: LiveSnapshot, later: LiveSnapshot) -> str:
    """Each camera's frames answered, skipped stale and dropped between two snapshots, for a failure message."""
    before = {stream.camera_id: stream for stream in earlier.streams}
    parts = []
    for stream in later.streams:
        was = before.get(stream.camera_id)
        if was is not None:
            parts.append(
                f"{stream.camera_id}: {stream.results_ok - was.results_ok} answered,"
                f" {stream.results_stale - was.results_stale} stale at the service,"
                f" {stream.dropped - was.dropped} dropped"
            )
    return "; ".join(parts)


def results(snapshot: LiveSnapshot) -> int:
    """Frames answered by the face service so far, over all cameras."""
    return sum(stream.results_ok for stream in snapshot.streams)


def video_seconds(snapshot: LiveSnapshot) -> float:
    """How far into the recorded videos the cameras are (they replay in real time): the furthest camera's."""
    return max((c.health.frames_decoded / FPS for c in snapshot.cameras if c.health is not None), default=0.0)


def alive_nodes() -> list[str]:
    return [node["NodeID"] for node in ray.nodes() if node["Alive"]]


def actor_nodes(class_name: str) -> list[str]:
    """The nodes of the live actors of a class, from the GCS's actor table (the state API needs the dashboard)."""
    table = ray._private.state.actors()
    return sorted(
        {
            actor["Address"]["NodeID"]
            for actor in table.values()
            if actor["ActorClassName"] == class_name and actor["State"] == "ALIVE"
        }
    )
