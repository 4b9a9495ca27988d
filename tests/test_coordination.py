"""The Coordinator: fusion plus the durable store, a restart that loses and duplicates nothing, officers' decisions.

Real faces (lfw10 embeddings pooled as the tracker pools them), a real SQLite store, and for
the restart a real Ray actor killed mid-run.
"""

import dataclasses
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
from cluster.fusion.coordination import AlertCoordinator, CoordinatorSettings
from cluster.fusion.topology import CameraTopology
from tests.street_sightings import T0, THRESHOLD, make_fuser, sighting, street_cameras

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


def open_store(path) -> AlertStore:
    database = Database(path)
    return AlertStore(database, AuditLog(database))


def coordinator_over(path, topology, now: float = T0 + 500) -> AlertCoordinator:
    coordinator = AlertCoordinator(make_fuser(topology), open_store(path), clock=SetClock(now))
    coordinator.restore()
    return coordinator


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
    officers.transition(alert.alert_id, AlertState.REJECTED, "PC 123 Example", "not the person on the watchlist")
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
