"""`lfr demo`: the whole cluster on embedded defaults, on a recorded crowd whose truth is known.

It synthesises a short crowd for a few cameras (real lfw10 faces walking camera to camera),
enrols the crowd's watchlist people from their enrolment photos (which never appear in the
video) into a watchlist in embedded Milvus, freezes a version, and runs the live cluster on the
videos in real time: cameras, the batched face service, per-camera tracking and matching, the
Coordinator fusing sightings into alerts in SQLite. Meanwhile the control room serves the
alerts on 127.0.0.1 (its address and a demo officer's key are printed) and the run publishes
its status there. It ends with the alerts and a score against the truth. Everything lives in
one work folder (a temporary one unless told otherwise), with the audit log's anchor file and,
when no audit key is set, the random key the demo seals its audit log with.
"""

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from cluster.alerts.model import Alert
from cluster.alerts.opening import open_alert_store
from cluster.alerts.store import AlertStore
from cluster.api.app import create_app
from cluster.api.photos import FolderWatchlistPhotos
from cluster.api.server import ApiServer
from cluster.api.services import ControlRoomServices
from cluster.application.live_run import LiveRun, LiveRunResult, LiveRunSettings, LiveSnapshot, stop_and_reload_signals
from cluster.application.watchlists import WatchlistService
from cluster.audit.config import AuditConfig
from cluster.audit.opening import open_audit_log
from cluster.audit.sealing import write_key_file
from cluster.cameras.config import CameraConfig, Neighbour
from cluster.config import LfrConfig
from cluster.crowd.scoring import AlertScore, score_alerts
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.synthesis import make_crowd
from cluster.crowd.truth import CrowdTruth, resolve_asset
from cluster.database.config import DatabaseConfig
from cluster.deployment.config import DeploymentConfig
from cluster.deployment.purpose import Purpose
from cluster.enrolment.faces import PORTRAIT, ChosenFace, choose_each_face
from cluster.gallery.attributes import PersonAttributes
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.config import GalleryConfig, LiteBackendConfig
from cluster.gallery.gallery import Gallery
from cluster.gallery.lite_backend import EmbeddedMilvus
from cluster.gallery.records import WatchlistEntry, WatchlistVersion
from cluster.live.matching import MatchingSummary
from cluster.matching.calibration import CalibratedThreshold
from cluster.private_files import private_folder
from cluster.vision.face import Face
from cluster.vision.pipeline import FacePipeline

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
PLACE = "Demo street (recorded crowd)"
DEMO_ATTRIBUTES = PersonAttributes(sex="male")
"""What the demo's enrolment records about each watchlist person, for its report's breakdown: every lfw10 person is
a man; ethnicity and age band are left unrecorded, as nobody asked them (the report shows them as not recorded)."""
SAMPLE_FPS = 5.0
DRAIN_S = 5.0
"""After the videos end, how long results may still be in flight before the cameras stop."""
PROGRESS_PERIOD_S = 5.0
DEMO_KEY_FILE = "audit-hmac.key"

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
    private_folder(options.workdir)
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
    milvus = LiteBackendConfig(data_dir=options.workdir / "milvus")
    gallery_config = GalleryConfig(backend=milvus)
    database = DatabaseConfig(url=str(options.workdir / "alerts.sqlite3"))
    matching = config.matching.model_copy(update={"target_fpir": options.target_fpir})
    audit = demo_audit(config.audit, options.workdir, progress)
    config = config.model_copy(
        update={"gallery": gallery_config, "database": database, "matching": matching, "audit": audit}
    )
    try:
        progress("starting embedded Milvus and enrolling the watchlist")
        version, enrolled = enrol_watchlist(truth, config)
        if version.calibration is None:
            raise RuntimeError(f"watchlist version {version.version_id} was frozen without a calibrated threshold")
        calibration = version.calibration
        progress(f"watchlist {version.version_id}: {enrolled} photos of {len(truth.watchlist)} people")
        config = config.model_copy(
            update={"cameras": cameras_of(truth, crowd_dir), "deployment": demo_deployment(truth, version, options)}
        )
        store = open_alert_store(database, config.audit)
        control_room = start_control_room(store, truth, options, progress)
        try:
            progress("starting Ray, the Coordinator and the live pipeline")
            result = run_live(config, options, progress)
        finally:
            control_room.stop()
        alerts = tuple(read_alerts(database, config.audit))
    finally:
        if milvus.data_dir.exists():
            EmbeddedMilvus(milvus, gallery_config.timeouts).stop()
    return DemoReport(
        alerts=alerts,
        score=score_alerts(alerts, truth),
        cameras=result.matching,
        enrolled=enrolled,
        watchlist_version=version.version_id,
        calibration=calibration,
        wall_s=time.monotonic() - started,
        alert_db=Path(database.url),
    )


def demo_audit(audit: AuditConfig, workdir: Path, progress: Progress) -> AuditConfig:
    """The demo's audit sealing: the configured key when it is set, else a random key of its own in the work folder.

    The demo needs no secret store, but its audit log is sealed like any other: the key it makes is kept
    (mode 0600) beside its database, so a kept work folder verifies later with that key.
    """
    if os.environ.get(audit.hmac_key_env) or audit.hmac_key_file is not None or not audit.require_hmac_key:
        return audit
    key_file = workdir / DEMO_KEY_FILE
    if key_file.exists():
        progress(f"sealing the audit log with this work folder's key in {key_file}")
    else:
        write_key_file(key_file)
        progress(
            f"{audit.hmac_key_env} is unset: sealing the demo's audit log with a new random key kept in {key_file}"
            " (mode 0600)"
        )
    return audit.model_copy(update={"hmac_key_file": key_file})


def enrol_watchlist(truth: CrowdTruth, config: LfrConfig) -> tuple[WatchlistVersion, int]:
    """Enrol each watchlist person's enrolment photos (the face nearest the photo's centre) and freeze.

    Through the audited watchlist service, as an officer's enrolment would be: the demo's audit
    log shows who authorised the list, what was enrolled and the version frozen.
    """
    pipeline = FacePipeline(config.face_models)
    entries = [
        WatchlistEntry(
            person_id=person.id,
            label=person.id.replace("_", " "),
            category="wanted",
            source="demo enrolment photo",
            authorised_by=OFFICER,
            embedding=face.embedding,
            extra_embeddings=face.extra_embeddings,
        )
        for person in truth.watchlist
        for face in central_faces(pipeline, person.enrolment_photos)
    ]
    audit = open_audit_log(config.database, config.audit)
    with Gallery.open(config.gallery, Catalogue(audit.database)) as gallery:
        watchlists = WatchlistService(gallery, audit, config)
        watchlists.create(
            WATCHLIST_ID,
            name="Demo watchlist",
            reason="Demonstration on a synthetic crowd",
            authorised_by=OFFICER,
            expires_at=int(time.time()) + 24 * 3600,
        )
        watchlists.enrol_entries(
            WATCHLIST_ID,
            entries,
            officer=OFFICER,
            attributes={entry.person_id: DEMO_ATTRIBUTES for entry in entries},
        )
        version = watchlists.freeze(WATCHLIST_ID, target_fpir=config.matching.target_fpir, officer=OFFICER)
        return version, len(entries)


def central_faces(pipeline: FacePipeline, photos: Sequence[str]) -> list[Face]:
    """Each photo's portrait face with every model's embedding; photos with no face are skipped."""
    outcomes = choose_each_face(pipeline, [(resolve_asset(photo), PORTRAIT) for photo in photos])
    return [outcome.face for outcome in outcomes if isinstance(outcome, ChosenFace)]


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


def demo_deployment(truth: CrowdTruth, version: WatchlistVersion, options: DemoOptions) -> DeploymentConfig:
    """The demo's authorised deployment: today, on the crowd's cameras, bound to the version just frozen."""
    now = datetime.now(UTC)
    return DeploymentConfig(
        id=DEPLOYMENT_ID,
        place=PLACE,
        starts_at=now,
        ends_at=now + timedelta(days=1),
        cameras=tuple(camera.id for camera in truth.cameras),
        watchlist_id=WATCHLIST_ID,
        watchlist_version=version.version_id,
        target_fpir=options.target_fpir,
        purpose=Purpose.SYSTEM_TEST,
        signage_notice=SIGNAGE,
        authorised_by=OFFICER,
        reason="Demonstration of the live cluster on recorded video",
    )


def run_live(config: LfrConfig, options: DemoOptions, progress: Progress) -> LiveRunResult:
    """The same live run as `lfr run`, for as long as the videos play (real time) plus a drain."""
    run = LiveRun(config, LiveRunSettings(actor=DEMO_ACTOR, period_s=PROGRESS_PERIOD_S))
    run.start(progress)
    deadline = time.monotonic() + options.seconds + DRAIN_S

    def show(snapshot: LiveSnapshot) -> None:
        progress(
            f"{max(0.0, deadline - time.monotonic()):4.0f} s left: {sum(s.results_ok for s in snapshot.streams)}"
            f" frames, {sum(s.faces for s in snapshot.streams)} faces, {sum(s.dropped for s in snapshot.streams)}"
            " dropped"
        )

    try:
        with stop_and_reload_signals() as (stopping, reload_requested):
            run.run(stopping, reload_requested, show, duration_s=options.seconds + DRAIN_S)
    finally:
        result = run.stop()
    return result


def read_alerts(database: DatabaseConfig, audit: AuditConfig) -> list[Alert]:
    store = open_alert_store(database, audit)
    alerts: list[Alert] = []
    cursor: str | None = None
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
