""" "Not this person": a rejected alert's person is counted, not alerted, for the rest of the deployment.

Real lfw10 faces pooled as the tracker pools them, a real SQLite records database and the real
Coordinator (`AlertCoordinator`, rebuilt from the database for a restart). The attacks: a
different person who matches the same watchlist entry is still alerted, and a suppression
reaches neither another deployment nor another entry. The rejected face's embedding leaves the
sightings at once, and the suppression's own copy goes when the deployment stops.
"""

import dataclasses
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from cluster.alerts.config import RetentionConfig
from cluster.alerts.model import AlertState, Sighting
from cluster.alerts.retention import RetentionScheduler
from cluster.alerts.store import AlertStore
from cluster.alerts.suppression import Suppression, pooled_embedding
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.database.engine import Database
from cluster.evaluation.suppression_calibration import calibrate_suppression
from cluster.fusion.config import SUPPRESSION_THRESHOLD, FusionConfig
from cluster.fusion.coordination import AlertCoordinator, SaveRetry
from cluster.fusion.dead_letters import DeadLetters
from cluster.fusion.fuser import Fuser
from cluster.fusion.suppression import SuppressionRule
from cluster.fusion.topology import CameraTopology
from cluster.matching.cohort import ImpostorCohort
from cluster.trace_scan import embeddings_like
from cluster.vision.face import EMBEDDING_SIZE
from loadtest.postgres_server import PostgresServer, find_bin_dir, install_hint
from tests.street_sightings import THRESHOLD, sighting, street_cameras

DEPLOYMENT = "west_end"
OFFICER = "PC 123 Example"
NOT_THE_PERSON = "Not the watchlist person"
DAY = 86_400.0


@pytest.fixture(scope="module")
def faces(street_walk_faces):
    return street_walk_faces


@pytest.fixture(scope="module")
def topology() -> CameraTopology:
    return CameraTopology.from_config(street_cameras())


@pytest.fixture(scope="module")
def postgres():
    if find_bin_dir() is None:
        pytest.skip(f"PostgreSQL is not installed: {install_hint()}")
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def records(request, tmp_path) -> str:
    """An empty records database: a SQLite file, or a database on a real PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "alerts.sqlite3")
    return request.getfixturevalue("postgres").empty_database()


def open_store(target, busy_timeout_s: float = 30.0) -> AlertStore:
    database = Database(target, busy_timeout_s=busy_timeout_s)
    return AlertStore(database, AuditLog(database))


def coordinator_over(
    target, topology, spool: Path, deployment_id: str = DEPLOYMENT, busy_timeout_s: float = 30.0
) -> AlertCoordinator:
    """The Coordinator as the actor builds it: a fresh Fuser restored from the store (as after a restart)."""
    fuser = Fuser(topology, FusionConfig(), deployment_id=deployment_id, threshold=THRESHOLD, model="dlib-resnet-v1")
    coordinator = AlertCoordinator(
        fuser,
        open_store(target, busy_timeout_s),
        DeadLetters(spool / f"{deployment_id}.dead-letters"),
        retry=SaveRetry(attempts=2, initial_wait_s=0.01, max_wait_s=0.05),
    )
    coordinator.restore()
    return coordinator


def look_alike(faces, camera_id: str, start: float, photos: tuple[int, ...], person: str = "Tony_Blair") -> Sighting:
    """`person` seen on `camera_id`, matched to Colin Powell's watchlist entry (a false match)."""
    return sighting(faces, person, camera_id, start, photos=photos, matched_as="Colin_Powell")


def reject_first_alert(faces, coordinator: AlertCoordinator, officers: AlertStore):
    raised = coordinator.add([look_alike(faces, "st_1", 0.0, (1, 2, 3))]).raised
    assert len(raised) == 1
    return officers.transition(raised[0].alert_id, AlertState.REJECTED, OFFICER, NOT_THE_PERSON)


def test_the_rejected_person_is_counted_not_alerted_while_others_matching_the_entry_still_are(
    faces, topology, tmp_path
):
    path = tmp_path / "records" / "alerts.sqlite3"
    path.parent.mkdir()
    coordinator = coordinator_over(path, topology, tmp_path)
    officers = open_store(path)
    rejected = reject_first_alert(faces, coordinator, officers)

    again = coordinator.add([look_alike(faces, "st_2", 200.0, (4, 5, 6)), look_alike(faces, "st_3", 430.0, (2, 4, 6))])
    assert again.suppressed == 2 and not again.raised and not again.grown

    wanted = sighting(faces, "Colin_Powell", "st_2", 250.0, photos=(1, 2, 3))
    another_look_alike = look_alike(faces, "st_3", 260.0, (1, 2, 3), person="Jacques_Chirac")
    others = coordinator.add([wanted, another_look_alike])
    assert others.suppressed == 0 and len(others.raised) == 2
    assert {alert.person_id for alert in others.raised} == {"p_Colin_Powell"}

    stats = officers.stats(DEPLOYMENT)
    assert stats.suppressed_repeats == 2 and stats.rejected == 1 and stats.alerts == 3
    assert stats.rejected_by_reason == {NOT_THE_PERSON: 1}
    actions = [entry.action for entry in officers.audit.entries()]
    assert actions.count(AuditAction.SUPPRESSION_CREATED) == 1
    assert actions.count(AuditAction.SIGHTING_SUPPRESSED) == 2
    suppressed = [e for e in officers.audit.entries() if e.action is AuditAction.SIGHTING_SUPPRESSED]
    assert {e.subject for e in suppressed} == {rejected.alert_id}
    assert officers.audit.verify().ok


def test_suppression_survives_a_restart_and_a_resend_is_not_counted_twice(faces, topology, records, tmp_path):
    officers = open_store(records)
    reject_first_alert(faces, coordinator_over(records, topology, tmp_path), officers)
    repeat = look_alike(faces, "st_2", 200.0, (4, 5, 6))
    assert coordinator_over(records, topology, tmp_path).add([repeat]).suppressed == 1

    restarted = coordinator_over(records, topology, tmp_path)
    report = restarted.add([repeat, look_alike(faces, "st_3", 430.0, (3, 5, 6))])
    assert report.suppressed == 1 and report.duplicates == 1 and not report.raised
    assert officers.stats(DEPLOYMENT).suppressed_repeats == 2


def test_a_suppression_leaks_into_no_other_deployment_and_no_other_entry(faces, topology, records, tmp_path):
    officers = open_store(records)
    reject_first_alert(faces, coordinator_over(records, topology, tmp_path), officers)

    elsewhere = coordinator_over(records, topology, tmp_path, deployment_id="east_end")
    report = elsewhere.add([look_alike(faces, "st_2", 200.0, (4, 5, 6))])
    assert report.suppressed == 0 and len(report.raised) == 1

    other_entry = sighting(faces, "Tony_Blair", "st_2", 210.0, photos=(4, 5, 6), matched_as="Jacques_Chirac")
    report = coordinator_over(records, topology, tmp_path).add([other_entry])
    assert report.suppressed == 0 and len(report.raised) == 1
    assert officers.stats("east_end").suppressed_repeats == 0


def test_a_locked_database_delays_the_count_but_lets_no_rejected_person_through(faces, topology, tmp_path):
    """Fault injected on purpose: another connection holds SQLite's write lock while the person walks by again."""
    path = tmp_path / "alerts.sqlite3"
    officers = open_store(path)
    reject_first_alert(faces, coordinator_over(path, topology, tmp_path), officers)
    coordinator = coordinator_over(path, topology, tmp_path, busy_timeout_s=0.05)
    lock = sqlite3.connect(path, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        report = coordinator.add([look_alike(faces, "st_2", 200.0, (4, 5, 6))])
        assert report.suppressed == 1 and not report.raised and not report.dead_lettered
        assert coordinator.counts_waiting == 1 and officers.stats(DEPLOYMENT).suppressed_repeats == 0
    finally:
        lock.close()
    assert coordinator.redeliver() == 0 and coordinator.counts_waiting == 0
    assert officers.stats(DEPLOYMENT).suppressed_repeats == 1


def test_the_rejected_face_leaves_the_sightings_at_once_and_the_suppression_when_the_deployment_stops(
    faces, topology, tmp_path
):
    path = tmp_path / "records" / "alerts.sqlite3"
    path.parent.mkdir()
    coordinator = coordinator_over(path, topology, tmp_path)
    officers = open_store(path)
    track = [look_alike(faces, "st_1", 0.0, (1, 2, 3)), look_alike(faces, "st_2", 200.0, (4, 5, 6))]
    alert = coordinator.add(track).raised[0]
    assert len(alert.sightings) == 2
    raw = [np.asarray(s.embedding, dtype="<f4").tobytes() for s in track]
    on_disk = lambda: [r for r in raw if any(r in p.read_bytes() for p in path.parent.iterdir())]  # noqa: E731
    assert on_disk() == raw

    rejected = officers.transition(alert.alert_id, AlertState.REJECTED, OFFICER, NOT_THE_PERSON)
    assert all(s.embedding is None for s in rejected.sightings)
    assert coordinator.forget_rejected() == 1 and coordinator.forget_rejected() == 0
    assert all(s.embedding is None for s in coordinator.fuser.alert(alert.alert_id).sightings), "kept in memory"
    assert on_disk() == [], "a rejected sighting's embedding is still in the database files"
    pooled = pooled_embedding(track)
    assert pooled is not None
    kept = embeddings_like(path.parent, pooled[None, :], 0.9999)
    assert len(kept) == 1, "the suppression's pooled embedding is the one copy kept"

    ended = officers.suppressions.end_deployment(DEPLOYMENT, "system:live-run")
    assert ended.embeddings_deleted == 1 and ended.erased
    assert embeddings_like(path.parent, np.stack([s.embedding for s in track]), 0.9) == []
    assert officers.suppressions.in_force(DEPLOYMENT, alert.person_id, alert.watchlist_id) == []
    assert officers.audit.entries()[-1].action is AuditAction.SUPPRESSION_ENDED
    assert len(coordinator.add([look_alike(faces, "st_3", 430.0, (2, 4, 6))]).raised) == 1


def test_retention_takes_rejected_crops_after_the_oversight_period_and_stale_suppressions(faces, topology, tmp_path):
    path = tmp_path / "alerts.sqlite3"
    coordinator = coordinator_over(path, topology, tmp_path)
    officers = open_store(path)
    crop = {name: b"\xff\xd8 %s face crop \xff\xd9" % name.encode() for name in ("rejected", "held", "confirmed")}
    rejected = coordinator.add(
        [dataclasses.replace(look_alike(faces, "st_1", 0.0, (1, 2, 3)), crop_jpeg=crop["rejected"])]
    )
    held = coordinator.add(
        [dataclasses.replace(look_alike(faces, "st_1", 5.0, (1, 2), "Jacques_Chirac"), crop_jpeg=crop["held"])]
    )
    confirmed = coordinator.add(
        [dataclasses.replace(sighting(faces, "Colin_Powell", "st_2", 9.0), crop_jpeg=crop["confirmed"])]
    )
    for result in (rejected, held):
        officers.transition(result.raised[0].alert_id, AlertState.REJECTED, OFFICER, NOT_THE_PERSON)
    officers.hold(held.raised[0].alert_id, "DS Patel", "complaint about this false alert")
    officers.transition(confirmed.raised[0].alert_id, AlertState.ACKNOWLEDGED, OFFICER)
    officers.transition(confirmed.raised[0].alert_id, AlertState.CONFIRMED, OFFICER, "spoke to him, ID checked")

    config = RetentionConfig(days=31, oversight_days=7, suppression_hours=12)
    soon = officers.expire_rejections(config.oversight_s, config.suppression_s, now=time.time() + 3600)
    assert (soon.crops, soon.suppression_embeddings) == (0, 0)
    later = time.time() + 8 * DAY
    assert RetentionScheduler(officers, config, clock=lambda: later).run_once().alerts == 0
    entry = officers.audit.entries()[-1]
    assert (entry.action, entry.subject) == (AuditAction.PURGE, "rejections")
    assert (entry.details["crops"], entry.details["suppression_embeddings"]) == (1, 2)
    crops = {a.alert_id: a.sightings[0].crop_jpeg for a in officers.list().alerts}
    assert crops == {
        rejected.raised[0].alert_id: None,
        held.raised[0].alert_id: crop["held"],
        confirmed.raised[0].alert_id: crop["confirmed"],
    }
    assert not any(crop["rejected"] in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_oversight_cannot_outlast_the_alert():
    with pytest.raises(ValueError, match="oversight_days"):
        RetentionConfig(days=7, oversight_days=14)
    assert RetentionConfig(days=7).oversight_s == 7 * DAY


def unit(seed: int, near: np.ndarray | None = None, cosine: float = 1.0) -> np.ndarray:
    """A unit vector; with `near`, one at exactly `cosine` to it."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=EMBEDDING_SIZE)
    if near is None:
        return (v / np.linalg.norm(v)).astype(np.float32)
    v -= (v @ near) * near
    v /= np.linalg.norm(v)
    return (cosine * near + np.sqrt(1 - cosine**2) * v).astype(np.float32)


def suppression_of(embedding: np.ndarray, deployment_id: str = DEPLOYMENT, person_id: str = "p1") -> Suppression:
    return Suppression("rejected-1", deployment_id, person_id, "wl", embedding, 0.0, OFFICER)


def seen(embedding: np.ndarray, person_id: str = "p1") -> Sighting:
    return Sighting("cam:t1", "cam", person_id, "wl", 0.95, 0.0, 1.0, 3, embedding)


def test_the_rule_suppresses_only_faces_as_close_as_the_same_persons_in_its_own_deployment_and_entry():
    rule = SuppressionRule(DEPLOYMENT, SUPPRESSION_THRESHOLD)
    rejected = unit(1)
    suppression = suppression_of(rejected)
    assert rule.match(seen(unit(2, rejected, 0.97)), [suppression]).suppression is suppression
    assert rule.match(seen(unit(3, rejected, SUPPRESSION_THRESHOLD + 1e-3)), [suppression]) is not None
    # A different person matching the same entry: close to the rejected face, but not as close as the same person.
    assert rule.match(seen(unit(4, rejected, SUPPRESSION_THRESHOLD - 5e-3)), [suppression]) is None
    assert rule.match(seen(rejected), [suppression_of(rejected, deployment_id="east_end")]) is None
    assert rule.match(seen(rejected, person_id="p2"), [suppression]) is None
    closer = suppression_of(unit(5, rejected, 0.99))
    assert rule.match(seen(rejected), [suppression, closer]).suppression is suppression


def test_the_default_threshold_is_the_one_the_impostor_cohort_calibrates():
    """Recomputed from cluster/matching/data/cohort.npz: the figures SUPPRESSION_THRESHOLD's docstring cites."""
    cohort = ImpostorCohort.load()
    calibration = calibrate_suppression(cohort.embeddings["dlib_resnet_v1"], cohort.labels)
    assert calibration.threshold == SUPPRESSION_THRESHOLD == FusionConfig().suppression_threshold
    assert (calibration.attack_above, calibration.attack_pairs) == (1, 3032)
    assert (calibration.impostor_above, calibration.impostor_pairs) == (1, 283_340)
    assert calibration.genuine_rate == pytest.approx(0.5, abs=0.01)
