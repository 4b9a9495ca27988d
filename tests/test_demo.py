"""`lfr demo` end to end (real Ray, Serve, embedded Milvus, SQLite), and the privacy promise checked on disk.

One run of a short synthetic crowd: the watchlist people who walk by are alerted, nobody else
is, each person's cameras fuse into one alert, and afterwards nothing of anyone who matched
nobody is held in memory or stored: the scanner looks for their face embeddings in every byte
the run wrote (alert store, watchlist catalogue, Milvus data) and for vectors in Ray's logs.
Then officers decide its alerts, and `lfr report deployment demo` reports the deployment from its
records: every figure is checked against the store's own, and docs/deployment_report.png shows
the page in Chromium.
"""

import hashlib
import io
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from cluster.alerts.model import AlertState
from cluster.alerts.opening import open_alert_store
from cluster.alerts.query import AlertFilter
from cluster.audit.actions import AuditAction
from cluster.audit.anchors import AnchorFile
from cluster.audit.config import default_anchor_path
from cluster.audit.log import AuditLog
from cluster.cli.main import build_parser
from cluster.config import LfrConfig
from cluster.crowd.scoring import score_alerts
from cluster.crowd.truth import CrowdTruth
from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database
from cluster.demo.scenario import OFFICER, PLACE, SIGNAGE, DemoOptions, DemoReport, central_faces, run_demo
from cluster.gallery.attributes import NOT_RECORDED
from cluster.live.status_board import StatusBoard
from cluster.oversight.report import DeploymentReport
from cluster.trace_scan import unit_vectors
from tests.audit_key import TEST_SEALER
from tests.chromium import CHROMIUM, DOCS, INSTALL_HINT, chromium_missing

pytestmark = [pytest.mark.slow, pytest.mark.own_ray]

SAME_PERSON = 0.92
"""Cosine at which a stored vector is taken to be a face of a reference person (the match threshold)."""
SAME_VECTOR = 0.9999
"""Cosine at which a stored vector is one the run was allowed to store (float32 round trips included)."""
FLOATS_IN_A_ROW = re.compile(r"(-?\d\.\d{3,}[,\s]+){16}")
"""Sixteen decimals in a row: what a vector printed into a log looks like."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[DemoReport, Path]:
    workdir = tmp_path_factory.mktemp("demo")
    messages: list[str] = []
    report = run_demo(DemoOptions(workdir=workdir, seconds=24.0), LfrConfig(), messages.append)
    assert any("left" in message for message in messages), "the demo showed no progress"
    assert any(message.startswith("control room: http://127.0.0.1:") for message in messages)
    return report, workdir


@pytest.fixture(scope="module")
def people(demo, face_pipeline) -> dict[str, np.ndarray]:
    """Every person's appearance-photo embeddings (the faces the videos show), by person id."""
    _, workdir = demo
    truth = CrowdTruth.load(workdir / "crowd" / "ground_truth.json")
    found = {}
    for person in truth.people:
        found[person.id] = np.stack([face.embedding for face in central_faces(face_pipeline, person.appearance_photos)])
    return found


def test_watchlist_people_are_alerted_once_and_nobody_else(demo):
    """No false alert; at least two in three of the watchlist people who walk by are alerted.

    Not all of them: at the demo's stated 1 in 100 the calibrated threshold expects a TPIR near 0.9 (on
    portrait pairs; street faces do worse), so all three of three is a 70 % event, two of three or more
    a 97 % one (and fewer frames reach the models on a loaded machine).
    """
    report, _ = demo
    score = report.score
    assert score.false_alerts == 0, f"false alerts: {[a.person_id for a in report.alerts]}"
    assert score.watchlist_people_seen >= 1, "the crowd must bring a watchlist person past the cameras"
    assert 3 * score.people_alerted >= 2 * score.watchlist_people_seen, (
        f"watchlist people missed at the demo's stated rate: {score.people_missed}"
    )
    assert score.alerts_per_person <= 1.5, "one person's sightings on several cameras were not fused"
    stated = DemoOptions.target_fpir
    assert report.calibration.target_fpir == stated and report.calibration.list_size == report.enrolled
    for alert in report.alerts:
        assert (alert.threshold, alert.target_fpir) == (report.calibration.threshold, stated)
        assert alert.expected_tpir == report.calibration.expected_tpir
        for sighting in alert.sightings:
            assert sighting.similarity >= alert.threshold
            assert set(sighting.model_scores) == set(LfrConfig().face_models.models), "an alert lacks a model's score"


def test_non_matches_are_deleted_and_only_counted(demo):
    report, _ = demo
    assert sum(c.tracker.tracklets_deleted_no_match for c in report.cameras) > 0, "no passer-by was ever decided"
    for camera in report.cameras:
        held = camera.holdings
        assert (held.embeddings, held.crops, held.faces, held.patches) == (0, 0, 0, 0), (
            f"{camera.camera_id} still holds {held}"
        )
    assert report.faces_seen > 0


def test_nothing_but_enrolments_and_alert_evidence_is_stored(demo, people, face_pipeline):
    """Every face vector on disk is an enrolment photo's or an alert sighting's; none is anyone else's."""
    report, workdir = demo
    truth = CrowdTruth.load(workdir / "crowd" / "ground_truth.json")
    accounted = np.stack(
        [*enrolment_embeddings(truth, face_pipeline), *(s.embedding for a in report.alerts for s in a.sightings)]
    )
    references = np.concatenate(list(people.values()))
    found_accounted = 0
    unaccounted = []
    for path in sorted(p for p in workdir.rglob("*") if p.is_file() and "crowd" not in p.parts):
        for offset, vector in unit_vectors(path.read_bytes()):
            if float(np.max(accounted @ vector)) >= SAME_VECTOR:
                found_accounted += 1
            elif float(np.max(references @ vector)) >= SAME_PERSON:
                unaccounted.append(f"{path.name}@{offset}")
    assert found_accounted > 0, "the scanner found no stored enrolment or sighting; it cannot be trusted"
    assert not unaccounted, f"face vectors stored that are neither enrolments nor alert evidence: {unaccounted}"
    watchlist = {person.id for person in truth.watchlist}
    for alert in report.alerts:
        assert alert.person_id in watchlist and all(s.person_id in watchlist for s in alert.sightings)


def enrolment_embeddings(truth: CrowdTruth, face_pipeline) -> list[np.ndarray]:
    """The vectors the demo enrolled: each enrolment photo's face nearest its centre, as `enrol_watchlist` picks."""
    return [
        face.embedding for person in truth.watchlist for face in central_faces(face_pipeline, person.enrolment_photos)
    ]


def test_no_vector_reaches_the_logs(demo):
    logs = Path("/tmp/ray/session_latest/logs")
    assert logs.is_dir(), "Ray's session logs are missing"
    for path in logs.rglob("*"):
        if path.is_file() and path.suffix in (".log", ".out", ".err"):
            text = path.read_text(errors="replace")
            assert not FLOATS_IN_A_ROW.search(text), f"{path} holds what looks like a printed vector"


def test_the_run_published_its_status_for_the_control_room(demo):
    report, workdir = demo
    status = StatusBoard(Database(workdir / "alerts.sqlite3")).latest("demo")
    assert status is not None, "the demo never published its status"
    assert status.watchlist_version == report.watchlist_version and status.faces_seen > 0
    assert {camera.camera_id for camera in status.cameras} == {summary.camera_id for summary in report.cameras}


def test_the_demo_is_audited_like_any_deployment(demo):
    """Its enrolment goes through the audited watchlist service (an intent, then its outcome, for each change),
    and its run is a deployment's start and stop."""
    report, _ = demo
    with Database(report.alert_db) as database:
        log = AuditLog(database, TEST_SEALER, create=False)
        entries = log.entries()
        anchors = AnchorFile(default_anchor_path(str(report.alert_db)))
        assert log.verify(anchor_file=anchors).ok, "the log and every anchor the run's processes wrote agree"
    kinds = {AuditAction.WATCHLIST_CHANGE, AuditAction.ENROLMENT, AuditAction.DEPLOYMENT_STARTED}
    kinds |= {AuditAction.DEPLOYMENT_STOPPED, AuditAction.CONFIG_CHANGE}
    trail = [(e.action, e.subject, e.details.get("change")) for e in entries if e.action in kinds]
    assert trail == [
        (AuditAction.WATCHLIST_CHANGE, "watchlist:demo_watchlist", "create"),
        (AuditAction.WATCHLIST_CHANGE, "watchlist:demo_watchlist", "created"),
        (AuditAction.ENROLMENT, "watchlist:demo_watchlist", "enrol"),
        (AuditAction.ENROLMENT, "watchlist:demo_watchlist", None),
        (AuditAction.WATCHLIST_CHANGE, "watchlist:demo_watchlist", "freeze"),
        (AuditAction.WATCHLIST_CHANGE, "watchlist:demo_watchlist", "frozen"),
        (AuditAction.CONFIG_CHANGE, "deployment:demo", "deployment_recorded"),
        (AuditAction.DEPLOYMENT_STARTED, "deployment:demo", None),
        (AuditAction.DEPLOYMENT_STOPPED, "deployment:demo", None),
    ]
    started = next(e for e in entries if e.action is AuditAction.DEPLOYMENT_STARTED)
    assert started.details["watchlist_version"] == report.watchlist_version
    assert started.details["threshold"] == report.calibration.threshold
    assert started.details["authorised_by"] and len(started.details["watchlist_digest"]) == 64
    stopped = next(e for e in entries if e.action is AuditAction.DEPLOYMENT_STOPPED)
    assert stopped.details["faces_seen"] == report.faces_seen


DECIDING_OFFICER = "PC 2001 Demo"
SUPERVISOR = "Insp 7 Demo"
REPORT_PICTURE = DOCS / "deployment_report.png"


@pytest.fixture(scope="module")
def demo_report(demo) -> tuple[DeploymentReport, Path]:
    """The demo deployment's report, as `lfr report deployment demo` writes it after officers decided its alerts
    by the crowd's truth (the latest left undecided when there are several), a supervisor held the first and
    retention ran (a fresh deployment's alerts are not yet old enough to go)."""
    report, workdir = demo
    truth = CrowdTruth.load(workdir / "crowd" / "ground_truth.json")
    config = LfrConfig(database=DatabaseConfig(url=str(report.alert_db)))
    store = open_alert_store(config.database, config.audit)
    ordered = sorted(report.alerts, key=lambda alert: alert.created_at)
    for alert in ordered[:-1] if len(ordered) > 1 else ordered:
        store.transition(alert.alert_id, AlertState.ACKNOWLEDGED, DECIDING_OFFICER, "taken on")
        true = score_alerts([alert], truth).true_alerts == 1
        outcome, reason = (AlertState.CONFIRMED, "spoken to: it is him") if true else (AlertState.REJECTED, "not him")
        store.transition(alert.alert_id, outcome, DECIDING_OFFICER, reason)
    if ordered:
        store.hold(ordered[0].alert_id, SUPERVISOR, "kept for the demonstration's case file")
    store.purge()
    out = workdir / "report"
    args = build_parser().parse_args(["report", "deployment", "demo", "--out", str(out), "--officer", SUPERVISOR])
    printed, errors = io.StringIO(), io.StringIO()
    with redirect_stdout(printed), redirect_stderr(errors):
        assert args.handler(args, config) == 0, errors.getvalue()
    return DeploymentReport.model_validate_json((out / "report.json").read_text()), out


def test_the_demo_deployment_report_matches_the_store_figure_by_figure(demo, demo_report):
    report, workdir = demo
    made, out = demo_report
    truth = CrowdTruth.load(workdir / "crowd" / "ground_truth.json")
    store = open_alert_store(DatabaseConfig(url=str(report.alert_db)), LfrConfig().audit)
    alerts = store.list(AlertFilter(deployment_id="demo"), limit=1000).alerts
    stats = store.stats("demo")
    assert len(alerts) == len(report.alerts) >= 1, "the demo must raise an alert for its report to say something"

    assert (made.authorisation.place, made.authorisation.signage_notice) == (PLACE, SIGNAGE)
    assert made.authorisation.authorised_by == OFFICER
    assert set(made.authorisation.cameras) == {summary.camera_id for summary in report.cameras}
    assert (made.watchlist.version, made.watchlist.entries) == (report.watchlist_version, report.enrolled)
    assert made.watchlist.people == len(truth.watchlist)
    assert made.watchlist.categories == {"wanted": len(truth.watchlist)}
    assert made.matching.threshold == report.calibration.threshold
    assert (made.matching.target_fpir, made.matching.expected_tpir) == (
        DemoOptions.target_fpir,
        report.calibration.expected_tpir,
    )

    assert made.faces_seen == report.faces_seen > 0
    searches = sum(summary.tracker.tracklets_searched for summary in report.cameras)
    assert made.watchlist_searches == searches
    assert made.alerts_raised == stats.alerts and made.alerts_purged == 0 and made.retention_runs >= 1
    assert made.outcomes.alerts == stats.alerts
    assert (made.outcomes.confirmed, made.outcomes.rejected) == (stats.confirmed, stats.rejected)
    assert made.outcomes.not_adjudicated == stats.new + stats.acknowledged
    assert len(made.held) == stats.held == 1
    assert made.adjudication_time.decided == stats.confirmed + stats.rejected

    confirmed = sum(len(a.sightings) for a in alerts if a.state is AlertState.CONFIRMED)
    rejected = sum(len(a.sightings) for a in alerts if a.state is AlertState.REJECTED)
    observed = made.false_alert_rate.observed
    assert observed is not None and (observed.count, observed.total) == (rejected, searches - confirmed)
    assert made.false_alert_rate.expected_fpir == DemoOptions.target_fpir

    by_camera = {camera.camera_id: camera for camera in made.cameras}
    for summary in report.cameras:
        camera = by_camera[summary.camera_id]
        assert camera.faces_seen == summary.tracker.faces_seen
        assert camera.watchlist_searches == summary.tracker.tracklets_searched
        assert camera.outcomes.alerts == store.count(AlertFilter(deployment_id="demo", camera_id=summary.camera_id))
        assert camera.sightings == sum(1 for a in alerts for s in a.sightings if s.camera_id == summary.camera_id)

    groups = {b.attribute: {g.group: g for g in b.groups} for b in made.breakdowns}
    male = groups["sex"]["male"]
    assert male.outcomes.alerts == stats.alerts and male.people == len(truth.watchlist)
    assert groups["sex"]["female"].outcomes.alerts == 0
    assert groups["ethnicity"][NOT_RECORDED].outcomes.alerts == stats.alerts
    assert male.outcomes.rejected == stats.rejected

    with Database(report.alert_db) as database:
        entries = AuditLog(database, TEST_SEALER, create=False).entries(limit=100_000)
    making = [e for e in entries if e.action is AuditAction.REQUEST and e.details.get("command") == "report deployment"]
    assert [e.actor for e in making] == [SUPERVISOR]
    assert making[0].details["report_sha256"] == hashlib.sha256((out / "report.json").read_bytes()).hexdigest()


def test_the_report_page_shows_in_chromium_with_nothing_fetched_and_docs_keep_a_picture(demo_report):
    """report.html opens from the file alone: every plot decodes, no request leaves the page. The picture in
    docs/ is this page."""
    sync_api = pytest.importorskip("playwright.sync_api", reason=INSTALL_HINT)
    if chromium_missing():
        pytest.skip(chromium_missing())
    made, out = demo_report
    fetched: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="en-GB", timezone_id="UTC")
            page.on("request", lambda request: fetched.append(request.url))
            page.goto((out / "report.html").as_uri())
            images = page.locator("img")
            assert images.count() >= 3
            for index in range(images.count()):
                assert images.nth(index).evaluate("image => image.complete && image.naturalWidth > 0"), index
            sync_api.expect(page.locator("h1")).to_contain_text(PLACE)
            sync_api.expect(page.locator("#limits")).to_contain_text("cannot show why")
            page.screenshot(path=str(REPORT_PICTURE), full_page=True)
        finally:
            browser.close()
    assert [url for url in fetched if not url.startswith(("file:", "data:"))] == []
    assert REPORT_PICTURE.stat().st_size > 50_000
