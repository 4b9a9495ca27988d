"""`LiveChaosSystem`: a running `LiveRun` as the chaos scenarios see it (cluster/chaos/scenarios.py).

It probes the run through the live run's own figures (each camera's answered frames and state,
each match stage's searches and decisions), counts the Coordinator's dead letters in its spool,
kills actors as a crash would (SIGKILL to the process of one live actor of a class, found in the
GCS's actor table), reads the stored alerts and when each sighting reached the store, verifies the
audit log with its anchors, and scans the run's files for face vectors of the crowd's people who
matched nobody (cluster/trace_scan.py).
The chaos tests and `lfr loadtest --chaos` both use it.
"""

import contextlib
import os
import signal
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import ray
import ray._private.state

from actors.camera_registry import NAMESPACE
from actors.coordinator import COORDINATOR_NAME
from cluster.alerts.evidence_times import sightings_stored_at
from cluster.alerts.model import Alert
from cluster.alerts.opening import open_alert_store
from cluster.application.live_run import LiveRun
from cluster.audit.anchors import AnchorFile
from cluster.audit.opening import open_audit_log
from cluster.cameras.health import CameraState
from cluster.chaos.scenarios import Node, ServerProcess, SourceServer, SystemProbe
from cluster.config import LfrConfig
from cluster.fusion.dead_letters import SUFFIX
from cluster.live.matching import MatchingSummary
from cluster.processes import process_memory
from cluster.trace_scan import unit_vectors

COORDINATOR_CALL_S = 2.0
ALERT_PAGE = 200
SAME_PERSON = 0.92
"""Cosine at which a stored vector is taken to be a face of a reference person (the match threshold)."""
SAME_VECTOR = 0.9999
"""Cosine at which a stored vector is one the run was allowed to store (float32 round trips included)."""
ROLES = {
    "CameraActor": "camera",
    "StreamForwarder": "forwarder",
    "ServeReplica:faces:FaceService": "face replica",
    "Coordinator": "coordinator",
}


@dataclass
class LiveChaosSystem:
    """The chaos scenarios' view of a live run; see the module docstring."""

    run: LiveRun
    config: LfrConfig
    scanned: tuple[Path, ...]
    """Folders whose files must hold no face of a person who matched nobody."""
    strangers: np.ndarray
    """Face embeddings (rows) of the crowd's people who are not on the watchlist."""
    enrolled: np.ndarray
    """The enrolment embeddings, which the gallery stores by design."""
    rtsp: SourceServer | None = None
    milvus: ServerProcess | None = None
    node: Node | None = None
    _last_probe: float | None = field(default=None, init=False)

    @property
    def rtsp_server(self) -> SourceServer | None:
        return self.rtsp

    @property
    def milvus_server(self) -> ServerProcess | None:
        return self.milvus

    @property
    def records_database(self) -> Path | None:
        return Path(self.config.database.url)

    @property
    def worker_node(self) -> Node | None:
        return self.node

    def probe(self) -> SystemProbe:
        snapshot = self.run.snapshot()
        pipeline = self.run.pipeline
        if pipeline is None:
            raise RuntimeError("the live run has no pipeline: chaos needs the face service on")
        recent = pipeline.stats(since=self._last_probe)
        summaries = [s for s in pipeline.current_sink_summaries() if isinstance(s, MatchingSummary)]
        latencies = [s.latency_p50_s for s in recent if s.latency_p50_s is not None]
        self._last_probe = snapshot.at
        return SystemProbe(
            at=snapshot.at,
            results={stream.camera_id: stream.results_ok for stream in snapshot.streams},
            failed_requests=sum(stream.failed_requests for stream in snapshot.streams),
            cameras=len(snapshot.cameras),
            cameras_streaming=sum(
                1 for c in snapshot.cameras if c.health is not None and c.health.state == CameraState.STREAMING
            ),
            search_failures=sum(s.search_failures for s in summaries),
            awaiting_search=sum(s.awaiting_search for s in summaries),
            decided=sum(s.tracker.tracklets_deleted_no_match + s.sightings for s in summaries),
            dead_letters=self.dead_letters(),
            coordinator_answers=self.coordinator_answers(),
            latency_p50_s=float(np.median(latencies)) if latencies else None,
        )

    def dead_letters(self) -> int:
        spool = self.config.database.dead_letter_folder()
        return len(list(spool.glob(f"*{SUFFIX}"))) if spool.is_dir() else 0

    def coordinator_answers(self) -> bool:
        try:
            coordinator = ray.get_actor(COORDINATOR_NAME, namespace=NAMESPACE)
            ray.get(coordinator.open_alerts.remote(), timeout=COORDINATOR_CALL_S)
        except (ray.exceptions.RayError, ValueError, TimeoutError):
            return False
        return True

    def kill_actor(self, class_name: str) -> str:
        """SIGKILL the process of the first live actor of `class_name` (by actor id); its actor id."""
        actors = live_actors(class_name)
        if not actors:
            raise RuntimeError(f"no live {class_name} to kill: is the deployment running?")
        actor_id, pid = actors[0]
        os.kill(pid, signal.SIGKILL)
        return actor_id

    def alerts(self) -> Sequence[Alert]:
        store = open_alert_store(self.config.database, self.config.audit)
        try:
            alerts: list[Alert] = []
            cursor: str | None = None
            while True:
                page = store.list(limit=ALERT_PAGE, cursor=cursor)
                alerts.extend(page.alerts)
                if page.next_cursor is None:
                    return alerts
                cursor = page.next_cursor
        finally:
            store.database.close()

    def sightings_stored_at(self) -> Mapping[str, float]:
        """When the store took each stored sighting (sighting id -> time), from the pseudonyms in the audit log."""
        log = open_audit_log(self.config.database, self.config.audit)
        try:
            return sightings_stored_at(log, [s.sighting_id for alert in self.alerts() for s in alert.sightings])
        finally:
            log.database.close()

    def audit_verifies(self) -> bool:
        log = open_audit_log(self.config.database, self.config.audit)
        return log.verify(anchor_file=AnchorFile(self.config.audit.anchor_file_for(self.config.database.url))).ok

    def non_match_traces(self) -> int:
        """Stored vectors that are neither an enrolment nor an alert's evidence, yet show a stranger's face."""
        accounted = np.stack(
            [*self.enrolled, *(s.embedding for a in self.alerts() for s in a.sightings if s.embedding is not None)]
        )
        found = 0
        for folder in self.scanned:
            for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
                with contextlib.suppress(OSError):
                    for _, vector in unit_vectors(path.read_bytes()):
                        if float(np.max(accounted @ vector)) < SAME_VECTOR:
                            found += float(np.max(self.strangers @ vector)) >= SAME_PERSON
        return found

    def resident_bytes(self) -> Mapping[str, int]:
        """Resident memory (own pages, shared ones left out) summed per role, the driver included."""
        totals: dict[str, int] = defaultdict(int)
        for class_name, role in ROLES.items():
            for _, pid in live_actors(class_name):
                with contextlib.suppress(OSError, ValueError):
                    totals[role] += process_memory(pid).own_bytes
        totals["driver"] = process_memory().own_bytes
        return dict(totals)


def live_actors(class_name: str) -> list[tuple[str, int]]:
    """(actor id, pid) of the live actors of a class on this machine, from the GCS's actor table, by actor id."""
    table = ray._private.state.actors()
    return sorted(
        (actor_id, int(actor["Pid"]))
        for actor_id, actor in table.items()
        if actor["ActorClassName"] == class_name and actor["State"] == "ALIVE" and actor["Pid"]
    )
