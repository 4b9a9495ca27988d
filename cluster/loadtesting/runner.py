"""The load test's run: a recorded crowd replayed as RTSP cameras through the real deployment, step by step.

As `lfr demo` does, it enrols the crowd's watchlist people from their enrolment photos into a
watchlist in embedded Milvus (in the work folder) and freezes a version; then it serves the crowd's
videos as RTSP cameras on 127.0.0.1 (`cluster.replay`), as many as the ramp's largest step, and
runs the same `LiveRun` as `lfr run` with a deployment authorised for all of them. It starts with
the first step's cameras and adds the next step's by reloading the cameras, so the face service,
the Coordinator and the tracklets in flight carry on across steps. Each step is warmed up, then
measured from what the run already reports: the forwarders' counters and latency samples, the
match stage's search timings, the alert store, and /proc. The ramp stops after a saturated step,
on Ctrl-C (keeping the steps done), or at its end. With `chaos` scenarios named, they then run one
after another on the last step's deployment (`cluster.loadtesting.chaos_runs`).
"""

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from cluster.alerts.evidence_times import sightings_stored_at
from cluster.alerts.model import Alert
from cluster.alerts.opening import open_alert_store
from cluster.alerts.query import AlertFilter
from cluster.alerts.store import AlertStore
from cluster.application.live_run import LiveRun, LiveRunSettings, LiveSnapshot, stop_and_reload_signals
from cluster.config import LfrConfig
from cluster.crowd.synthesis import TRUTH_FILE
from cluster.crowd.truth import CrowdTruth
from cluster.database.config import DatabaseConfig
from cluster.demo.scenario import DEMO_TARGET_FPIR, OFFICER, WATCHLIST_ID, demo_audit, enrol_watchlist
from cluster.deployment.config import DeploymentConfig
from cluster.deployment.purpose import Purpose
from cluster.gallery.config import GalleryConfig, LiteBackendConfig
from cluster.gallery.lite_backend import EmbeddedMilvus
from cluster.live.forwarding import StreamStats
from cluster.loadtesting.accuracy import alert_latencies, score
from cluster.loadtesting.cameras import ReplayCamera, camera_configs, replay_cameras
from cluster.loadtesting.chaos_runs import ChaosFigures, PrivacyReferences, run_chaos
from cluster.loadtesting.measurements import Drops, Percentiles, StepFigures
from cluster.loadtesting.ramp import RampPlan, RampStep
from cluster.loadtesting.report import CrowdSummary, LoadReport, Machine
from cluster.loadtesting.resources import sample_processes, usage_by_role
from cluster.loadtesting.saturation import SaturationRule
from cluster.private_files import private_folder
from cluster.replay.rtsp_server import RtspReplayServer

log = structlog.get_logger(__name__)

DEPLOYMENT_ID = "loadtest"
ACTOR = "cli:lfr-loadtest"
SIGNAGE = "Live facial recognition in use (load test on recorded video)"
PLACE = "Load test (recorded crowd replayed on 127.0.0.1)"
ALERT_PAGE = 200
WARMUP_LIMIT_S = 120.0
"""After its warm-up a step also waits, at most this long, until every camera has had a frame answered (a new
camera's connection and the face service's first batches take longer on a loaded machine)."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LoadTestOptions:
    crowd: Path
    """A folder with the crowd's videos and its ground_truth.json (`lfr crowd make`, or footage in that format)."""
    workdir: Path
    """Milvus data, the records database (alerts, audit log) and the audit key of this run."""
    plan: RampPlan
    saturation: SaturationRule = SaturationRule()
    target_fpir: float = DEMO_TARGET_FPIR
    period_s: float = 1.0
    command: tuple[str, ...] = ()
    chaos: tuple[str, ...] = ()
    """Chaos scenarios run after the ramp, on its last step's deployment (checked: `check_chaos_names`)."""
    soak_seconds: float = 1800.0


@dataclass(frozen=True)
class _Counters:
    """One camera's cumulative forwarding counters, as a snapshot read them."""

    frames_in: int
    results_ok: int
    errors: int
    failed: int
    full: int
    stale: int
    at_camera: int
    faces: int

    @classmethod
    def of(cls, stats: StreamStats) -> "_Counters":
        return cls(
            stats.frames_in,
            stats.results_ok,
            stats.results_error,
            stats.failed_requests,
            stats.dropped_full,
            stats.dropped_stale,
            stats.dropped_at_camera,
            stats.faces,
        )


ZERO = _Counters(0, 0, 0, 0, 0, 0, 0, 0)


def load_crowd(folder: Path) -> CrowdTruth:
    """The crowd's truth, with its videos checked; ValueError says what is missing."""
    path = folder / TRUTH_FILE
    if not path.is_file():
        raise ValueError(
            f"{folder} holds no {TRUTH_FILE}: pass a folder written by `lfr crowd make` (or footage with a"
            " ground-truth file in that format, see docs/loadtest.md)"
        )
    truth = CrowdTruth.load(path)
    missing = [camera.file for camera in truth.cameras if not (folder / camera.file).is_file()]
    if missing:
        raise ValueError(f"{path} names videos that are not in {folder}: {', '.join(missing)}")
    return truth


def run_loadtest(options: LoadTestOptions, config: LfrConfig, progress: Progress, status: Progress) -> LoadReport:
    """Run the ramp; `progress` gets each stage's message, `status` a line per period while steps run."""
    started_at, started = time.time(), time.monotonic()
    machine = Machine.now()
    truth = load_crowd(options.crowd)
    private_folder(options.workdir)
    milvus = LiteBackendConfig(data_dir=options.workdir / "milvus")
    database = DatabaseConfig(url=str(options.workdir / "records.sqlite3"))
    config = config.model_copy(
        update={
            "gallery": GalleryConfig(backend=milvus),
            "database": database,
            "matching": config.matching.model_copy(update={"target_fpir": options.target_fpir}),
            "audit": demo_audit(config.audit, options.workdir, progress),
        }
    )
    cameras = replay_cameras(truth, options.crowd, options.plan.max_cameras)
    try:
        progress("starting embedded Milvus and enrolling the crowd's watchlist")
        version, enrolled = enrol_watchlist(truth, config)
        progress(f"watchlist {version.version_id}: {enrolled} photos of {len(truth.watchlist)} people")
        references = None
        if options.chaos:
            progress("embedding the crowd's faces the chaos checks look for in stored files")
            references = PrivacyReferences.of(truth, config)
        with RtspReplayServer([camera.video for camera in cameras]) as server:
            progress(f"serving {len(cameras)} RTSP cameras on {server.host}:{server.port}")
            first = options.plan.steps[0]
            config = config.model_copy(
                update={
                    # Authorised for every camera of the ramp; the configuration lists the first step's, the
                    # others join by reload.
                    "cameras": _running(cameras, server.urls, first),
                    # The replicas leave logical CPUs for the last step's cameras, or those would never start.
                    "face_service": config.face_service.model_copy(
                        update={"planned_cameras": options.plan.max_cameras}
                    ),
                    "deployment": _deployment(cameras, version.version_id, options.target_fpir),
                }
            )
            steps, run_accuracy_cameras, chaos = _ramp(
                options, config, cameras, server, truth, references, progress, status
            )
    finally:
        if milvus.data_dir.exists():
            EmbeddedMilvus(milvus, config.gallery.timeouts).stop()
    store = open_alert_store(database, config.audit)
    try:
        alerts = _alerts(store, AlertFilter(deployment_id=DEPLOYMENT_ID))
    finally:
        store.database.close()
    return LoadReport(
        command=options.command,
        started_at=started_at,
        wall_seconds=time.monotonic() - started,
        machine=machine.ended(),
        crowd=CrowdSummary(
            folder=str(options.crowd),
            cameras=len(truth.cameras),
            seconds=truth.spec.seconds,
            fps=truth.spec.fps,
            watchlist=tuple(person.id for person in truth.watchlist),
            enrolled_photos=enrolled,
        ),
        plan=options.plan,
        saturation=options.saturation,
        steps=tuple(steps),
        accuracy=score(alerts, truth, run_accuracy_cameras),
        chaos=tuple(chaos),
    )


def _ramp(
    options: LoadTestOptions,
    config: LfrConfig,
    cameras: tuple[ReplayCamera, ...],
    server: RtspReplayServer,
    truth: CrowdTruth,
    references: PrivacyReferences | None,
    progress: Progress,
    status: Progress,
) -> tuple[list[StepFigures], tuple[ReplayCamera, ...], list[ChaosFigures]]:
    """The steps measured, the cameras that ran (for the whole run's score), and the chaos scenarios' figures."""
    urls = server.urls
    fusion = tuple(camera_configs(cameras, urls, options.plan.steps[0].sample_fps, SIGNAGE, neighbours=True))
    run = LiveRun(config, LiveRunSettings(actor=ACTOR, period_s=options.period_s, fusion_cameras=fusion))
    store = open_alert_store(config.database, config.audit)
    steps: list[StepFigures] = []
    chaos: list[ChaosFigures] = []
    ran: tuple[ReplayCamera, ...] = cameras[: options.plan.steps[0].cameras]
    progress("starting Ray, the face service, matching and the Coordinator")
    run.start(progress)
    try:
        with stop_and_reload_signals() as (stopping, _):
            for index, step in enumerate(options.plan.steps):
                if index > 0:
                    run.reload(_running(cameras, urls, step))
                ran = cameras[: step.cameras]
                measured = _step(run, store, index, step, options, truth, ran, stopping, status)
                if measured is None:
                    progress("stopped: the step under way is left out of the report")
                    break
                reason = options.saturation.reason(steps[-1] if steps else None, measured)
                steps.append(measured.model_copy(update={"saturated": reason}))
                progress(_describe(measured, reason))
                if reason is not None:
                    break
            if steps and options.chaos and references is not None and not stopping.is_set():
                scanned = (options.workdir, config.database.dead_letter_folder())
                chaos = run_chaos(
                    options.chaos, run, config, fusion, server, references, scanned, options.soak_seconds, progress
                )
    finally:
        progress("stopping the cameras (their last tracklets are decided), the services and Ray")
        try:
            run.stop()
        finally:
            store.database.close()
    if not steps:
        raise RuntimeError("the load test stopped before its first step was measured; nothing to report")
    return steps, ran, chaos


def _step(
    run: LiveRun,
    store: AlertStore,
    index: int,
    step: RampStep,
    options: LoadTestOptions,
    truth: CrowdTruth,
    cameras: tuple[ReplayCamera, ...],
    stopping: threading.Event,
    status: Progress,
) -> StepFigures | None:
    """Warm up, then measure one step; None when stopped before its end."""
    plan = options.plan
    label = f"step {index + 1}/{len(plan.steps)}: {step.cameras} cameras at {step.sample_fps:g} fps"
    if not _hold(
        run,
        plan.warmup_seconds,
        options.period_s,
        stopping,
        lambda left, s: status(f"{label}  warming up {left:3.0f} s  {_live(s)}"),
    ) or not _hold(
        run,
        WARMUP_LIMIT_S,
        options.period_s,
        stopping,
        lambda left, s: status(f"{label}  waiting for every camera's first result  {_live(s)}"),
        done=lambda s: _all_answered(s, step.cameras),
    ):
        return None
    since, began = time.time(), time.monotonic()
    before = {stats.camera_id: _Counters.of(stats) for stats in run.snapshot().streams}
    processes = sample_processes()
    if not _hold(
        run,
        plan.step_seconds,
        options.period_s,
        stopping,
        lambda left, s: status(f"{label}  {left:3.0f} s left  {_live(s)}"),
    ):
        return None
    snapshot = run.snapshot(latency_since=since)
    seconds = time.monotonic() - began
    until = time.time()
    usage = usage_by_role(processes, sample_processes(), seconds)
    searches = [t.seconds for m in run.matching() for t in m.searches if since <= t.at <= until]
    alerts = _alerts(store, AlertFilter(deployment_id=DEPLOYMENT_ID, since=since, until=until))
    everyone = _alerts(store, AlertFilter(deployment_id=DEPLOYMENT_ID))
    stored_at = sightings_stored_at(store.audit, [s.sighting_id for alert in everyone for s in alert.sightings])
    delta = _delta(before, snapshot.streams)
    return StepFigures(
        index=index,
        cameras=step.cameras,
        sample_fps=step.sample_fps,
        seconds=seconds,
        frames_per_s=delta.results_ok / seconds,
        faces_per_s=delta.faces / seconds,
        drops=Drops(
            offered=delta.frames_in + delta.at_camera,
            full=delta.full,
            stale=delta.stale,
            at_camera=delta.at_camera,
            failed=delta.failed,
            errors=delta.errors,
        ),
        frame_latency=Percentiles.of([latency for s in snapshot.streams for latency in s.latencies_s]),
        alert_latency=Percentiles.of(alert_latencies(everyone, stored_at, since, until)),
        gallery_search=Percentiles.of(searches),
        roles=usage,
        accuracy=score(alerts, truth, cameras),
    )


def _hold(
    run: LiveRun,
    seconds: float,
    period_s: float,
    stopping: threading.Event,
    show: Callable[[float, LiveSnapshot], None],
    done: Callable[[LiveSnapshot], bool] | None = None,
) -> bool:
    """Let the run go on for `seconds` (or until `done` says so), a status line each period; False when stopped."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        snapshot = run.snapshot()
        if done is not None and done(snapshot):
            break
        show(left, snapshot)
        if stopping.wait(min(period_s, max(0.0, deadline - time.monotonic()))):
            return False
    return not stopping.is_set()


def _all_answered(snapshot: LiveSnapshot, cameras: int) -> bool:
    """Every camera of the step has had a frame answered: the step's measurement starts on a warm pipeline."""
    return len(snapshot.streams) >= cameras and all(stats.results_ok > 0 for stats in snapshot.streams)


def _delta(before: dict[str, _Counters], streams: Sequence[StreamStats]) -> _Counters:
    """What the cameras' counters grew by since `before` (a camera that started since counts from zero)."""
    totals = [0] * len(fields(_Counters))
    for stats in streams:
        now, then = astuple(_Counters.of(stats)), astuple(before.get(stats.camera_id, ZERO))
        totals = [total + max(0, a - b) for total, a, b in zip(totals, now, then, strict=True)]
    return _Counters(*totals)


def _live(snapshot: LiveSnapshot) -> str:
    streams = snapshot.streams
    p99 = max((s.latency_p99_s for s in streams if s.latency_p99_s is not None), default=None)
    return (
        f"{sum(s.fps_out for s in streams):6.2f} frames/s  {sum(s.faces_per_s for s in streams):6.2f} faces/s"
        f"  {sum(s.dropped for s in streams):5d} dropped" + (f"  p99 {p99:.2f} s" if p99 is not None else "")
    )


def _describe(step: StepFigures, reason: str | None) -> str:
    p99 = step.frame_latency.p99
    return (
        f"step {step.index + 1}: {step.cameras} cameras at {step.sample_fps:g} fps: {step.frames_per_s:.2f} frames/s,"
        f" {step.faces_per_s:.2f} faces/s, drops {step.drops.rate:.1%}"
        + (f", frame p99 {p99:.3f} s" if p99 is not None else "")
        + f", {step.accuracy.alerts} alerts ({step.accuracy.true_alerts} true)"
        + (f"; saturated: {reason}" if reason else "")
    )


def _running(cameras: tuple[ReplayCamera, ...], urls: list[str], step: RampStep) -> list:
    return camera_configs(cameras[: step.cameras], urls[: step.cameras], step.sample_fps, SIGNAGE, neighbours=False)


def _deployment(cameras: tuple[ReplayCamera, ...], version_id: str, target_fpir: float) -> DeploymentConfig:
    now = datetime.now(UTC)
    return DeploymentConfig(
        id=DEPLOYMENT_ID,
        place=PLACE,
        starts_at=now,
        ends_at=now + timedelta(days=1),
        cameras=tuple(camera.id for camera in cameras),
        watchlist_id=WATCHLIST_ID,
        watchlist_version=version_id,
        target_fpir=target_fpir,
        purpose=Purpose.SYSTEM_TEST,
        signage_notice=SIGNAGE,
        authorised_by=OFFICER,
        reason=f"Load test of the live cluster on recorded video (pid {os.getpid()})",
    )


def _alerts(store: AlertStore, filters: AlertFilter) -> list[Alert]:
    alerts: list[Alert] = []
    cursor: str | None = None
    while True:
        page = store.list(filters, limit=ALERT_PAGE, cursor=cursor)
        alerts.extend(page.alerts)
        if page.next_cursor is None:
            return alerts
        cursor = page.next_cursor
