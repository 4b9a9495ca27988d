"""Audit entries about alerts outlive the alerts: they must not keep who was seen, where, or why.

An alert is raised on a camera, grows, is decided with reasons, held and released, then purged
after its retention, on a real SQLite file and a real PostgreSQL server. Afterwards no audit row
(searched as raw text) holds the person id, the camera id or any reason; for SQLite, neither does
any byte of the database files. With the key, an investigator can still tell which entries are
about a given person.
"""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from cluster.alerts.model import AlertState
from cluster.alerts.store import AlertStore
from cluster.alerts.tables import adjudications, alerts
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.audit.sealing import Sealer
from cluster.audit.tables import audit_log
from cluster.database.engine import Database
from loadtest.postgres_server import PostgresServer, find_bin_dir, install_hint
from tests.audit_key import TEST_SEALER
from tests.test_alert_store import BACKENDS, DAY, T0, SetClock, make_alert, make_sighting, open_database

PERSON = "Person_Zed_4471"
CAMERAS = ("kings_cross_cam_9", "euston_road_cam_4")
DECISION_REASON = "checked against custody photo, sent PC Jones to Euston Road"
FINAL_REASON = "stopped and spoken to: not the wanted man"
HOLD_REASON = "Operation Bluebird 2291"
RELEASE_REASON = "Bluebird closed with no further need"
SECRETS = (PERSON, *CAMERAS, DECISION_REASON, FINAL_REASON, HOLD_REASON, RELEASE_REASON)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if find_bin_dir() is None:
        pytest.skip(f"PostgreSQL is not installed: {install_hint()}")
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path) -> Iterator[Database]:
    with open_database(request.param, tmp_path, lambda: request.getfixturevalue("postgres")) as db:
        yield db


def audit_text(database: Database) -> str:
    """Every audit row, every column, as one text: what a reader of the log's table sees."""
    with database.engine.connect() as connection:
        rows = connection.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()
    return "\n".join(" ".join(str(value) for value in row) for row in rows)


def raise_decide_hold_release(store: AlertStore, clock: SetClock) -> None:
    first = make_sighting(f"{CAMERAS[0]}:17", camera_id=CAMERAS[0], person_id=PERSON)
    alert = make_alert(sightings=(first,), person_id=PERSON)
    store.save(alert)
    second = make_sighting(f"{CAMERAS[1]}:4", camera_id=CAMERAS[1], person_id=PERSON, first_seen=T0 + 120)
    store.save(replace(alert, sightings=(first, second), confidence=0.97, updated_at=T0 + 125))
    store.transition(alert.alert_id, AlertState.ACKNOWLEDGED, "PC 1234 Khan", DECISION_REASON, at=T0 + 200)
    store.hold(alert.alert_id, "DS Patel", HOLD_REASON, at=T0 + 300)
    store.transition(alert.alert_id, AlertState.REJECTED, "PC 1234 Khan", FINAL_REASON, at=T0 + 400)
    store.release(alert.alert_id, "DS Patel", RELEASE_REASON, at=T0 + 500)


def test_purged_alerts_leave_no_person_camera_or_reason_in_the_audit_log(database):
    clock = SetClock(T0 + 60)
    store = AlertStore(database, AuditLog(database, TEST_SEALER, clock=clock), clock=clock)
    raise_decide_hold_release(store, clock)

    with database.engine.connect() as connection:
        kept = " ".join(str(r) for r in connection.execute(sa.select(adjudications.c.reason)).scalars())
        assert DECISION_REASON in kept and FINAL_REASON in kept, "the reasons are kept with the alert"
        assert connection.execute(sa.select(alerts.c.person_id)).scalar_one() == PERSON

    result = store.purge(now=T0 + 40 * DAY)
    assert result.alerts == 1
    text = audit_text(database)
    assert [secret for secret in SECRETS if secret in text] == []
    if database.backend == "sqlite":
        main = Path(database.url.database or "")
        raw = b"".join(path.read_bytes() for path in (main, Path(f"{main}-wal")) if path.is_file())
        assert [secret for secret in SECRETS if secret.encode() in raw] == []

    entries = store.audit.entries()
    raised = next(e for e in entries if e.action == AuditAction.ALERT_RAISED)
    assert raised.details["person_pseudonym"] == TEST_SEALER.person_pseudonym(PERSON)
    assert raised.details["person_pseudonym"] != Sealer(b"k" * 32).person_pseudonym(PERSON)
    assert (raised.details["cameras"], raised.details["sightings"]) == (1, 1)
    about_person = [
        e.subject for e in entries if e.details.get("person_pseudonym") == TEST_SEALER.person_pseudonym(PERSON)
    ]
    assert set(about_person) == {"alert-1"}, "with the key, an investigator finds the person's alerts by pseudonym"
    decision = next(e for e in entries if e.action == AuditAction.ADJUDICATION)
    assert decision.details["reason_digest"] == TEST_SEALER.reason_digest(DECISION_REASON)
    assert store.audit.verify().ok
