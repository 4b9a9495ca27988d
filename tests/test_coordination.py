"""The Coordinator: fusion plus the durable store, a restart that loses and duplicates nothing, officers' decisions.

Real faces (lfw10 embeddings pooled as the tracker pools them), a real SQLite store, and for
the restart a real Ray actor killed mid-run. A store that is briefly unavailable is a real
SQLite database whose write lock another connection holds for a while (the fault injected on
purpose): every sighting still ends up fused and stored.
"""

import dataclasses
import sqlite3
import stat
import threading
import time

import pytest
import ray

from actors.coordinator import COORDINATOR_NAME, start_coordinator
from cluster.alerts.model import AlertState, Sighting
from cluster.alerts.store import AlertStore
from cluster.audit.config import AuditConfig
from cluster.audit.log import AuditLog
from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database
from cluster.fusion.config import FusionConfig
from cluster.fusion.coordination import AlertCoordinator, CoordinatorSettings, SaveRetry
from cluster.fusion.dead_letters import DeadLetters
from cluster.fusion.topology import CameraTopology
from tests.street_sightings import T0, THRESHOLD, make_fuser, sighting, street_cameras
from tests.waiting import scaled, wait_for

MODEL = "dlib-resnet-v1"


@pytest.fixture(scope="module")
def faces(street_walk_faces):
    return street_walk_faces


@pytest.fixture(scope="module")
def topology() -> CameraTopology:
    return CameraTopology.from_config(street_cameras())


class SetClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


LOCK_WAIT_S = 0.05
"""How long a write waits for the SQLite lock in the fault tests, so that a held lock fails it quickly."""
QUICK_RETRY = SaveRetry(attempts=3, initial_wait_s=0.01, max_wait_s=0.05)


def open_store(path, busy_timeout_s: float = 30.0) -> AlertStore:
    database = Database(path, busy_timeout_s=busy_timeout_s)
    return AlertStore(database, AuditLog(database))


def coordinator_over(path, topology, now: float = T0 + 500, **store) -> AlertCoordinator:
    coordinator = AlertCoordinator(
        make_fuser(topology),
        open_store(path, **store),
        DeadLetters(path.with_name(path.name + ".dead-letters")),
        clock=SetClock(now),
        retry=QUICK_RETRY,
    )
    coordinator.redeliver()
    coordinator.restore()
    return coordinator


class WriteLock:
    """Another process's connection holding the SQLite write lock, as a long write or a backup would."""

    def __init__(self, path) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self._connection.execute("ROLLBACK")
        self._connection.close()


def walk(faces) -> list[Sighting]:
    """Colin Powell crosses st_1 -> st_2 -> st_3 at walking pace; Jacques Chirac is seen once on st_1."""
    return [
        sighting(faces, "Colin_Powell", "st_1", 0.0, photos=(1, 2, 3)),
        sighting(faces, "Jacques_Chirac", "st_1", 5.0),
        sighting(faces, "Colin_Powell", "st_2", 200.0, photos=(4, 5, 6)),
        sighting(faces, "Colin_Powell", "st_3", 430.0, photos=(2, 4, 6)),
    ]


def test_sightings_become_stored_fused_alerts(faces, topology, tmp_path):
    coordinator = coordinator_over(tmp_path / "alerts.sqlite3", topology)
    sightings = walk(faces)
    first = coordinator.add(sightings[:2])
    later = coordinator.add(sightings[2:])
    assert len(first.raised) == 2 and not first.grown
    assert not later.raised and len(later.grown) == 1
    stored = open_store(tmp_path / "alerts.sqlite3").list().alerts
    by_person = {alert.person_id: alert for alert in stored}
    assert set(by_person) == {"p_Colin_Powell", "p_Jacques_Chirac"}
    assert by_person["p_Colin_Powell"].cameras == ("st_1", "st_2", "st_3")
    assert by_person["p_Colin_Powell"].confidence > by_person["p_Jacques_Chirac"].confidence
    assert all(alert.threshold == THRESHOLD and alert.model == MODEL for alert in stored)


def test_a_restarted_coordinator_neither_loses_nor_duplicates(faces, topology, tmp_path):
    path = tmp_path / "alerts.sqlite3"
    sightings = walk(faces)
    coordinator_over(path, topology).add(sightings[:3])
    restarted = coordinator_over(path, topology)
    report = restarted.add(sightings)
    assert report.duplicates == 3 and not report.raised and len(report.grown) == 1
    stored = open_store(path).list().alerts
    assert len(stored) == 2 and sum(len(alert.sightings) for alert in stored) == 4


def test_an_alert_an_officer_decided_takes_no_more_evidence(faces, topology, tmp_path):
    path = tmp_path / "alerts.sqlite3"
    coordinator = coordinator_over(path, topology)
    sightings = walk(faces)
    alert = coordinator.add(sightings[:1]).raised[0]
    officers = open_store(path)
    officers.transition(alert.alert_id, AlertState.ACKNOWLEDGED, "PC 123 Example")
    officers.transition(alert.alert_id, AlertState.CONFIRMED, "PC 123 Example", "spoke to him, ID checked")
    report = coordinator.add(sightings[2:3])
    assert len(report.raised) == 1 and report.raised[0].alert_id != alert.alert_id
    assert [s.sighting_id for s in officers.get(alert.alert_id).sightings] == [sightings[0].sighting_id]


def now_based(sightings: list[Sighting], now: float) -> list[Sighting]:
    """The same sightings moved to the present, so a restarted Coordinator finds their alerts in its window."""
    shift = now - T0 - 500.0
    return [dataclasses.replace(s, first_seen=s.first_seen + shift, last_seen=s.last_seen + shift) for s in sightings]


@pytest.mark.slow
def test_killed_coordinator_restarts_and_loses_or_duplicates_nothing(ray_session, faces, topology, tmp_path):
    path = tmp_path / "alerts.sqlite3"
    settings = CoordinatorSettings(
        deployment_id="west_end",
        threshold=THRESHOLD,
        model=MODEL,
        cameras=tuple(street_cameras()),
        fusion=FusionConfig(),
        database=DatabaseConfig(url=str(path)),
        audit=AuditConfig(),
    )
    sightings = now_based(walk(faces), time.time())
    coordinator = start_coordinator(settings)
    ray.get(coordinator.add_sightings.remote(sightings[:2]), timeout=30)
    ray.kill(coordinator, no_restart=False)
    in_flight = [coordinator.add_sightings.remote(sightings[1:3]), coordinator.add_sightings.remote(sightings[3:])]
    reports = ray.get(in_flight, timeout=60)
    assert ray.get_actor(COORDINATOR_NAME) is not None
    # sightings[1] is always a resend; sightings[2] is one too if its call ran before the kill and Ray retried it
    assert sum(r.duplicates for r in reports) in (1, 2) and not any(r.raised for r in reports)
    stored = open_store(path).list().alerts
    assert sorted(len(alert.sightings) for alert in stored) == [1, 3]
    assert {alert.person_id for alert in stored} == {"p_Colin_Powell", "p_Jacques_Chirac"}


def stored_sightings(path) -> dict[str, list[str]]:
    return {alert.person_id: sorted(s.sighting_id for s in alert.sightings) for alert in open_store(path).list().alerts}


def test_sightings_outlast_a_locked_database_and_are_all_fused(faces, topology, tmp_path):
    path = tmp_path / "alerts.sqlite3"
    coordinator = coordinator_over(path, topology, busy_timeout_s=LOCK_WAIT_S)
    sightings = walk(faces)
    lock = WriteLock(path)
    first = coordinator.add(sightings[:2])
    started = time.monotonic()
    later = coordinator.add(sightings[2:])
    quick_s = time.monotonic() - started
    assert (first.dead_lettered, first.waiting, first.raised) == (2, 2, ())
    assert (later.dead_lettered, later.waiting, later.grown) == (2, 2, ())
    # While the store refuses the waiting letters, new ones are kept at once rather than each waiting out retries.
    assert quick_s < scaled(2.0)
    spool = coordinator.dead_letters.folder
    files = sorted(spool.iterdir())
    assert len(files) == 2 and stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT count(*) FROM sightings").fetchone() == (0,)
    lock.release()
    wait_for(lambda: coordinator.redeliver() == 0, 10.0, "the dead letters reaching the store")
    expected = {
        "p_Colin_Powell": sorted(s.sighting_id for s in sightings if s.person_id == "p_Colin_Powell"),
        "p_Jacques_Chirac": [sightings[1].sighting_id],
    }
    assert stored_sightings(path) == expected
    assert not list(spool.iterdir())
    report = coordinator.add(sightings)
    assert report.duplicates == 4 and not report.raised and not report.grown


def test_a_store_that_comes_back_within_the_retries_takes_the_sighting_at_once(faces, topology, tmp_path):
    path = tmp_path / "alerts.sqlite3"
    coordinator = AlertCoordinator(
        make_fuser(topology),
        open_store(path, busy_timeout_s=LOCK_WAIT_S),
        DeadLetters(tmp_path / "spool"),
        clock=SetClock(T0 + 500),
        retry=SaveRetry(attempts=20, initial_wait_s=0.05, max_wait_s=0.2),
    )
    lock = WriteLock(path)
    releasing = threading.Timer(0.3, lock.release)
    releasing.start()
    report = coordinator.add(walk(faces)[:1])
    releasing.join()
    assert len(report.raised) == 1 and report.dead_lettered == 0
    assert not (tmp_path / "spool").exists()


def test_dead_letters_left_by_a_crashed_coordinator_are_fused_by_the_next(faces, topology, tmp_path):
    path = tmp_path / "alerts.sqlite3"
    sightings = walk(faces)
    coordinator_over(path, topology).add(sightings[:1])
    crashed = coordinator_over(path, topology, busy_timeout_s=LOCK_WAIT_S)
    lock = WriteLock(path)
    assert crashed.add(sightings[1:3]).dead_lettered == 2
    del crashed
    lock.release()
    restarted = coordinator_over(path, topology)
    assert len(restarted.dead_letters) == 0
    assert stored_sightings(path) == {
        "p_Colin_Powell": sorted([sightings[0].sighting_id, sightings[2].sighting_id]),
        "p_Jacques_Chirac": [sightings[1].sighting_id],
    }
    report = restarted.add(sightings)
    assert report.duplicates == 3 and len(report.grown) == 1 and not report.raised


@pytest.mark.slow
def test_the_coordinator_actor_redelivers_dead_letters_with_no_further_sighting(ray_session, faces, tmp_path):
    """Matches are rare: dead letters must reach the store once it is back, without waiting for the next sighting."""
    path = tmp_path / "alerts.sqlite3"
    settings = CoordinatorSettings(
        deployment_id="west_end",
        threshold=THRESHOLD,
        model=MODEL,
        cameras=tuple(street_cameras()),
        fusion=FusionConfig(),
        database=DatabaseConfig(url=str(path), busy_timeout_s=LOCK_WAIT_S),
        audit=AuditConfig(),
    )
    sightings = now_based(walk(faces), time.time())
    coordinator = start_coordinator(settings, namespace="dead_letter_test")
    try:
        lock = WriteLock(path)
        report = ray.get(coordinator.add_sightings.remote(sightings[:2]), timeout=60)
        assert (report.dead_lettered, report.waiting) == (2, 2)
        lock.release()
        wait_for(lambda: len(stored_sightings(path)) == 2, 30.0, "the actor redelivering its dead letters")
        assert ray.get(coordinator.redeliver.remote(), timeout=30) == 0
    finally:
        ray.kill(coordinator)
