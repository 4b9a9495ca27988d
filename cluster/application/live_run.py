"""LiveRun: one live run of the cluster, the same for `lfr run`, `lfr demo` and `lfr cameras run`.

It starts or joins Ray, then one of two assemblies: with `faces` on, the configuration's
cameras through the face service (and, when a deployment is configured, through matching and
the Coordinator into alerts); with `faces` off, the cameras alone, for operators to add, remove
and watch (`lfr cameras ...`). While it runs it publishes the deployment's status board for the
control room, runs alert and gallery retention (expired watchlist entries and social-media
faces deleted from the gallery it serves), reloads the cameras when the configuration file changes or
on request (SIGHUP), and hands each period's figures to whoever shows them. A deployment's
start and stop, and every camera change, are written to the audit log with who made them (the start
with the authorisation, an assembly's supervisor-level authorisation and its reasons, and the
exclusion windows; the stop with the frames dropped outside the window or inside an exclusion; at the
stop, its "not this person" suppressions lose their face embeddings, also audited), and
the audit chain's head is written to its anchor file on a timer while the run lasts. A
deployment starts only on a frozen watchlist version whose rows in Milvus are still the ones it
froze (`Watchlists.verify`).
"""

import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import structlog
from ray.actor import ActorHandle

from actors.camera_registry import REGISTRY_NAME, CameraRegistry, ReloadResult
from actors.live_assembly import LiveAssembly
from actors.live_pipeline import LivePipeline
from cluster.alerts.opening import open_alert_store
from cluster.alerts.query import AlertFilter
from cluster.alerts.retention import RetentionScheduler
from cluster.application.gallery_retention import GalleryRetention
from cluster.application.ray_runtime import start_ray, stop_ray
from cluster.audit.actions import AuditAction
from cluster.cameras.config import CAMERA_ACTOR_CPUS, CameraConfig
from cluster.cameras.status import CameraStatus
from cluster.cases.store import CaseStore
from cluster.config import ConfigError, LfrConfig, load_config
from cluster.database.engine import UNAVAILABLE_ERRORS
from cluster.deployment.plan import MatchingPlan, plan_from_config, threshold_in_force
from cluster.deployment.records import DeploymentRecords
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.gallery import Gallery
from cluster.gallery.records import WatchlistVersion
from cluster.live.forwarding import StreamStats
from cluster.live.matching import MatchingSummary
from cluster.live.status_board import DeploymentStatus, StatusBoard
from cluster.vision.pipeline import models_name

log = structlog.get_logger(__name__)

CALL_TIMEOUT_S = 30.0
START_TIMEOUT_S = 180.0
"""Starting camera actors starts worker processes; on a loaded machine that takes minutes, not seconds."""


@dataclass(frozen=True)
class LiveRunSettings:
    """How a live run starts and who answers for it."""

    actor: str
    """Who starts the run, as the audit log records it (an officer, or `cli:<user>`)."""
    address: str | None = None
    """Ray cluster to join (HOST:PORT); None starts a local one."""
    num_cpus: int | None = None
    """Logical CPUs of a local Ray cluster (default: the machine's)."""
    faces: bool = True
    """False runs the cameras alone (`lfr cameras run`): no face service, no matching."""
    config_path: Path | None = None
    """The configuration file whose cameras are reloaded when it changes; None never reloads."""
    period_s: float = 1.0
    """How often figures are gathered, shown and published."""
    camera_cpus: float = CAMERA_ACTOR_CPUS
    fusion_cameras: tuple[CameraConfig, ...] | None = None
    """The cameras (and their neighbours) the Coordinator fuses sightings over; None: the configuration's. A
    run that starts with some of a deployment's cameras and adds the others by `reload` (as `lfr loadtest`
    ramps them) names them all here."""


@dataclass(frozen=True)
class LiveSnapshot:
    """One period's figures: per-stream forwarding (faces on), each camera's status, the last reload."""

    at: float
    streams: tuple[StreamStats, ...]
    cameras: tuple[CameraStatus, ...]
    note: str


@dataclass(frozen=True)
class LiveRunResult:
    """What a finished run did: final figures per camera and, for a deployment, its matching counts."""

    seconds: float
    streams: tuple[StreamStats, ...]
    matching: tuple[MatchingSummary, ...]


@dataclass
class _Running:
    """The parts a started run holds."""

    registry: ActorHandle
    pipeline: LivePipeline | None = None
    assembly: LiveAssembly | None = None
    plan: MatchingPlan | None = None
    version: WatchlistVersion | None = None
    retention: RetentionScheduler | None = None
    gallery: Gallery | None = None
    gallery_retention: GalleryRetention | None = None
    board: StatusBoard | None = None
    started: float = field(default_factory=time.monotonic)


class LiveRun:
    """Start with `start()`, drive with `run()` (or `snapshot()` and `reload()`), end with `stop()`."""

    def __init__(self, config: LfrConfig, settings: LiveRunSettings) -> None:
        if not config.cameras:
            raise ValueError(
                "the configuration lists no cameras; add some under `cameras:` (see configs/west_end.yaml)"
            )
        self._config = config
        self._settings = settings
        self._store = open_alert_store(config.database, config.audit)
        self._running: _Running | None = None
        self._owns_ray = False
        self._note = ""

    @property
    def plan(self) -> MatchingPlan | None:
        """The deployment's matching plan while it runs; None without a deployment or faces."""
        return None if self._running is None else self._running.plan

    @property
    def pipeline(self) -> LivePipeline | None:
        return None if self._running is None else self._running.pipeline

    @property
    def ray_address(self) -> str:
        return ray.get_runtime_context().gcs_address

    def start(self, progress: Callable[[str], None] | None = None) -> None:
        """Start Ray and the run's actors; audit the deployment's start (before anything is matched).

        A deployment's watchlist version is checked first (calibrated for the stated rate, its rows in
        Milvus unchanged since freezing), so a refused deployment starts nothing.
        """
        bound = self._bound_version() if self._settings.faces else None
        self._owns_ray = not ray.is_initialized()
        start_ray(self._settings.address, num_cpus=self._settings.num_cpus, progress=progress)
        try:
            self._running = self._start_parts(bound)
        except BaseException:
            self._leave_ray()
            raise
        if self._store.audit.anchors is not None:
            self._store.audit.anchors.start()

    def _bound_version(self) -> tuple[MatchingPlan, WatchlistVersion] | None:
        """The deployment's plan and its watchlist version, checked; None without a deployment.

        FrozenVersionChangedError when the version's rows in Milvus changed since it was frozen.
        """
        config = self._config
        if config.deployment is None:
            return None
        plan = plan_from_config(config)
        catalogue = Catalogue(self._store.database)
        version = catalogue.version(plan.watchlist_version)
        threshold_in_force(plan, version.calibration)
        with Gallery.open(config.gallery, catalogue) as gallery:
            gallery.watchlists.verify(version)
        return plan, version

    def _start_parts(self, bound: tuple[MatchingPlan, WatchlistVersion] | None) -> _Running:
        config, settings = self._config, self._settings
        if not settings.faces:
            # mypy does not apply class decorators: at run time CameraRegistry is an ActorClass.
            placement = config.face_service.placement.cameras
            registry = CameraRegistry.options(name=REGISTRY_NAME, **placement.ray_options()).remote(  # type: ignore[attr-defined]
                settings.camera_cpus, placement
            )
            self._note = self._describe(_answer(registry.reload.remote(config.cameras), START_TIMEOUT_S))
            self._audit_cameras(ReloadResult(tuple(c.id for c in config.cameras), (), (), ()), "started")
            return _Running(registry=registry)
        if bound is None:
            pipeline = LivePipeline.start(config.cameras, config.face_models, config.face_service)
            self._audit_cameras(ReloadResult(tuple(c.id for c in config.cameras), (), (), ()), "started")
            return _Running(registry=pipeline.registry, pipeline=pipeline)
        plan, version = bound
        self._record_deployment()
        self._audit_deployment(AuditAction.DEPLOYMENT_STARTED, plan, version, {})
        gallery: Gallery | None = None
        try:
            gallery = Gallery.open(config.gallery, Catalogue(self._store.database))
            assembly = LiveAssembly.start(plan, version, config, settings.fusion_cameras)
        except BaseException as exc:
            if gallery is not None:
                gallery.close()
            self._audit_deployment(AuditAction.DEPLOYMENT_STOPPED, plan, version, {"error": str(exc).splitlines()[0]})
            raise
        retention = RetentionScheduler(
            self._store, config.retention, cases=CaseStore(self._store.database, self._store.audit)
        )
        retention.start()
        gallery_retention = GalleryRetention(gallery, self._store.audit, config)
        gallery_retention.start()
        return _Running(
            registry=assembly.pipeline.registry,
            pipeline=assembly.pipeline,
            assembly=assembly,
            plan=plan,
            version=version,
            retention=retention,
            gallery=gallery,
            gallery_retention=gallery_retention,
            board=StatusBoard(self._store.database),
        )

    def snapshot(self, latency_since: float | None = None) -> LiveSnapshot:
        """This period's figures (frame latencies over results after `latency_since`, unix seconds, if given);
        also publishes the deployment's status board."""
        running = self._require_running()
        cameras: tuple[CameraStatus, ...] = tuple(_answer(running.registry.list.remote(), CALL_TIMEOUT_S))
        streams = tuple(running.pipeline.stats(latency_since)) if running.pipeline is not None else ()
        if running.board is not None:
            try:
                self._publish(running, cameras)
            except UNAVAILABLE_ERRORS as exc:
                # A full disk or an unreachable database must not stop the run: alerts wait as dead letters
                # meanwhile, and the next period publishes again.
                log.warning("status_board_not_published", error=str(exc).splitlines()[0])
        return LiveSnapshot(time.time(), streams, cameras, self._note)

    def matching(self) -> tuple[MatchingSummary, ...]:
        """Each running camera's match stage figures now (a deployment's run; empty otherwise)."""
        running = self._require_running()
        if running.plan is None or running.pipeline is None:
            return ()
        return tuple(s for s in running.pipeline.current_sink_summaries() if isinstance(s, MatchingSummary))

    def reload(self, cameras: list[CameraConfig]) -> ReloadResult:
        """Make the running cameras match `cameras` (a deployment's: only those it authorises); audited."""
        running = self._require_running()
        if running.plan is not None:
            authorised = set(self._config.deployment.cameras) if self._config.deployment else set()
            cameras = [camera for camera in cameras if camera.id in authorised]
        result: ReloadResult
        if running.pipeline is not None:
            result = running.pipeline.reload(cameras)
        else:
            result = _answer(running.registry.reload.remote(cameras), START_TIMEOUT_S)
        self._audit_cameras(result, "reloaded")
        self._note = self._describe(result)
        return result

    def reload_file(self) -> str:
        """Reload the configuration file's cameras; a file that does not load leaves the cameras as they are."""
        path = self._settings.config_path
        if path is None:
            return self._note
        try:
            self.reload(load_config(path).cameras)
        except (ConfigError, ValueError) as exc:
            first, *details = str(exc).splitlines()
            self._note = f"kept the running cameras: {' '.join([first, '; '.join(line.strip() for line in details)])}"
            log.warning("camera_reload_refused", path=str(path), error=first)
        return self._note

    def run(
        self,
        stop: threading.Event,
        reload_requested: threading.Event,
        show: Callable[[LiveSnapshot], None],
        duration_s: float | None = None,
    ) -> None:
        """Gather, show and publish figures every period until `stop` is set or `duration_s` passes.

        Reloads the cameras when the configuration file changes or `reload_requested` is set.
        """
        running = self._require_running()
        signature = _file_signature(self._settings.config_path)
        while not stop.is_set():
            if duration_s is not None and time.monotonic() - running.started >= duration_s:
                return
            current = _file_signature(self._settings.config_path)
            if reload_requested.is_set() or current != signature:
                reload_requested.clear()
                signature = current
                self.reload_file()
            show(self.snapshot())
            wait = self._settings.period_s
            if duration_s is not None:
                wait = min(wait, max(0.0, duration_s - (time.monotonic() - running.started)))
            stop.wait(wait)

    def stop(self) -> LiveRunResult:
        """Stop the cameras (last tracklets decided and delivered), the services, retention and Ray; audited."""
        running = self._require_running()
        self._running = None
        running_ids: list[str] = [
            status.camera_id for status in _answer(running.registry.list.remote(), CALL_TIMEOUT_S)
        ]
        try:
            if running.assembly is not None:
                streams = running.assembly.stop()
            elif running.pipeline is not None:
                streams = running.pipeline.stop()
            else:
                ray.get(running.registry.stop_all.remote(), timeout=CALL_TIMEOUT_S)
                ray.kill(running.registry, no_restart=True)
                streams = []
            matching = tuple(
                s
                for s in (running.pipeline.sink_summaries if running.pipeline else [])
                if isinstance(s, MatchingSummary)
            )
            result = LiveRunResult(time.monotonic() - running.started, tuple(streams), matching)
            if running.plan is not None and running.version is not None:
                self._audit_deployment(
                    AuditAction.DEPLOYMENT_STOPPED,
                    running.plan,
                    running.version,
                    {
                        "seconds": round(result.seconds, 1),
                        "faces_seen": sum(m.tracker.faces_seen for m in matching),
                        "tracklets_searched": sum(m.tracker.tracklets_searched for m in matching),
                        "tracklets_deleted_no_match": sum(m.tracker.tracklets_deleted_no_match for m in matching),
                        "sightings": sum(m.sightings for m in matching),
                        "frames_outside_window": sum(m.frames_outside_window for m in matching),
                        "frames_excluded": sum(m.frames_excluded for m in matching),
                        "per_camera": {
                            m.camera_id: {
                                "faces_seen": m.tracker.faces_seen,
                                "tracklets_searched": m.tracker.tracklets_searched,
                                "tracklets_deleted_no_match": m.tracker.tracklets_deleted_no_match,
                                "sightings": m.sightings,
                                "frames_excluded": m.frames_excluded,
                            }
                            for m in matching
                        },
                    },
                )
                self._store.suppressions.end_deployment(running.plan.deployment_id, self._settings.actor)
            else:
                self._audit_cameras(ReloadResult((), tuple(sorted(running_ids)), (), ()), "stopped")
            return result
        finally:
            if running.retention is not None:
                running.retention.stop()
            if running.gallery_retention is not None:
                running.gallery_retention.stop()
            if running.gallery is not None:
                running.gallery.close()
            self._store.audit.close()
            self._leave_ray()

    def _leave_ray(self) -> None:
        """Disconnect from Ray if this run connected (a caller already connected keeps its connection)."""
        if self._owns_ray:
            stop_ray(stop_serve=self._settings.address is None)

    def _publish(self, running: _Running, cameras: tuple[CameraStatus, ...]) -> None:
        """The deployment's status for the control room: authorisation, threshold, counts, camera health."""
        deployment, version, plan = self._config.deployment, running.version, running.plan
        if deployment is None or version is None or plan is None or running.board is None or running.pipeline is None:
            return
        summaries = [s for s in running.pipeline.current_sink_summaries() if isinstance(s, MatchingSummary)]
        calibration = version.calibration
        running.board.publish(
            DeploymentStatus(
                deployment_id=deployment.id,
                place=deployment.place,
                window=deployment.window,
                watchlist_id=deployment.watchlist_id,
                watchlist_version=version.version_id,
                threshold=calibration.threshold if calibration else float("nan"),
                model=models_name(self._config.face_models),
                target_fpir=plan.target_fpir,
                expected_tpir=calibration.expected_tpir if calibration else None,
                faces_seen=sum(s.tracker.faces_seen for s in summaries),
                non_match_deletions=sum(s.tracker.tracklets_deleted_no_match for s in summaries),
                alerts=self._store.count(AlertFilter(deployment_id=deployment.id)),
                cameras=tuple(status.health for status in cameras if status.health is not None),
                published_at=time.time(),
            )
        )

    def _record_deployment(self) -> None:
        """Write the deployment into the records the public see (`cluster.deployment.records`), as it starts."""
        deployment = self._config.deployment
        assert deployment is not None
        DeploymentRecords(self._store.audit).record(deployment, actor=self._settings.actor)

    def _audit_deployment(
        self, action: AuditAction, plan: MatchingPlan, version: WatchlistVersion, outcome: Mapping[str, object]
    ) -> None:
        deployment = self._config.deployment
        assert deployment is not None
        calibration = version.calibration
        self._store.audit.record(
            self._settings.actor,
            action,
            f"deployment:{plan.deployment_id}",
            {
                **deployment.authorisation(),
                "watchlist_id": version.watchlist_id,
                "watchlist_version": version.version_id,
                "watchlist_digest": version.digest,
                "entries": version.entry_count,
                "threshold": calibration.threshold if calibration else None,
                "target_fpir": plan.target_fpir,
                "model": models_name(self._config.face_models),
                "cameras": [camera.id for camera in plan.cameras],
                **outcome,
            },
        )

    def _audit_cameras(self, result: ReloadResult, change: str) -> None:
        """One audit entry per change of the running cameras (none when nothing changed)."""
        if not (result.added or result.removed or result.restarted):
            return
        self._store.audit.record(
            self._settings.actor,
            AuditAction.CONFIG_CHANGE,
            "cameras",
            {
                "change": change,
                "added": list(result.added),
                "removed": list(result.removed),
                "restarted": list(result.restarted),
                "config": str(self._settings.config_path) if self._settings.config_path else None,
            },
        )

    @staticmethod
    def _describe(result: ReloadResult) -> str:
        changes = [
            f"{what} {', '.join(ids)}"
            for what, ids in (("added", result.added), ("removed", result.removed), ("restarted", result.restarted))
            if ids
        ]
        return f"{time.strftime('%H:%M:%S')} config loaded: " + ("; ".join(changes) or "no change")

    def _require_running(self) -> _Running:
        if self._running is None:
            raise RuntimeError("the live run is not running: call start() first")
        return self._running


def _answer(ref: ray.ObjectRef, timeout_s: float) -> Any:
    """An actor call's result (Ray's stubs leave actor method results untyped)."""
    return ray.get(ref, timeout=timeout_s)


def _file_signature(path: Path | None) -> tuple[int, int] | None:
    """What tells us the file changed: its modification time and size (None while it is missing)."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@contextmanager
def stop_and_reload_signals() -> Iterator[tuple[threading.Event, threading.Event]]:
    """Events set by Ctrl-C or SIGTERM (stop) and SIGHUP (reload the cameras), for `LiveRun.run`."""
    stopping, reload_requested = threading.Event(), threading.Event()
    previous = {
        signum: signal.signal(signum, handler)
        for signum, handler in (
            (signal.SIGINT, lambda *_: stopping.set()),
            (signal.SIGTERM, lambda *_: stopping.set()),
            (signal.SIGHUP, lambda *_: reload_requested.set()),
        )
    }
    try:
        yield stopping, reload_requested
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
