"""Chaos scenarios: named faults injected into a running deployment, and what it took to recover from each.

Each scenario (`SCENARIOS`, by name) injects one fault through `ChaosSystem`, the small view of a
running deployment that `lfr loadtest --chaos NAME` and the chaos tests each provide (its actors by
class name, the RTSP replay server, the Milvus server, the records database's file, a Ray worker
node). It holds the fault until its effect shows (bounded by `ChaosSettings.hold_s`), restores
what it broke where that applies, and waits for the deployment to recover. The `ChaosOutcome`
says how long recovery took and whether anything was lost: every alert stored before the fault
still there, no alert duplicated, every expected watchlist person sighted again after recovery,
the audit log verifying, and no trace of anyone who matched nobody.

Frames of an outage are dropped, not queued (a live system shows the present), so a person who
walked by only while the fault lasted may go unalerted: only people expected after recovery are
checked. No Ray here: the system does the killing, so the scenarios run wherever it runs.
"""

import errno
import os
import sqlite3
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
import structlog

from cluster.alerts.model import Alert
from cluster.fusion.config import FusionConfig
from cluster.fusion.fuser import Fuser
from cluster.fusion.topology import CameraTopology

log = structlog.get_logger(__name__)

CAMERA_ACTOR = "CameraActor"
FACE_REPLICA = "ServeReplica:faces:FaceService"
"""Serve names a replica's actor class after its application (`faces`) and deployment."""
COORDINATOR = "Coordinator"
FILLER_NAME = ".chaos-disk-filler"
FILL_CHUNKS = (1 << 20, 1 << 16, 1 << 12, 1 << 9)
"""Write sizes the disk filler steps down through, so that it leaves no usable space behind."""
CHECKPOINT_ATTEMPTS = 20


class ChaosNotApplicableError(RuntimeError):
    """The running system lacks what the scenario breaks (no RTSP cameras, no Milvus server, ...)."""


class SourceServer(Protocol):
    """A server the cameras read from, killed as a crash would kill it and started again on the same address."""

    def kill(self) -> None: ...

    def start(self) -> None: ...


class ServerProcess(Protocol):
    """A server stopped and started again over the same data (the Milvus server)."""

    def stop(self) -> None: ...

    def start(self) -> None: ...


class Node(Protocol):
    """A machine of the cluster that can be lost at once, every process on it with it."""

    def kill(self) -> None: ...


@dataclass(frozen=True)
class SystemProbe:
    """The running deployment's figures at one moment, as a scenario judges its fault and recovery by them."""

    at: float
    """Wall clock (unix seconds), comparable with sightings' times."""
    results: Mapping[str, int]
    """Frames the face service answered so far, per camera."""
    failed_requests: int
    cameras: int
    cameras_streaming: int
    search_failures: int
    awaiting_search: int
    decided: int
    """Tracklets the match stage decided (a sighting, or deleted as a non-match): each took a watchlist search."""
    dead_letters: int
    """Alerts waiting in the Coordinator's spool because the records database refused them."""
    coordinator_answers: bool
    latency_p50_s: float | None = None
    """Frame-to-result latency over the results since the previous probe."""

    def least_results_since(self, earlier: "SystemProbe") -> int:
        """Results gained since `earlier` by the camera that gained the fewest (0 for a camera that is gone)."""
        return min((self.results.get(camera, 0) - count for camera, count in earlier.results.items()), default=0)


class ChaosSystem(Protocol):
    """The running deployment as the scenarios act on it and watch it."""

    @property
    def rtsp_server(self) -> SourceServer | None:
        """The replay server the cameras read over RTSP; None when they read something else."""

    @property
    def milvus_server(self) -> ServerProcess | None:
        """The Milvus server holding the watchlist; None for embedded milvus-lite."""

    @property
    def records_database(self) -> Path | None:
        """The SQLite file of alerts and the audit log; None for PostgreSQL."""

    @property
    def worker_node(self) -> Node | None:
        """A Ray worker node running part of the deployment; None on one node."""

    def probe(self) -> SystemProbe: ...

    def kill_actor(self, class_name: str) -> str:
        """Kill one live actor of the class as a crash would (Ray restarts those that restart); its id."""

    def alerts(self) -> Sequence[Alert]: ...

    def sightings_stored_at(self) -> Mapping[str, float]:
        """When the alert store took each stored sighting (sighting id -> unix time), as its audit log records."""

    def audit_verifies(self) -> bool: ...

    def non_match_traces(self) -> int:
        """Stored face vectors of people who matched nobody (0 when the privacy promise holds)."""

    def resident_bytes(self) -> Mapping[str, int]:
        """Resident memory of each process role (camera, forwarder, face replica, coordinator, driver)."""


@dataclass(frozen=True)
class ChaosSettings:
    """How long a scenario may wait at each step, and what it checks afterwards."""

    recovery_bound_s: float = 120.0
    """Longest wait for recovery; a deployment that takes longer is reported unrecovered."""
    hold_s: float = 60.0
    """Longest a fault is held waiting for its effect to show."""
    min_outage_s: float = 3.0
    """A fault that is restored lasts at least this long, so the cameras notice it."""
    resumed_results: int = 10
    """Results every camera must gain to count as flowing again (more than a forwarder holds in flight)."""
    expected_people: frozenset[str] = frozenset()
    """Watchlist people who walk by again after recovery and must be sighted then."""
    confirm_s: float = 120.0
    """Longest wait for every expected person's sighting after recovery."""
    topology: CameraTopology = field(default_factory=lambda: CameraTopology((), {}))
    """The deployment's cameras, by which fusion decides what is one person's walk (`CameraTopology.from_config`);
    without them only one camera's sightings count as one walk."""
    fusion: FusionConfig = FusionConfig()
    poll_s: float = 0.5


@dataclass(frozen=True)
class Clock:
    """Time as the runner reads and waits for it (a test may slow or speed it)."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class SoakFigures:
    """Resident memory per role and latency over a soak, with the trend of each."""

    seconds: float
    samples: int
    memory_growth_bytes: Mapping[str, float]
    """Per role: fitted growth over the whole soak (slope x duration)."""
    memory_start_bytes: Mapping[str, int]
    latency_start_s: float | None
    """Median frame latency over the first third of the soak, and over the last."""
    latency_end_s: float | None


@dataclass(frozen=True)
class ChaosOutcome:
    """What one scenario did and how the deployment came through it."""

    scenario: str
    injected: str
    fault_seen_s: float | None
    """From the injection until its effect showed; None when it never did within `hold_s`."""
    recovery_s: float | None
    """From the restore (or, for a fault not restored, the injection) to recovery; None when not recovered."""
    alerts_before: int
    alerts_after: int
    alerts_lost: tuple[str, ...]
    sightings_lost: int
    duplicates: tuple[str, ...]
    people_missed: tuple[str, ...]
    """Expected people with no sighting after recovery."""
    audit_verifies: bool
    non_match_traces: int
    soak: SoakFigures | None = None

    @property
    def recovered(self) -> bool:
        return self.recovery_s is not None

    @property
    def nothing_lost(self) -> bool:
        return (
            self.recovered
            and not self.alerts_lost
            and not self.sightings_lost
            and not self.duplicates
            and not self.people_missed
            and self.audit_verifies
            and self.non_match_traces == 0
        )


class ChaosScenario(ABC):
    """One named fault: `inject` it, `restore` what it broke (when `restores`), know when it `recovered`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    restores: ClassVar[bool] = False

    @abstractmethod
    def inject(self, system: ChaosSystem) -> str:
        """Break something; what was broken, for the report."""

    def restore(self, system: ChaosSystem) -> None:
        """Undo the fault (start what was stopped, free what was filled); a crash leaves nothing to undo."""
        return None

    def fault_seen(self, before: SystemProbe, now: SystemProbe) -> bool:
        """Whether the fault's effect shows yet (a killed actor's effect is immediate)."""
        return True

    @abstractmethod
    def recovered(self, since: SystemProbe, now: SystemProbe, settings: ChaosSettings) -> bool:
        """Whether the deployment works again, judged against the probe taken when recovery began."""

    def run(self, system: ChaosSystem, settings: ChaosSettings, clock: Clock = Clock()) -> ChaosOutcome:
        """Inject, hold until seen, restore, wait for recovery and the expected people; check that nothing was lost."""
        alerts_before = list(system.alerts())
        before = system.probe()
        started = clock.monotonic()
        injected = self.inject(system)
        log.warning("chaos_injected", scenario=self.name, injected=injected)
        try:
            seen = _wait(system, lambda probe: self.fault_seen(before, probe), settings.hold_s, settings, clock)
            fault_seen_s = None if seen is None else clock.monotonic() - started
            if self.restores:
                while clock.monotonic() - started < settings.min_outage_s:
                    clock.sleep(settings.poll_s)
        finally:
            if self.restores:
                self.restore(system)
                log.warning("chaos_restored", scenario=self.name)
        recovery_from = clock.monotonic() if self.restores else started
        since = system.probe() if self.restores else (seen or before)
        recovered = _wait(
            system, lambda probe: self.recovered(since, probe, settings), settings.recovery_bound_s, settings, clock
        )
        recovery_s = None if recovered is None else clock.monotonic() - recovery_from
        log.info("chaos_recovered" if recovered else "chaos_not_recovered", scenario=self.name, seconds=recovery_s)
        missed = _people_missed(system, settings, recovered.at, clock) if recovered else settings.expected_people
        return _outcome(self.name, injected, fault_seen_s, recovery_s, alerts_before, system, settings, missed)


def _wait(
    system: ChaosSystem,
    condition: Callable[[SystemProbe], bool],
    timeout_s: float,
    settings: ChaosSettings,
    clock: Clock,
) -> SystemProbe | None:
    """The first probe for which `condition` holds, polling until `timeout_s`; None if it never did."""
    deadline = clock.monotonic() + timeout_s
    while True:
        probe = system.probe()
        if condition(probe):
            return probe
        if clock.monotonic() > deadline:
            return None
        clock.sleep(settings.poll_s)


def repeatedly_sighted(alerts: Sequence[Alert], times: int = 2) -> frozenset[str]:
    """Watchlist people with at least `times` sightings in `alerts`: those a deployment recognises reliably
    enough to be expected again after a fault. A single sighting may have been a borderline face matched by
    luck (seen in a load test: alerted once in its first pass, never again in two minutes of the same loop)."""
    return frozenset(alert.person_id for alert in alerts if len(alert.sightings) >= times)


def _people_missed(system: ChaosSystem, settings: ChaosSettings, since: float, clock: Clock) -> frozenset[str]:
    """Expected people still without a sighting that began after `since`, waiting up to `confirm_s` for them."""
    deadline = clock.monotonic() + settings.confirm_s
    while True:
        sighted = {s.person_id for alert in system.alerts() for s in alert.sightings if s.first_seen >= since}
        missed = settings.expected_people - sighted
        if not missed or clock.monotonic() > deadline:
            return missed
        clock.sleep(settings.poll_s)


def _outcome(
    scenario: str,
    injected: str,
    fault_seen_s: float | None,
    recovery_s: float | None,
    alerts_before: Sequence[Alert],
    system: ChaosSystem,
    settings: ChaosSettings,
    missed: frozenset[str],
) -> ChaosOutcome:
    after = list(system.alerts())
    stored = {alert.alert_id for alert in after}
    sightings_after = {s.sighting_id for alert in after for s in alert.sightings}
    return ChaosOutcome(
        scenario=scenario,
        injected=injected,
        fault_seen_s=fault_seen_s,
        recovery_s=recovery_s,
        alerts_before=len(alerts_before),
        alerts_after=len(after),
        alerts_lost=tuple(sorted(alert.alert_id for alert in alerts_before if alert.alert_id not in stored)),
        sightings_lost=sum(
            1 for alert in alerts_before for s in alert.sightings if s.sighting_id not in sightings_after
        ),
        duplicates=duplicated_alerts(
            after,
            settings.topology,
            settings.fusion,
            frozenset(alert.alert_id for alert in alerts_before),
            system.sightings_stored_at(),
        ),
        people_missed=tuple(sorted(missed)),
        audit_verifies=system.audit_verifies(),
        non_match_traces=system.non_match_traces(),
    )


def duplicated_alerts(
    alerts: Sequence[Alert],
    topology: CameraTopology,
    fusion: FusionConfig,
    existing: frozenset[str] | None = None,
    stored_at: Mapping[str, float] | None = None,
) -> tuple[str, ...]:
    """Alerts that repeat another: one sighting stored in two alerts, or an alert with a sighting that fusion
    would have merged into an earlier open alert of the same person (one alert per person per fused track).

    Fusion is asked with the product's own rules (`Fuser.merge_target`), the earlier alert as it stood when
    the later one was raised: its sightings the store had taken by then (`stored_at`, from the audit log; a
    sighting without a time there: captured by then). So two alerts fusion keeps apart on purpose (a walk that
    is impossible between the cameras, a face unlike the alert's) are no duplicate, nor is the next alert
    after one an officer decided. With `existing` (the alerts stored before a fault), only alerts raised
    since are checked, against those: a fault must not make the deployment lose track of who it alerted.
    """
    repeated: set[str] = set()
    owner: dict[str, str] = {}
    for alert in alerts:
        for sighting in alert.sightings:
            if owner.setdefault(sighting.sighting_id, alert.alert_id) != alert.alert_id:
                repeated.add(alert.alert_id)
    by_person: dict[tuple[str, str], list[Alert]] = defaultdict(list)
    for alert in alerts:
        if alert.sightings:
            by_person[(alert.person_id, alert.watchlist_id)].append(alert)
    for person_alerts in by_person.values():
        ordered = sorted(person_alerts, key=lambda alert: alert.created_at)
        for index, later in enumerate(ordered[1:], start=1):
            if existing is not None and later.alert_id in existing:
                continue
            earlier = [a for a in ordered[:index] if existing is None or a.alert_id in existing]
            if any(_would_merge(candidate, later, topology, fusion, stored_at or {}) for candidate in earlier):
                repeated.add(later.alert_id)
    return tuple(sorted(repeated))


def _would_merge(
    earlier: Alert, later: Alert, topology: CameraTopology, fusion: FusionConfig, stored_at: Mapping[str, float]
) -> bool:
    """Whether fusion would have merged one of `later`'s sightings into `earlier` as it stood when `later` was
    raised: its sightings stored by then. Capture order is not the order the Coordinator saw them in: tracklets
    are decided seconds after their faces were captured, and a search that waits for the gallery (a Milvus
    restart) delays one camera's tracklets, not another's."""
    if earlier.state.is_final:
        return False
    then = tuple(s for s in earlier.sightings if stored_at.get(s.sighting_id, s.last_seen) <= later.created_at)
    if not then:
        return False
    for sighting in later.sightings:
        fuser = Fuser(
            topology,
            fusion,
            deployment_id=earlier.deployment_id,
            threshold=earlier.threshold,
            model=earlier.model,
            perfect_score=max(1.0, earlier.threshold + 1.0),
        )
        fuser.restore([replace(earlier, sightings=then)])
        if fuser.merge_target(sighting) is not None:
            return True
    return False


class CameraActorKill(ChaosScenario):
    name = "camera-actor"
    summary = "kill one camera's actor; Ray restarts it and the camera streams again"

    def inject(self, system: ChaosSystem) -> str:
        return f"killed {CAMERA_ACTOR} {system.kill_actor(CAMERA_ACTOR)}"

    def recovered(self, since: SystemProbe, now: SystemProbe, settings: ChaosSettings) -> bool:
        return now.cameras_streaming == now.cameras and now.least_results_since(since) >= settings.resumed_results


class FaceReplicaKill(ChaosScenario):
    name = "face-replica"
    summary = "kill a face-service replica; Serve starts another and every camera is answered again"

    def inject(self, system: ChaosSystem) -> str:
        return f"killed {FACE_REPLICA} {system.kill_actor(FACE_REPLICA)}"

    def fault_seen(self, before: SystemProbe, now: SystemProbe) -> bool:
        return now.failed_requests > before.failed_requests

    def recovered(self, since: SystemProbe, now: SystemProbe, settings: ChaosSettings) -> bool:
        return now.least_results_since(since) >= settings.resumed_results


class CoordinatorKill(ChaosScenario):
    name = "coordinator"
    summary = "kill the Coordinator; Ray restarts it, it rebuilds its alerts from the store and fuses later sightings"

    def inject(self, system: ChaosSystem) -> str:
        return f"killed {COORDINATOR} {system.kill_actor(COORDINATOR)}"

    def recovered(self, since: SystemProbe, now: SystemProbe, settings: ChaosSettings) -> bool:
        return now.coordinator_answers and now.least_results_since(since) >= settings.resumed_results


class RtspDrop(ChaosScenario):
    name = "rtsp-drop"
    summary = "kill the RTSP server the cameras read, start it again; the cameras reconnect"
    restores = True

    def inject(self, system: ChaosSystem) -> str:
        _rtsp(system).kill()
        return "killed the RTSP replay server"

    def restore(self, system: ChaosSystem) -> None:
        _rtsp(system).start()

    def fault_seen(self, before: SystemProbe, now: SystemProbe) -> bool:
        return now.cameras_streaming < now.cameras

    def recovered(self, since: SystemProbe, now: SystemProbe, settings: ChaosSettings) -> bool:
        return now.cameras_streaming == now.cameras and now.least_results_since(since) >= settings.resumed_results


def _rtsp(system: ChaosSystem) -> SourceServer:
    if system.rtsp_server is None:
        raise ChaosNotApplicableError("rtsp-drop needs cameras that read an RTSP replay server")
    return system.rtsp_server


class MilvusRestart(ChaosScenario):
    name = "milvus-restart"
    summary = "stop the Milvus server, start it again; searches fail meanwhile, then tracklets are decided again"
    restores = True

    def inject(self, system: ChaosSystem) -> str:
        _milvus(system).stop()
        return "stopped the Milvus server"

    def restore(self, system: ChaosSystem) -> None:
        _milvus(system).start()

    def fault_seen(self, before: SystemProbe, now: SystemProbe) -> bool:
        return now.search_failures > before.search_failures

    def recovered(self, since: SystemProbe, now: SystemProbe, settings: ChaosSettings) -> bool:
        return now.decided > since.decided and now.awaiting_search == 0


def _milvus(system: ChaosSystem) -> ServerProcess:
    if system.milvus_server is None:
        raise ChaosNotApplicableError("milvus-restart needs the watchlist on a Milvus server, not milvus-lite")
    return system.milvus_server


class DiskFull(ChaosScenario):
    """Fill the records database's file system: alert saves fail and wait as dead letters until space returns.

    The database's journal is emptied into its file first (SQLite's TRUNCATE checkpoint), as after
    any checkpoint, so that the next write needs new space rather than reusing the journal's.
    """

    name = "disk-full"
    summary = "fill the alert store's disk; alerts wait in the dead-letter spool and are stored once space returns"
    restores = True

    def inject(self, system: ChaosSystem) -> str:
        database = _records(system)
        checkpoint(database)
        filled = fill_disk(database.parent)
        return f"filled {database.parent} ({filled / 2**20:.1f} MiB)"

    def restore(self, system: ChaosSystem) -> None:
        (_records(system).parent / FILLER_NAME).unlink(missing_ok=True)

    def fault_seen(self, before: SystemProbe, now: SystemProbe) -> bool:
        return now.dead_letters > before.dead_letters

    def recovered(self, since: SystemProbe, now: SystemProbe, settings: ChaosSettings) -> bool:
        return now.coordinator_answers and now.dead_letters == 0


def _records(system: ChaosSystem) -> Path:
    if system.records_database is None:
        raise ChaosNotApplicableError("disk-full fills a SQLite records database's disk; this one is PostgreSQL")
    return system.records_database


def checkpoint(database: Path) -> None:
    """Move a SQLite database's write-ahead log into its file and truncate the log (retried while readers hold it)."""
    with closing(sqlite3.connect(database, timeout=5.0)) as connection:
        for _ in range(CHECKPOINT_ATTEMPTS):
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.1)
    log.warning("chaos_checkpoint_busy", database=str(database))


def fill_disk(folder: Path) -> int:
    """Write a filler file in `folder` until its file system has no space left; the bytes written."""
    written = 0
    descriptor = os.open(folder / FILLER_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in FILL_CHUNKS:
            chunk = bytes(size)
            while True:
                try:
                    count = os.write(descriptor, chunk)
                except OSError as exc:
                    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                        raise
                    break
                written += count
                if count < size:
                    break
        with suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return written


class WorkerNodeLoss(ChaosScenario):
    name = "worker-node"
    summary = "lose a Ray worker node at once; its actors start again on the nodes left"

    def inject(self, system: ChaosSystem) -> str:
        if system.worker_node is None:
            raise ChaosNotApplicableError("worker-node needs a deployment on two or more Ray nodes")
        system.worker_node.kill()
        return "killed a Ray worker node"

    def fault_seen(self, before: SystemProbe, now: SystemProbe) -> bool:
        return now.failed_requests > before.failed_requests

    def recovered(self, since: SystemProbe, now: SystemProbe, settings: ChaosSettings) -> bool:
        return now.least_results_since(since) >= settings.resumed_results


@dataclass(frozen=True)
class Soak(ChaosScenario):
    """No fault: run for `seconds`, sampling each role's memory and the frame latency, to show both stay flat."""

    name: ClassVar[str] = "soak"
    summary: ClassVar[str] = "run for a long while; memory per role and latency stay flat"
    seconds: float = 1800.0
    sample_every_s: float = 5.0

    def inject(self, system: ChaosSystem) -> str:
        return f"ran {self.seconds:g} s"

    def recovered(self, since: SystemProbe, now: SystemProbe, settings: ChaosSettings) -> bool:
        return True

    def run(self, system: ChaosSystem, settings: ChaosSettings, clock: Clock = Clock()) -> ChaosOutcome:
        alerts_before = list(system.alerts())
        samples = SoakSamples()
        started = clock.monotonic()
        while (elapsed := clock.monotonic() - started) < self.seconds:
            probe = system.probe()
            samples.add(elapsed, system.resident_bytes(), probe.latency_p50_s)
            clock.sleep(self.sample_every_s)
        figures = samples.figures()
        log.info("chaos_soak_done", seconds=figures.seconds, samples=figures.samples)
        outcome = _outcome(self.name, self.inject(system), 0.0, 0.0, alerts_before, system, settings, frozenset())
        return replace(outcome, soak=figures)


@dataclass
class SoakSamples:
    """Memory per role and latency sampled over a soak; `figures` fits their trends."""

    times: list[float] = field(default_factory=list)
    memory: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    latency: list[tuple[float, float]] = field(default_factory=list)

    def add(self, elapsed: float, resident: Mapping[str, int], latency_s: float | None) -> None:
        self.times.append(elapsed)
        for role, rss in resident.items():
            self.memory[role].append((elapsed, rss))
        if latency_s is not None:
            self.latency.append((elapsed, latency_s))

    def figures(self) -> SoakFigures:
        seconds = self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0
        growth = {role: fitted_growth(points) for role, points in self.memory.items()}
        start = {role: points[0][1] for role, points in self.memory.items()}
        third = seconds / 3
        early = [value for at, value in self.latency if at <= self.times[0] + third]
        late = [value for at, value in self.latency if at >= self.times[-1] - third]
        return SoakFigures(
            seconds=seconds,
            samples=len(self.times),
            memory_growth_bytes=growth,
            memory_start_bytes=start,
            latency_start_s=float(np.median(early)) if early else None,
            latency_end_s=float(np.median(late)) if late else None,
        )


def fitted_growth(points: Sequence[tuple[float, float]]) -> float:
    """Growth over the span of `points` by a least-squares line (robust to one sample's spike, unlike last - first)."""
    if len(points) < 2:
        return 0.0
    times = np.array([at for at, _ in points], dtype=np.float64)
    values = np.array([value for _, value in points], dtype=np.float64)
    if np.ptp(times) == 0:
        return 0.0
    slope = np.polyfit(times, values, 1)[0]
    return float(slope * np.ptp(times))


def outcomes_table(outcomes: Sequence[ChaosOutcome]) -> str:
    """The outcomes as a Markdown table (as docs/benchmarks.md shows them), a soak's trends below it."""
    lines = [
        "| scenario | fault seen s | recovery s | alerts before/after | lost | duplicated | people missed | audit |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    soaks = []
    for o in outcomes:
        seen = "-" if o.fault_seen_s is None else f"{o.fault_seen_s:.1f}"
        recovery = "-" if o.recovery_s is None else f"{o.recovery_s:.1f}"
        lost = len(o.alerts_lost) + o.sightings_lost
        audit = "verifies" if o.audit_verifies else "BROKEN"
        lines.append(
            f"| {o.scenario} | {seen} | {recovery} | {o.alerts_before}/{o.alerts_after} | {lost} |"
            f" {len(o.duplicates)} | {len(o.people_missed)} | {audit} |"
        )
        if o.soak is not None:
            growth = ", ".join(f"{role} {g / 2**20:+.1f} MiB" for role, g in sorted(o.soak.memory_growth_bytes.items()))
            soaks.append(
                f"soak {o.soak.seconds:.0f} s, {o.soak.samples} samples: memory trend {growth}; latency p50"
                f" {_seconds(o.soak.latency_start_s)} (first third) -> {_seconds(o.soak.latency_end_s)} (last third)"
            )
    return "\n".join([*lines, *soaks])


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


SCENARIOS: dict[str, type[ChaosScenario]] = {
    scenario.name: scenario
    for scenario in (
        CameraActorKill,
        FaceReplicaKill,
        CoordinatorKill,
        MilvusRestart,
        RtspDrop,
        DiskFull,
        WorkerNodeLoss,
        Soak,
    )
}


def scenario(name: str) -> ChaosScenario:
    """The scenario called `name`, with its defaults; a clear error naming the known ones otherwise."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown chaos scenario {name!r}; choose from: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]()
