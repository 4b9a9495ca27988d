"""The alert store on real SQLite files and a real throwaway PostgreSQL server: one suite, both backends.

Crops are real JPEG files of real faces (lfw10); times come from a clock the test sets, so
retention can be tested 40 days from now without waiting.
"""

import threading
import time
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from cluster.alerts.config import RetentionConfig
from cluster.alerts.errors import (
    AlertClosedError,
    AlertConflictError,
    AlertNotFoundError,
    HoldError,
    IllegalTransitionError,
)
from cluster.alerts.evidence_times import sightings_stored_at
from cluster.alerts.model import Alert, AlertState, Sighting
from cluster.alerts.query import AlertFilter
from cluster.alerts.retention import RetentionScheduler
from cluster.alerts.store import AlertStore
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.database.engine import Database
from loadtest.postgres_server import PostgresServer, find_bin_dir, install_hint
from tests.paths import LFW10
from tests.waiting import wait_for

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]
DAY = 86_400.0
T0 = 1_749_902_400.123456  # 2025-06-14 12:00:00.123456 UTC: not a round number, so float round trips show
CROPS = [path.read_bytes() for path in sorted(LFW10.glob("*/*_0001.jpg"))]
WAIT_S = 10.0


class SetClock:
    """A clock that says what the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def open_database(backend: str, folder: Path, postgres_server, *, shared: bool = False) -> Database:
    """A new, empty database; on PostgreSQL, `shared` ones outlive the next test's emptying."""
    if backend == "sqlite":
        return Database(folder / "alerts.sqlite3")
    server = postgres_server()
    return Database(server.create_database() if shared else server.empty_database())


@pytest.fixture(scope="module")
def postgres():
    if find_bin_dir() is None:
        pytest.skip(f"PostgreSQL is not installed: {install_hint()}")
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path):
    with open_database(request.param, tmp_path, lambda: request.getfixturevalue("postgres")) as db:
        yield db


@pytest.fixture
def clock():
    return SetClock(T0 + 60)


@pytest.fixture
def store(database, clock):
    return AlertStore(database, AuditLog(database, clock=clock), clock=clock)


def unit_vector(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return vector / np.linalg.norm(vector)


def make_sighting(
    sighting_id: str = "oxford_st_2:17",
    camera_id: str = "oxford_st_2",
    person_id: str = "person-1",
    first_seen: float = T0,
    frames: int = 12,
    crop: bytes | None = CROPS[0],
    box: tuple[float, ...] | None = (101.5, 40.25, 171.0, 128.75),
) -> Sighting:
    return Sighting(
        sighting_id=sighting_id,
        camera_id=camera_id,
        person_id=person_id,
        watchlist_id="west_end_wanted",
        similarity=0.9412345678,
        first_seen=first_seen,
        last_seen=first_seen + 2.345678,
        frames=frames,
        embedding=unit_vector(zlib.crc32(sighting_id.encode())),
        crop_jpeg=crop,
        box=None if box is None else np.array(box),
    )


def make_alert(
    alert_id: str = "alert-1",
    sightings: tuple[Sighting, ...] | None = None,
    deployment_id: str = "west_end",
    person_id: str = "person-1",
    created_at: float = T0 + 3,
    confidence: float = 0.87654321,
) -> Alert:
    return Alert(
        alert_id=alert_id,
        deployment_id=deployment_id,
        person_id=person_id,
        watchlist_id="west_end_wanted",
        state=AlertState.NEW,
        sightings=sightings or (make_sighting(f"oxford_st_2:{alert_id}", person_id=person_id),),
        confidence=confidence,
        created_at=created_at,
        updated_at=created_at,
        threshold=0.92,
        model="dlib_resnet_v1",
    )


def assert_same_sightings(
    actual: tuple[Sighting, ...], expected: tuple[Sighting, ...], embeddings_deleted: bool = False
) -> None:
    """The stored sightings are the saved ones; a rejected alert's have lost their embeddings ("not this person")."""
    by_id = {s.sighting_id: s for s in actual}
    assert sorted(by_id) == sorted(s.sighting_id for s in expected)
    for want in expected:
        got = by_id[want.sighting_id]
        for name in ("camera_id", "person_id", "watchlist_id", "similarity", "first_seen", "last_seen", "frames"):
            assert getattr(got, name) == getattr(want, name), name
        if embeddings_deleted:
            assert got.embedding is None
        else:
            assert got.embedding.dtype == np.float32 and np.array_equal(got.embedding, want.embedding)
        assert got.crop_jpeg == want.crop_jpeg
        assert (got.box is None) == (want.box is None)
        if want.box is not None:
            assert np.array_equal(got.box, want.box)


def actions(store: AlertStore) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action.value, e.subject) for e in store.audit.entries()]


# --- save: round trip and idempotence ---------------------------------------------------------


def test_saved_alert_reads_back_exactly(store):
    alert = make_alert(
        sightings=(
            make_sighting("oxford_st_2:17", first_seen=T0),
            make_sighting("oxford_st_3:4", camera_id="oxford_st_3", first_seen=T0 + 95.5, crop=CROPS[1], box=None),
            make_sighting("oxford_circus:9", camera_id="oxford_circus", first_seen=T0 + 300, crop=None),
        )
    )
    stored = store.save(alert)
    again = store.get(alert.alert_id)
    for got in (stored, again):
        for name in ("alert_id", "deployment_id", "person_id", "watchlist_id", "state", "confidence"):
            assert getattr(got, name) == getattr(alert, name), name
        assert (got.created_at, got.updated_at, got.threshold, got.model) == (T0 + 3, T0 + 3, 0.92, "dlib_resnet_v1")
        assert got.adjudications == () and got.held is False
        assert_same_sightings(got.sightings, alert.sightings)
        assert got.cameras == ("oxford_st_2", "oxford_st_3", "oxford_circus")


def test_resending_the_same_alert_changes_nothing(store, database, clock):
    """The Coordinator resends after a restart: no duplicate alert, sighting or audit entry."""
    alert = make_alert()
    store.save(alert)
    store.save(alert)
    restarted = AlertStore(database, AuditLog(database, clock=clock), clock=clock)
    restarted.save(replace(alert, updated_at=alert.updated_at + 30))
    assert store.count() == 1
    assert len(store.get(alert.alert_id).sightings) == 1
    assert actions(store) == [("system:coordinator", "alert_raised", alert.alert_id)]


def test_new_and_grown_sightings_update_the_alert(store):
    first = make_sighting("oxford_st_2:17")
    store.save(make_alert(sightings=(first,)))
    grown = replace(first, last_seen=first.last_seen + 4.0, frames=30, crop_jpeg=CROPS[2])
    second = make_sighting("oxford_st_3:4", camera_id="oxford_st_3", first_seen=T0 + 120)
    updated = store.save(replace(make_alert(sightings=(grown, second), confidence=0.97), updated_at=T0 + 125))
    assert updated.confidence == 0.97 and updated.updated_at == T0 + 125
    assert_same_sightings(updated.sightings, (grown, second))
    entry = store.audit.entries()[-1]
    assert entry.action == AuditAction.ALERT_UPDATED
    assert (entry.details["added_sightings"], entry.details["updated_sightings"]) == (1, 1)
    assert "oxford_st_3" not in str(entry.details), "a sighting id names its camera; the log outlives the alert"


def test_the_audit_log_tells_when_each_sighting_reached_its_alert(store, clock):
    """Capture times do not give the order the Coordinator learnt the evidence in; the store's entries do."""
    late_capture = make_sighting("oxford_st_2:17")
    early_capture = make_sighting("oxford_st_3:4", camera_id="oxford_st_3", first_seen=T0 - 60)
    raised_at = clock()
    store.save(make_alert(sightings=(late_capture,)))
    clock.now += 40.0
    store.save(make_alert(sightings=(late_capture, early_capture)))
    store.save(make_alert(sightings=(late_capture, early_capture)))
    stored = sightings_stored_at(store.audit, ["oxford_st_2:17", "oxford_st_3:4", "oxford_st_9:1"])
    assert stored == {"oxford_st_2:17": raised_at, "oxford_st_3:4": raised_at + 40.0}


def test_a_resend_keeps_sightings_it_leaves_out(store):
    one, two = make_sighting("oxford_st_2:1"), make_sighting("oxford_st_3:2", camera_id="oxford_st_3")
    store.save(make_alert(sightings=(one, two)))
    store.save(make_alert(sightings=(one,)))
    assert {s.sighting_id for s in store.get("alert-1").sightings} == {"oxford_st_2:1", "oxford_st_3:2"}


def test_a_resend_never_undoes_an_officers_decision(store):
    alert = make_alert()
    store.save(alert)
    store.transition(alert.alert_id, AlertState.ACKNOWLEDGED, "PC 1234 Khan")
    store.hold(alert.alert_id, "DS Patel", "operation Bramble")
    extra = make_sighting("oxford_circus:3", camera_id="oxford_circus", first_seen=T0 + 200)
    resent = store.save(make_alert(sightings=(*alert.sightings, extra)))
    assert resent.state == AlertState.ACKNOWLEDGED and resent.held
    assert len(resent.adjudications) == 1 and len(resent.sightings) == 2


def test_new_evidence_for_a_decided_alert_is_refused(store):
    alert = make_alert()
    store.save(alert)
    store.transition(alert.alert_id, "rejected", "PC 1234 Khan", "different person: no scar")
    store.save(alert)
    extra = make_sighting("oxford_circus:3", camera_id="oxford_circus")
    with pytest.raises(AlertClosedError, match="already rejected.*raise a new alert"):
        store.save(make_alert(sightings=(*alert.sightings, extra)))
    assert len(store.get(alert.alert_id).sightings) == 1


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda a: replace(a, state=AlertState.ACKNOWLEDGED), ValueError, "must be saved in state new"),
        (lambda a: replace(a, held=True), ValueError, "no hold"),
        (lambda a: replace(a, sightings=()), ValueError, "has no sightings"),
        (lambda a: replace(a, sightings=(a.sightings[0], a.sightings[0])), ValueError, "more than once"),
        (lambda a: replace(a, confidence=float("nan")), ValueError, "confidence must be a finite number"),
    ],
    ids=["not-new", "held", "no-sightings", "duplicate-sighting", "nan-confidence"],
)
def test_an_alert_that_cannot_be_new_is_refused(store, change, error, match):
    with pytest.raises(error, match=match):
        store.save(change(make_alert()))
    assert store.count() == 0 and store.audit.entries() == []


def test_ids_that_clash_with_stored_alerts_are_refused(store):
    alert = make_alert()
    store.save(alert)
    with pytest.raises(AlertConflictError, match="person_id 'person-1', not 'person-2'"):
        store.save(replace(alert, person_id="person-2"))
    with pytest.raises(AlertConflictError, match="already belongs to alert alert-1"):
        store.save(make_alert("alert-2", sightings=alert.sightings))
    assert store.count() == 1


def test_unknown_alert_is_a_clear_error(store):
    with pytest.raises(AlertNotFoundError, match="no alert 'nope'"):
        store.get("nope")
    with pytest.raises(AlertNotFoundError):
        store.transition("nope", "acknowledged", "PC 1234 Khan")


# --- lifecycle ----------------------------------------------------------------------------------

SEEN = ("acknowledged", "")
LIFECYCLE = [
    # steps (state, reason) from new; the error the last step raises, or None
    pytest.param([SEEN], None, None, id="new-acknowledged"),
    pytest.param([("rejected", "not him: no tattoo")], None, None, id="new-rejected"),
    pytest.param([SEEN, ("confirmed", "PNC check on street")], None, None, id="acknowledged-confirmed"),
    pytest.param([SEEN, ("rejected", "spoke to him: not him")], None, None, id="acknowledged-rejected"),
    pytest.param([("confirmed", "looks like him")], IllegalTransitionError, "take it on", id="new-confirmed"),
    pytest.param([SEEN, SEEN], IllegalTransitionError, "already acknowledged", id="acknowledged-twice"),
    pytest.param([("new", "")], IllegalTransitionError, "already new", id="new-new"),
    pytest.param([SEEN, ("new", "")], IllegalTransitionError, "from acknowledged to new", id="back-to-new"),
    pytest.param([("rejected", "no"), SEEN], IllegalTransitionError, "final", id="rejected-final"),
    pytest.param(
        [SEEN, ("confirmed", "yes"), ("rejected", "oops")], IllegalTransitionError, "final", id="confirmed-final"
    ),
    pytest.param([SEEN, ("confirmed", "")], ValueError, "needs a reason", id="confirm-without-reason"),
    pytest.param([("rejected", "  ")], ValueError, "needs a reason", id="reject-without-reason"),
    pytest.param([("escalated", "")], ValueError, "unknown alert state 'escalated'", id="unknown-state"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("steps", "error", "match"), LIFECYCLE)
def test_lifecycle(request, tmp_path, backend, steps, error, match):
    clock = SetClock(T0 + 60)
    with open_database(backend, tmp_path, lambda: request.getfixturevalue("postgres")) as database:
        store = AlertStore(database, AuditLog(database, clock=clock), clock=clock)
        store.save(make_alert())
        *allowed, (last_state, last_reason) = steps
        for index, (state, reason) in enumerate(allowed):
            store.transition("alert-1", state, f"officer-{index}", reason, at=T0 + 100 + index)
        before = store.get("alert-1")
        entries_before = len(store.audit.entries())
        if error is None:
            after = store.transition("alert-1", last_state, "PC 1234 Khan", last_reason, at=T0 + 200)
            assert after.state == AlertState(last_state) and after.updated_at == T0 + 200
            assert [(a.state.value, a.reason) for a in after.adjudications] == steps
            assert after.adjudications[-1].officer == "PC 1234 Khan" and after.adjudications[-1].at == T0 + 200
            *_, entry, last = store.audit.entries()
            if last_state == "rejected":
                suppression = ("PC 1234 Khan", AuditAction.SUPPRESSION_CREATED, "alert-1")
                assert (last.actor, last.action, last.subject) == suppression
            else:
                entry = last
            assert (entry.actor, entry.action, entry.subject) == ("PC 1234 Khan", AuditAction.ADJUDICATION, "alert-1")
            assert entry.details["to"] == last_state
            assert entry.details["reason_digest"] == store.audit.sealer.reason_digest(last_reason)
            return
        with pytest.raises(error, match=match):
            store.transition("alert-1", last_state, "PC 1234 Khan", last_reason, at=T0 + 200)
        after = store.get("alert-1")
        assert (after.state, len(after.adjudications)) == (before.state, len(before.adjudications))
        assert len(store.audit.entries()) == entries_before


def test_only_a_named_person_decides(store):
    store.save(make_alert())
    with pytest.raises(ValueError, match="name the officer"):
        store.transition("alert-1", "acknowledged", " ")
    with pytest.raises(ValueError, match="the system never decides an alert"):
        store.transition("alert-1", "rejected", "system:coordinator", "low similarity")
    assert store.get("alert-1").state == AlertState.NEW


def test_concurrent_officers_cannot_both_decide(store, database):
    """Six officers in separate connections (as in separate API processes) acknowledge at once: exactly one wins."""
    store.save(make_alert())
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def officer(number: int) -> None:
        own_database = Database(database.url.render_as_string(hide_password=False))
        try:
            own_store = AlertStore(own_database, AuditLog(own_database))
            start.wait(WAIT_S)
            own_store.transition("alert-1", "acknowledged", f"PC {number}")
            outcomes.append("ok")
        except IllegalTransitionError:
            outcomes.append("refused")
        finally:
            own_database.close()

    threads = [threading.Thread(target=officer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S * 3)
    assert sorted(outcomes) == ["ok"] + ["refused"] * 5
    assert len(store.get("alert-1").adjudications) == 1
    assert store.audit.verify().ok


# --- holds and retention -------------------------------------------------------------------------


def test_hold_and_release(store):
    store.save(make_alert())
    held = store.hold("alert-1", "DS Patel", "operation Bramble")
    assert held.held
    with pytest.raises(HoldError, match="already held by DS Patel \\(operation Bramble\\)"):
        store.hold("alert-1", "DS Jones", "another case")
    assert not store.release("alert-1", "DS Patel", "case closed").held
    with pytest.raises(HoldError, match="not held"):
        store.release("alert-1", "DS Patel", "case closed")
    with pytest.raises(ValueError, match="reason must not be empty"):
        store.hold("alert-1", "DS Patel", "")
    assert [a for _, a, _ in actions(store)] == ["alert_raised", "alert_held", "alert_released"]
    assert store.audit.entries()[1].actor == "DS Patel"


def test_purge_deletes_expired_alerts_but_not_held_ones(store):
    old, kept, recent = (
        make_alert("old", created_at=T0 - 40 * DAY),
        make_alert("held", created_at=T0 - 40 * DAY),
        make_alert("recent", created_at=T0 - 30 * DAY),
    )
    old = replace(old, sightings=(*old.sightings, make_sighting("oxford_st_3:old", crop=None)))
    for alert in (old, kept, recent):
        store.save(alert)
    store.transition("old", "rejected", "PC 1234 Khan", "not him")
    store.hold("held", "DS Patel", "operation Bramble")

    result = store.purge(now=T0)
    assert (result.alerts, result.sightings, result.crops, result.adjudications, result.held_kept) == (1, 2, 1, 1, 1)
    assert result.cutoff == T0 - 31 * DAY
    assert sorted(a.alert_id for a in store.list().alerts) == ["held", "recent"]
    entry = store.audit.entries()[-1]
    assert (entry.actor, entry.action, entry.subject) == ("system:retention", AuditAction.PURGE, "alerts")
    assert entry.details["alert_ids"] == ["old"] and entry.details["held_kept"] == 1

    store.release("held", "DS Patel", "case closed")
    assert store.purge(now=T0).alerts == 1
    assert [a.alert_id for a in store.list().alerts] == ["recent"]
    assert store.audit.verify().ok


def test_a_backlog_is_purged_in_batches(store, monkeypatch):
    """Each batch is one transaction with its own audit entry, so a backlog never holds the write lock long."""
    monkeypatch.setattr("cluster.alerts.store.PURGE_BATCH", 2)
    for n in range(5):
        store.save(make_alert(f"old-{n}", created_at=T0 - 40 * DAY + n))
    assert store.purge(now=T0).alerts == 5
    purges = [e.details["alert_ids"] for e in store.audit.entries() if e.action == AuditAction.PURGE]
    assert purges == [["old-0", "old-1"], ["old-2", "old-3"], ["old-4"]]


def test_purge_boundary_and_limits(store):
    store.save(make_alert("at-cutoff", created_at=T0 - 31 * DAY))
    assert store.purge(now=T0).alerts == 0, "an alert exactly 31 days old is kept until it is older"
    assert store.purge(now=T0 + 0.001).alerts == 1
    with pytest.raises(ValueError, match="31 days"):
        store.purge(older_than_s=32 * DAY, now=T0)
    with pytest.raises(ValueError, match="older_than_s"):
        store.purge(older_than_s=0, now=T0)


def test_purged_crops_are_gone_from_the_sqlite_files(tmp_path, clock):
    """Deleting a row is not enough: SQLite keeps freed pages and WAL frames unless told otherwise."""
    marker = b"LFR-CROP-MARKER-" * 64
    with Database(tmp_path / "alerts.sqlite3") as database:
        store = AlertStore(database, AuditLog(database, clock=clock), clock=clock)
        crop = CROPS[3] + marker
        store.save(make_alert(sightings=(make_sighting(crop=crop),), created_at=T0 - 40 * DAY))

        def files_hold_marker() -> bool:
            return any(marker in path.read_bytes() for path in tmp_path.iterdir() if path.is_file())

        assert files_hold_marker()
        assert store.purge(now=T0).crops == 1
        assert not files_hold_marker()


def test_retention_scheduler_purges_on_its_own_and_stops_promptly(store, clock):
    store.save(make_alert("old", created_at=T0 - 40 * DAY))
    store.save(make_alert("held", created_at=T0 - 40 * DAY))
    store.hold("held", "DS Patel", "operation Bramble")
    store.save(make_alert("recent"))
    scheduler = RetentionScheduler(store, RetentionConfig(days=31, interval_s=0.05), clock=clock)
    with scheduler:
        wait_until(lambda: store.count() == 2)
        store.save(make_alert("old-2", created_at=T0 - 35 * DAY))
        wait_until(lambda: store.count() == 2)
    assert sorted(a.alert_id for a in store.list().alerts) == ["held", "recent"]

    hourly = RetentionScheduler(store, RetentionConfig(interval_s=3600), clock=clock)
    hourly.start()
    wait_until(lambda: store.audit.entries()[-1].action == AuditAction.PURGE)
    started = time.monotonic()
    hourly.stop(timeout_s=5)
    assert time.monotonic() - started < 1.0, "stop must not wait out the interval"


def test_retention_scheduler_survives_a_failed_purge(store, clock):
    """Fault injected on purpose: the database is unreachable for the first purge."""

    class FailsOnce:
        calls = 0

        def purge(self, older_than_s, now=None):
            FailsOnce.calls += 1
            if FailsOnce.calls == 1:
                raise sa.exc.OperationalError("purge", {}, ConnectionError("database unreachable"))
            return store.purge(older_than_s, now)

        def expire_rejections(self, oversight_s, suppression_s, now=None):
            return store.expire_rejections(oversight_s, suppression_s, now)

    store.save(make_alert("old", created_at=T0 - 40 * DAY))
    with RetentionScheduler(FailsOnce(), RetentionConfig(interval_s=0.05), clock=clock):
        wait_until(lambda: store.count() == 0)
    assert FailsOnce.calls >= 2


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"days": 32}, "less than or equal to 31"),
        ({"days": 0}, "greater than or equal to 1"),
        ({"interval_s": 0}, "interval_s"),
    ],
)
def test_retention_config_bounds(fields, match):
    with pytest.raises(ValidationError, match=match):
        RetentionConfig(**fields)
    assert RetentionConfig().older_than_s == 31 * DAY


def wait_until(condition, timeout_s: float = WAIT_S) -> None:
    wait_for(condition, timeout_s, "condition", interval_s=0.02)


# --- listing, open alerts and figures ------------------------------------------------------------

CAMERAS = ("oxford_st_2", "oxford_st_3", "oxford_circus")
DECISIONS = {0: [], 1: [SEEN], 2: [SEEN, ("confirmed", "PNC check")], 3: [("rejected", "not him")]}


def listing_alerts() -> list[tuple[Alert, int]]:
    """60 alerts over two deployments, four people, three cameras and two days, with a decision plan each."""
    plan = []
    for n in range(60):
        camera, person, created_at = CAMERAS[n % 3], f"person-{n % 4}", T0 + (n * 7919 % 60) * 3600.0
        seen = created_at - 10.0
        sightings = [make_sighting(f"{camera}:{n}", camera_id=camera, person_id=person, first_seen=seen, crop=None)]
        if n % 5 == 0:
            sightings.append(
                make_sighting(f"oxford_circus:{n}b", camera_id="oxford_circus", person_id=person, first_seen=seen - 600)
            )
        alert = make_alert(
            f"alert-{n:02d}",
            sightings=tuple(sightings),
            deployment_id="west_end" if n % 2 else "soho",
            person_id=person,
            created_at=created_at,
        )
        plan.append((alert, n % 4))
    return plan


@pytest.fixture(scope="module", params=BACKENDS)
def listed(request, tmp_path_factory):
    """A store with `listing_alerts()` saved and decided, and each alert's final state and hold."""
    clock = SetClock(T0)
    folder = tmp_path_factory.mktemp("listing")
    with open_database(request.param, folder, lambda: request.getfixturevalue("postgres"), shared=True) as database:
        store = AlertStore(database, AuditLog(database, clock=clock), clock=clock)
        truth = {}
        for alert, decision in listing_alerts():
            store.save(alert)
            for state, reason in DECISIONS[decision]:
                store.transition(alert.alert_id, state, "PC 1234 Khan", reason, at=alert.created_at + 60)
            held = alert.alert_id.endswith("7")
            if held:
                store.hold(alert.alert_id, "DS Patel", "operation Bramble")
            final_state = AlertState(DECISIONS[decision][-1][0]) if DECISIONS[decision] else AlertState.NEW
            truth[alert.alert_id] = (alert, final_state, held)
        yield store, truth


FILTERS = [
    pytest.param(AlertFilter(), id="all"),
    pytest.param(AlertFilter(states=(AlertState.NEW,)), id="new"),
    pytest.param(AlertFilter(states=("confirmed", "rejected")), id="decided"),
    pytest.param(AlertFilter(deployment_id="soho"), id="deployment"),
    pytest.param(AlertFilter(person_id="person-3"), id="person"),
    pytest.param(AlertFilter(camera_id="oxford_circus"), id="camera"),
    pytest.param(AlertFilter(since=T0 + 10 * 3600, until=T0 + 20 * 3600), id="time-range"),
    pytest.param(AlertFilter(held=True), id="held"),
    pytest.param(
        AlertFilter(states=(AlertState.ACKNOWLEDGED,), deployment_id="west_end", camera_id="oxford_st_3"),
        id="combined",
    ),
    pytest.param(AlertFilter(deployment_id="nowhere"), id="no-match"),
]


def matches(f: AlertFilter, alert: Alert, state: AlertState, held: bool) -> bool:
    return (
        (not f.states or state in f.states)
        and f.deployment_id in (None, alert.deployment_id)
        and f.person_id in (None, alert.person_id)
        and (f.camera_id is None or f.camera_id in alert.cameras)
        and (f.since is None or alert.created_at >= f.since)
        and (f.until is None or alert.created_at < f.until)
        and f.held in (None, held)
    )


@pytest.mark.parametrize("alert_filter", FILTERS)
def test_list_with_filters_pages_through_every_match_newest_first(listed, alert_filter):
    store, truth = listed
    expected = sorted(
        (a for a, state, held in truth.values() if matches(alert_filter, a, state, held)),
        key=lambda a: (a.created_at, a.alert_id),
        reverse=True,
    )
    listed_ids, cursor, pages = [], None, 0
    while True:
        page = store.list(alert_filter, limit=7, cursor=cursor)
        listed_ids += [a.alert_id for a in page.alerts]
        pages += 1
        assert len(page.alerts) <= 7
        for alert in page.alerts:
            want, state, held = truth[alert.alert_id]
            assert (alert.state, alert.held) == (state, held)
            assert_same_sightings(alert.sightings, want.sightings, state is AlertState.REJECTED)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert listed_ids == [a.alert_id for a in expected]
    assert store.count(alert_filter) == len(expected)
    assert pages == max(1, -(-len(expected) // 7))


def test_list_refuses_bad_arguments(listed):
    store, _ = listed
    with pytest.raises(ValueError, match="invalid cursor"):
        store.list(cursor="not-a-cursor")
    with pytest.raises(ValueError, match="limit must be within"):
        store.list(limit=0)
    with pytest.raises(ValueError, match="until .* must be after since"):
        AlertFilter(since=T0, until=T0)


def test_stats_count_decisions_per_deployment(listed):
    store, truth = listed
    stats = store.stats("west_end")
    mine = [(state, held) for a, state, held in truth.values() if a.deployment_id == "west_end"]
    assert stats.alerts == len(mine) == 30
    assert stats.confirmed == sum(state == AlertState.CONFIRMED for state, _ in mine)
    assert stats.rejected == sum(state == AlertState.REJECTED for state, _ in mine)
    assert stats.new + stats.acknowledged + stats.confirmed + stats.rejected == 30
    assert stats.held == sum(held for _, held in mine)
    assert stats.false_alert_rate == pytest.approx(stats.rejected / (stats.confirmed + stats.rejected))
    assert stats.false_alerts_per_face(100_000) == stats.rejected / 100_000
    assert store.stats("nowhere").false_alert_rate is None


@pytest.mark.parametrize("include_decided", [False, True])
def test_open_alerts_rebuild_the_fusers_state(listed, include_decided):
    store, truth = listed
    since = T0 + 30 * 3600
    expected = sorted(
        (
            a
            for a, state, _ in truth.values()
            if a.deployment_id == "soho"
            and (include_decided or not state.is_final)
            and max(s.last_seen for s in a.sightings) >= since
        ),
        key=lambda a: (a.created_at, a.alert_id),
    )
    opened = store.open_alerts("soho", since, include_decided=include_decided)
    assert [a.alert_id for a in opened] == [a.alert_id for a in expected]
    assert 0 < len(opened) < sum(a.deployment_id == "soho" for a, _, _ in truth.values())
    assert include_decided or all(not a.state.is_final for a in opened)
    assert any(a.state.is_final for a in opened) == include_decided
