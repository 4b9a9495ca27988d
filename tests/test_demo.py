"""`lfr demo` end to end (real Ray, Serve, embedded Milvus, SQLite), and the privacy promise checked on disk.

One run of a short synthetic crowd: the watchlist people who walk by are alerted, nobody else
is, each person's cameras fuse into one alert, and afterwards nothing of anyone who matched
nobody is held in memory or stored: the scanner looks for their face embeddings in every byte
the run wrote (alert store, watchlist catalogue, Milvus data) and for vectors in Ray's logs.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from cluster.audit.actions import AuditAction
from cluster.audit.anchors import AnchorFile
from cluster.audit.config import default_anchor_path
from cluster.audit.log import AuditLog
from cluster.config import LfrConfig
from cluster.crowd.truth import CrowdTruth
from cluster.database.engine import Database
from cluster.demo.scenario import DemoOptions, DemoReport, central_faces, run_demo
from cluster.live.status_board import StatusBoard
from cluster.trace_scan import unit_vectors
from tests.audit_key import TEST_SEALER

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
