"""The case store over a real SQLite file (and PostgreSQL, slow): a search's case, its candidates' decisions, holds,
and retention that takes the crops, the rows and the reports the search wrote; each change audited."""

import pytest

from cluster.alerts.config import RetentionConfig
from cluster.alerts.retention import RetentionScheduler
from cluster.alerts.store import AlertStore
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.cases.errors import CaseDecisionError, CaseNotFoundError
from cluster.cases.model import (
    AuthorisationError,
    Candidate,
    CaseAuthorisation,
    CaseKind,
    ItemState,
    MatchKind,
    Provenance,
)
from cluster.cases.store import CaseStore
from loadtest.postgres_server import PostgresServer, find_bin_dir, install_hint
from tests.paths import LFW10
from tests.test_alert_store import BACKENDS, DAY, T0, SetClock, open_database

CROPS = [path.read_bytes() for path in sorted(LFW10.glob("*/*_0001.jpg"))[:3]]
AUTHORISED = CaseAuthorisation("DS Patel", "Op Falcon: robbery at Oxford Circus on 3 June, ref CAD 4412")


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
    return SetClock(T0)


@pytest.fixture
def cases(database, clock):
    return CaseStore(database, AuditLog(database, clock=clock), clock=clock)


def candidate(number: int, person_id: str = "George_W_Bush", source: str = "/footage/cam1.mp4") -> Candidate:
    return Candidate(
        source=source,
        frame_index=10 * number,
        frame_time_s=5.0 * number,
        box=(10.5, 20.25, 90.0, 120.75),
        match_kind=MatchKind.WATCHLIST_ENTRY,
        match_id=f"entry-{number}",
        person_id=person_id,
        label=person_id.replace("_", " "),
        score=0.71 + number / 100,
        threshold=0.7,
        crop_jpeg=CROPS[number % len(CROPS)],
        model_scores={"dlib": 0.6, "faceres": 0.8},
    )


def provenance(reports: tuple[str, ...] = ()) -> Provenance:
    return Provenance(
        query="watchlist lfw@v1",
        query_digest="d" * 64,
        model="dlib+faceres",
        threshold=0.7,
        sources=("/footage/cam1.mp4",),
        sources_count=1,
        sources_digest="e" * 64,
        faces_seen=40,
        reports=reports,
    )


@pytest.mark.parametrize(
    ("officer", "reason", "says"),
    [
        ("", "Op Falcon", "pass --officer NAME"),
        ("   ", "Op Falcon", "pass --officer NAME"),
        ("DS Patel", "", "pass --reason TEXT"),
        (
            None,
            None,
            "pass --officer NAME (the officer who runs the search and answers for it, such as 'DS Patel')"
            " and --reason TEXT",
        ),
        ("system:retention", "Op Falcon", "is the system; name the person"),
    ],
)
def test_a_search_without_a_named_officer_or_a_reason_is_refused_saying_what_to_pass(officer, reason, says):
    with pytest.raises(AuthorisationError, match="needs a named officer and a reason|is the system") as refused:
        CaseAuthorisation(officer, reason)
    assert says in str(refused.value)


def test_a_case_holds_its_authorisation_provenance_and_every_candidate_and_its_opening_is_audited(cases):
    opened = cases.open(CaseKind.RETROSPECTIVE, AUTHORISED, provenance(), [candidate(1), candidate(2, "Tony_Blair")])
    stored = cases.get(opened.case_id)
    assert (stored.kind, stored.authorisation, stored.opened_at, stored.provenance) == (
        CaseKind.RETROSPECTIVE,
        AUTHORISED,
        T0,
        provenance(),
    )
    assert [(i.number, i.person_id, i.state, i.has_crop, i.decision) for i in stored.items] == [
        (1, "George_W_Bush", ItemState.PENDING, True, None),
        (2, "Tony_Blair", ItemState.PENDING, True, None),
    ]
    item = stored.item(2)
    assert (item.score, item.threshold, item.box, item.frame_time_s) == (0.73, 0.7, (10.5, 20.25, 90.0, 120.75), 10.0)
    assert dict(item.model_scores) == {"dlib": 0.6, "faceres": 0.8}
    assert cases.crop(opened.case_id, 2) == candidate(2).crop_jpeg
    assert stored.pending == 2 and [c.case_id for c in cases.list()] == [opened.case_id]

    (entry,) = cases.audit.entries(actions=[AuditAction.CASE_OPENED])
    assert (entry.actor, entry.subject) == ("DS Patel", f"case:{opened.case_id}")
    assert entry.details["reason"] == AUTHORISED.reason and entry.details["items"] == 2
    assert entry.details["faces_seen"] == 40 and entry.details["query"] == "watchlist lfw@v1"
    assert len(entry.details["person_pseudonyms"]) == 2
    assert "George_W_Bush" not in str(entry.details) and "Tony_Blair" not in str(entry.details)
    with pytest.raises(CaseNotFoundError, match="numbered 1 to 2"):
        stored.item(3)
    with pytest.raises(CaseNotFoundError, match="no case 'nope'"):
        cases.get("nope")


def test_an_officer_confirms_or_rejects_each_candidate_once_with_a_reason_audited(cases, clock):
    case_id = cases.open(CaseKind.RETROSPECTIVE, AUTHORISED, provenance(), [candidate(1), candidate(2)]).case_id
    clock.now = T0 + 30
    decided = cases.decide(case_id, 1, ItemState.CONFIRMED, "pc.operator", "custody photo and tattoo match")
    decided = cases.decide(case_id, 2, "rejected", "pc.operator", "different person: age and build")
    assert [(i.state, i.decision.officer, i.decision.at) for i in decided.items] == [
        (ItemState.CONFIRMED, "pc.operator", T0 + 30),
        (ItemState.REJECTED, "pc.operator", T0 + 30),
    ]
    assert decided.item(2).decision.reason == "different person: age and build"
    entries = cases.audit.entries(actions=[AuditAction.ADJUDICATION])
    assert [(e.actor, e.subject, e.details["from"], e.details["to"]) for e in entries] == [
        ("pc.operator", f"case:{case_id}:1", "pending", "confirmed"),
        ("pc.operator", f"case:{case_id}:2", "pending", "rejected"),
    ]
    assert entries[1].details["reason_digest"] == cases.audit.sealer.reason_digest("different person: age and build")
    assert "age and build" not in str(entries[1].details)

    with pytest.raises(CaseDecisionError, match="already confirmed, which is final"):
        cases.decide(case_id, 1, ItemState.REJECTED, "sgt.supervisor", "second thoughts")
    for state, officer, reason, problem in [
        (ItemState.PENDING, "pc.operator", "x", "pending is where it starts"),
        ("maybe", "pc.operator", "x", "unknown decision 'maybe'"),
        (ItemState.CONFIRMED, "system:retention", "x", "the system never decides"),
        (ItemState.CONFIRMED, "pc.operator", "  ", "needs a reason"),
    ]:
        with pytest.raises(ValueError, match=problem):
            cases.decide(case_id, 1, state, officer, reason)
    with pytest.raises(CaseNotFoundError, match="has no item 9"):
        cases.decide(case_id, 9, ItemState.CONFIRMED, "pc.operator", "x")
    assert len(cases.audit.entries(actions=[AuditAction.ADJUDICATION])) == 2, "a refused decision writes nothing"


def test_retention_purges_an_expired_case_with_its_crops_and_reports_and_keeps_a_held_one(
    cases, clock, database, tmp_path
):
    report = tmp_path / "out" / "report.html"
    report.parent.mkdir()
    report.write_bytes(b"<img src='data:image/jpeg;base64,...'>")
    expired = cases.open(
        CaseKind.RETROSPECTIVE, AUTHORISED, provenance((str(report), str(tmp_path / "gone.json"))), [candidate(1)]
    )
    held = cases.open(CaseKind.SOCIAL, AUTHORISED, provenance(), [candidate(2)])
    cases.hold(held.case_id, "sgt.supervisor", "Op Falcon goes to court")
    with pytest.raises(CaseDecisionError, match=r"already held by sgt.supervisor \(Op Falcon goes to court\); release"):
        cases.hold(held.case_id, "pc.operator", "another investigation")
    clock.now = T0 + 20 * DAY
    young = cases.open(CaseKind.RETROSPECTIVE, AUTHORISED, provenance(), [candidate(0)])

    clock.now = T0 + 31 * DAY + 1
    purged = cases.purge(31 * DAY)
    assert (purged.cases, purged.items, purged.crops, purged.reports, purged.held_kept, purged.erased) == (
        1,
        1,
        1,
        1,
        1,
        True,
    )
    assert not report.exists(), "the report embeds the crops, so it goes with the case"
    with pytest.raises(CaseNotFoundError):
        cases.get(expired.case_id)
    assert {c.case_id for c in cases.list()} == {held.case_id, young.case_id}
    (entry,) = cases.audit.entries(actions=[AuditAction.PURGE])
    assert (entry.actor, entry.subject, entry.details["case_ids"]) == ("system:retention", "cases", [expired.case_id])
    assert entry.details["held_kept"] == 1 and entry.details["crops"] == 1

    if database.backend == "sqlite":
        files = b"".join(path.read_bytes() for path in tmp_path.glob("alerts.sqlite3*"))
        assert candidate(1).crop_jpeg[-300:-200] not in files, "the purged crop is still in the database files"

    released = cases.release(held.case_id, "sgt.supervisor", "case closed")
    assert not released.held
    assert cases.purge(31 * DAY).cases == 1, "released, so it goes at the next purge"
    holds = cases.audit.entries(actions=[AuditAction.CASE_HELD, AuditAction.CASE_RELEASED])
    assert [e.action for e in holds] == [AuditAction.CASE_HELD, AuditAction.CASE_RELEASED]
    assert holds[1].details["held_by"] == "sgt.supervisor"
    assert holds[1].details["held_reason_digest"] == cases.audit.sealer.reason_digest("Op Falcon goes to court"), (
        "the release records which hold it ended, as an alert's does"
    )


def test_the_retention_timer_purges_cases_with_the_alerts(database, clock):
    audit = AuditLog(database, clock=clock)
    cases = CaseStore(database, audit, clock=clock)
    case_id = cases.open(CaseKind.RETROSPECTIVE, AUTHORISED, provenance(), [candidate(1)]).case_id
    later = SetClock(T0 + 3 * DAY)
    scheduler = RetentionScheduler(
        AlertStore(database, audit, clock=later), RetentionConfig(case_days=2), cases=cases, clock=later
    )
    scheduler.run_once()
    with pytest.raises(CaseNotFoundError):
        cases.get(case_id)


def test_retention_days_for_cases_are_bounded_by_policy():
    with pytest.raises(ValueError, match="case_days"):
        RetentionConfig(case_days=32)
    assert RetentionConfig(case_days=7).case_s == 7 * DAY
