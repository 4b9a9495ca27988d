"""`lfr demo`: the whole cluster on embedded defaults, on a recorded crowd whose truth is known.

It synthesises a short crowd for a few cameras (real lfw10 faces walking camera to camera),
enrols the crowd's watchlist people from their enrolment photos (which never appear in the
video) into a watchlist in embedded Milvus, freezes a version, and runs the live cluster on the
videos in real time: cameras, the batched face service, per-camera tracking and matching, the
Coordinator fusing sightings into alerts in SQLite. Meanwhile the control room serves the
alerts on 127.0.0.1 (its address and a demo officer's key are printed) and the run publishes
its status there. It ends with the alerts and a score against the truth. Everything lives in
one work folder (a temporary one unless told otherwise).
"""

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ray
import structlog
from ray import serve

from actors.camera_registry import NAMESPACE
from actors.live_assembly import LiveAssembly
from actors.live_pipeline import LivePipeline
from cluster.alerts.model import Alert
from cluster.alerts.opening import open_alert_store
from cluster.alerts.query import AlertFilter
from cluster.alerts.store import AlertStore
from cluster.api.app import create_app
from cluster.api.photos import FolderWatchlistPhotos
from cluster.api.server import ApiServer
from cluster.api.services import ControlRoomServices
from cluster.audit.config import AuditConfig
from cluster.cameras.config import CameraConfig, Neighbour
from cluster.config import LfrConfig
from cluster.crowd.scoring import AlertScore, score_alerts
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.synthesis import make_crowd
from cluster.crowd.truth import CrowdTruth, resolve_asset
from cluster.database.config import DatabaseConfig
from cluster.deployment.plan import MatchingPlan
from cluster.deployment.window import DeploymentWindow
from cluster.enrolment.faces import portrait_face
from cluster.gallery.config import GalleryConfig, LiteBackendConfig
from cluster.gallery.gallery import Gallery
from cluster.gallery.lite_backend import EmbeddedMilvus
from cluster.gallery.records import WatchlistEntry, WatchlistVersion
from cluster.live.matching import MatchingSummary
from cluster.live.status_board import DeploymentStatus, StatusBoard
from cluster.matching.calibration import CalibratedThreshold
from cluster.matching.scoring import match_scoring
from cluster.vision.face import Face
from cluster.vision.image_io import load_image
from cluster.vision.pipeline import FacePipeline, models_name

log = structlog.get_logger(__name__)

DEPLOYMENT_ID = "demo"
WATCHLIST_ID = "demo_watchlist"
OFFICER = "Superintendent A. Example (demo)"
DEMO_OFFICER = "demo-officer"
DEMO_ACTOR = "cli:lfr-demo"
SIGNAGE = "Live facial recognition in use (demonstration on recorded video)"
DEMO_TARGET_FPIR = 1e-2
"""The demo states 1 false alert in 100 passers-by: its crowd's faces are 30-75 px street faces, on which
a 3-person list at the product default of 1 in 6,000 alerts about one person in two (its expected
TPIR, 0.65, says as much); 1 in 100 shows every watchlist person on a crowd of a few dozen people."""
SAMPLE_FPS = 5.0
DRAIN_S = 5.0
"""After the videos end, how long results may still be in flight before the cameras stop."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    cameras: int = 3
    seconds: float = 40.0
    seed: int = 1
    width: int = 640
    height: int = 360
    port: int = 0
    """Control-room port on 127.0.0.1; 0: any free port."""
    target_fpir: float = DEMO_TARGET_FPIR
    """The false-alert rate the demo deployment states; its watchlist version is calibrated for it."""


@dataclass(frozen=True)
class DemoReport:
    """What the demo did and how it compares with the truth."""

    alerts: tuple[Alert, ...]
    score: AlertScore
    cameras: tuple[MatchingSummary, ...]
    enrolled: int
    watchlist_version: str
    calibration: CalibratedThreshold
    wall_s: float
    alert_db: Path

    @property
    def faces_seen(self) -> int:
        return sum(c.tracker.faces_seen for c in self.cameras)

    @property
    def deleted_no_match(self) -> int:
        return sum(c.tracker.tracklets_deleted_no_match for c in self.cameras)


def run_demo(options: DemoOptions, config: LfrConfig, progress: Progress) -> DemoReport:
    started = time.monotonic()
    options.workdir.mkdir(parents=True, exist_ok=True)
    crowd_dir = options.workdir / "crowd"
    progress(f"synthesising a {options.seconds:g} s crowd for {options.cameras} cameras in {crowd_dir}")
    spec = CrowdSpec(
        cameras=options.cameras,
        seconds=options.seconds,
        fps=10,
        width=options.width,
        height=options.height,
        seed=options.seed,
    )
    truth = make_crowd(spec, crowd_dir)
    gallery_config = GalleryConfig(
        backend=LiteBackendConfig(data_dir=options.workdir / "milvus"),
        catalogue_path=options.workdir / "watchlists.sqlite3",
    )
    database = DatabaseConfig(url=str(options.workdir / "alerts.sqlite3"))
    matching = config.matching.model_copy(update={"target_fpir": options.target_fpir})
    config = config.model_copy(update={"gallery": gallery_config, "database": database, "matching": matching})
    try:
        progress("starting embedded Milvus and enrolling the watchlist")
        version, enrolled = enrol_watchlist(truth, gallery_config, config)
        progress(f"watchlist {version.version_id}: {enrolled} photos of {len(truth.watchlist)} people")
        cameras = cameras_of(truth, crowd_dir)
        store = open_alert_store(database, config.audit)
        control_room = start_control_room(store, truth, options, progress)
        try:
            progress("starting Ray, the Coordinator and the live pipeline")
            now = time.time()
            window = DeploymentWindow(now, now + 24 * 3600)
            threshold = version.calibration.threshold
            board = StatusPublisher(
                StatusBoard(store.database), store, version, threshold, models_name(config.face_models), window
            )
            summaries = run_cluster(cameras, version, window, config, options, progress, board)
        finally:
            control_room.stop()
        alerts = tuple(read_alerts(database))
    finally:
        if gallery_config.backend.data_dir.exists():
            EmbeddedMilvus(gallery_config.backend, gallery_config.timeouts).stop()
    return DemoReport(
        alerts=alerts,
        score=score_alerts(alerts, truth),
        cameras=tuple(summaries),
        enrolled=enrolled,
        watchlist_version=version.version_id,
        calibration=version.calibration,
        wall_s=time.monotonic() - started,
        alert_db=Path(database.url),
    )


def enrol_watchlist(truth: CrowdTruth, gallery: GalleryConfig, config: LfrConfig) -> tuple[WatchlistVersion, int]:
    """Enrol each watchlist person's enrolment photos (the face nearest the photo's centre) and freeze."""
    pipeline = FacePipeline(config.face_models)
    entries = []
    for person in truth.watchlist:
        for face in central_faces(pipeline, person.enrolment_photos):
            entries.append(
                WatchlistEntry(
                    person_id=person.id,
                    label=person.id.replace("_", " "),
                    category="wanted",
                    source="demo enrolment photo",
                    authorised_by=OFFICER,
                    embedding=face.embedding,
                    extra_embeddings=face.extra_embeddings,
                )
            )
    with Gallery.open(gallery) as opened:
        watchlists = opened.watchlists
        watchlists.create(
            WATCHLIST_ID,
            name="Demo watchlist",
            reason="Demonstration on a synthetic crowd",
            authorised_by=OFFICER,
            expires_at=int(time.time()) + 24 * 3600,
        )
        watchlists.enrol(WATCHLIST_ID, entries)
        scoring = match_scoring(config.face_models.models)
        version = watchlists.freeze(
            WATCHLIST_ID,
            calibrate=lambda size: scoring.threshold_for(config.matching.target_fpir, size),
            models=config.face_models.models[1:],
        )
        return version, len(entries)


def central_faces(pipeline: FacePipeline, photos: Sequence[str]) -> list[Face]:
    """Each photo's portrait face with every model's embedding; photos with no face are skipped."""
    images = [load_image(resolve_asset(photo)) for photo in photos]
    chosen = [portrait_face(image.shape, faces) for image, faces in zip(images, pipeline.process(images), strict=True)]
    embedded = pipeline.with_second_stage(images, [[face] if face else [] for face in chosen])
    return [faces[0] for faces in embedded if faces]


def cameras_of(truth: CrowdTruth, crowd_dir: Path) -> list[CameraConfig]:
    return [
        CameraConfig(
            id=camera.id,
            source=str(crowd_dir / camera.file),
            neighbours=tuple(
                Neighbour(camera_id=n.camera, walking_seconds=n.walking_seconds) for n in camera.neighbours
            ),
            sample_fps=SAMPLE_FPS,
            signage_notice=SIGNAGE,
        )
        for camera in truth.cameras
    ]


def run_cluster(
    cameras: list[CameraConfig],
    version: WatchlistVersion,
    window: DeploymentWindow,
    config: LfrConfig,
    options: DemoOptions,
    progress: Progress,
    board: "StatusPublisher",
) -> list[MatchingSummary]:
    plan = MatchingPlan(
        deployment_id=DEPLOYMENT_ID,
        watchlist_version=version.version_id,
        target_fpir=config.matching.target_fpir,
        window=window,
        cameras=tuple(cameras),
    )
    ray.init(namespace=NAMESPACE, include_dashboard=False, log_to_driver=False)
    try:
        deployment = LiveAssembly.start(plan, config)
        try:
            watch(deployment.pipeline, options.seconds, progress, board)
        finally:
            deployment.stop()
            serve.shutdown()
        return deployment.pipeline.sink_summaries
    finally:
        ray.shutdown()


def watch(pipeline: LivePipeline, seconds: float, progress: Progress, board: "StatusPublisher") -> None:
    """Let the videos play out (real time), showing progress and publishing the status every few seconds."""
    deadline = time.monotonic() + seconds + DRAIN_S
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(5.0, left))
        board.publish(pipeline)
        stats = pipeline.stats()
        progress(
            f"{max(0.0, deadline - time.monotonic()):4.0f} s left: {sum(s.results_ok for s in stats)} frames,"
            f" {sum(s.faces for s in stats)} faces, {sum(s.dropped for s in stats)} dropped"
        )


def read_alerts(database: DatabaseConfig) -> list[Alert]:
    store = open_alert_store(database, AuditConfig())
    alerts, cursor = [], None
    while True:
        page = store.list(limit=200, cursor=cursor)
        alerts.extend(page.alerts)
        if page.next_cursor is None:
            return alerts
        cursor = page.next_cursor


def start_control_room(store: AlertStore, truth: CrowdTruth, options: DemoOptions, progress: Progress) -> ApiServer:
    """Serve the control room over the demo's alerts, with the watchlist photos and a demo officer's key."""
    photos = options.workdir / "photos" / WATCHLIST_ID
    photos.mkdir(parents=True, exist_ok=True)
    for person in truth.watchlist:
        shutil.copyfile(resolve_asset(person.enrolment_photos[0]), photos / f"{person.id}.jpg")
    services = ControlRoomServices.over(store, FolderWatchlistPhotos(photos.parent))
    issued = services.keys.add_user(DEMO_OFFICER, "supervisor", actor=DEMO_ACTOR)
    server = ApiServer(create_app(services), "127.0.0.1", options.port).start()
    progress(f"control room: {server.url}/  (sign in with the key {issued.token})")
    return server


class StatusPublisher:
    """Publishes the demo deployment's status (counts and camera health) for the control room."""

    def __init__(
        self,
        board: StatusBoard,
        store: AlertStore,
        version: WatchlistVersion,
        threshold: float,
        model: str,
        window: DeploymentWindow,
    ) -> None:
        self._board = board
        self._store = store
        self._version = version
        self._threshold = threshold
        self._model = model
        self._window = window

    def publish(self, pipeline: LivePipeline) -> None:
        summaries = [s for s in pipeline.current_sink_summaries() if isinstance(s, MatchingSummary)]
        cameras = tuple(health for health in pipeline.camera_health() if health is not None)
        self._board.publish(
            DeploymentStatus(
                deployment_id=DEPLOYMENT_ID,
                place="Demo street (recorded crowd)",
                window=self._window,
                watchlist_id=WATCHLIST_ID,
                watchlist_version=self._version.version_id,
                threshold=self._threshold,
                model=self._model,
                target_fpir=self._version.calibration.target_fpir,
                expected_tpir=self._version.calibration.expected_tpir,
                faces_seen=sum(s.tracker.faces_seen for s in summaries),
                non_match_deletions=sum(s.tracker.tracklets_deleted_no_match for s in summaries),
                alerts=self._store.count(AlertFilter(deployment_id=DEPLOYMENT_ID)),
                cameras=cameras,
                published_at=time.time(),
            )
        )
