"""The case routes over a real server: a retrospective search's case listed and read, its candidates' crops, decisions
made once each by a named officer, holds for supervisors, what an auditor may not do, and every request audited."""

import pytest

from cluster.api.keys import Role
from cluster.audit.actions import AuditAction
from cluster.cases.model import ItemState
from tests.api.factories import CASE_ID, PEOPLE, THRESHOLD, live_crop, open_case

AUDITOR = "ms.auditor"
CHECKED = "compared with the custody photo of 3 June"


@pytest.fixture
def room(control_room):
    """Two cases, the newer one first: `c1` with two candidates, `c2` with one."""
    open_case(control_room.services.cases, at=1_750_000_000.0)
    open_case(control_room.services.cases, "c2", people=(PEOPLE[2],), at=1_750_000_100.0)
    control_room.auditor = control_room.services.keys.add_user(AUDITOR, Role.AUDITOR, actor="cli:test")
    return control_room


def detail(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True)
def test_cases_are_listed_newest_first_with_their_authorisation_and_counts(room):
    listed = detail(room.get("/cases"))["cases"]
    assert [case["case_id"] for case in listed] == ["c2", CASE_ID]
    first = listed[1]
    assert (first["kind"], first["officer"]) == ("retrospective", "DS Patel")
    assert first["reason"] == "Op Falcon: robbery at Oxford Circus, ref CAD 4412"
    assert (first["items"], first["pending"], first["confirmed"], first["rejected"], first["held"]) == (
        2,
        2,
        0,
        0,
        False,
    )
    assert [case["case_id"] for case in detail(room.get("/cases", params={"limit": 1}))["cases"]] == ["c2"]
    assert room.get("/cases", params={"limit": 0}).status_code == 422


def test_a_case_shows_its_candidates_and_their_crops(room):
    case = detail(room.get(f"/cases/{CASE_ID}"))
    assert case["sources_count"] == 2 and case["faces_seen"] == 12 and case["threshold"] == THRESHOLD
    assert [item["person_id"] for item in case["items_detail"]] == list(PEOPLE[:2])
    for number, item in enumerate(case["items_detail"], start=1):
        assert (item["number"], item["state"], item["match_kind"]) == (number, "pending", "watchlist_entry")
        assert item["score"] >= item["threshold"] and item["decided_by"] is None
        crop = room.get(item["crop_url"])
        assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
        assert crop.content == live_crop(item["person_id"])
    assert "crop_jpeg" not in str(case) and "embedding" not in str(case)


def test_each_candidate_is_decided_once_by_the_named_officer_with_a_reason_audited(room):
    confirmed = detail(room.post(f"/cases/{CASE_ID}/items/1/confirm", {"reason": f"  {CHECKED}  "}))
    first = confirmed["items_detail"][0]
    assert (first["state"], first["decided_by"], first["decision_reason"]) == ("confirmed", "pc.operator", CHECKED)
    assert (confirmed["pending"], confirmed["confirmed"]) == (1, 1)
    rejected = detail(
        room.post(f"/cases/{CASE_ID}/items/2/reject", {"reason": "different ears"}, token=room.supervisor.token)
    )
    assert rejected["items_detail"][1]["decided_by"] == "sgt.supervisor" and rejected["rejected"] == 1

    for verb in ("confirm", "reject"):
        again = room.post(f"/cases/{CASE_ID}/items/1/{verb}", {"reason": "second thoughts"})
        assert again.status_code == 409 and "already confirmed, which is final" in again.json()["detail"]
    assert room.services.cases.get(CASE_ID).item(1).state is ItemState.CONFIRMED

    decisions = [e for e in room.audit.latest(30) if e.action == AuditAction.ADJUDICATION]
    assert {(e.actor, e.subject, e.details["to"]) for e in decisions} == {
        ("pc.operator", f"case:{CASE_ID}:1", "confirmed"),
        ("sgt.supervisor", f"case:{CASE_ID}:2", "rejected"),
    }, "the refused second decisions wrote nothing"
    assert all(CHECKED not in str(e.details) for e in decisions), "the log keeps a digest of the reason, not its text"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_a_decision_without_a_reason_is_refused_and_decides_nothing(room, body):
    refused = room.post(f"/cases/{CASE_ID}/items/1/confirm", body)
    assert refused.status_code == 422, refused.text
    assert room.services.cases.get(CASE_ID).item(1).state is ItemState.PENDING


def test_holds_are_for_supervisors_and_cannot_stack(room):
    by_operator = room.post(f"/cases/{CASE_ID}/hold", {"reason": "Op Falcon trial"})
    assert by_operator.status_code == 403 and "needs the supervisor" in by_operator.json()["detail"]
    held = detail(room.post(f"/cases/{CASE_ID}/hold", {"reason": "Op Falcon trial"}, token=room.supervisor.token))
    assert (held["held"], held["held_by"], held["held_reason"]) == (True, "sgt.supervisor", "Op Falcon trial")
    twice = room.post(f"/cases/{CASE_ID}/hold", {"reason": "again"}, token=room.supervisor.token)
    assert twice.status_code == 409 and "already held by sgt.supervisor" in twice.json()["detail"]
    released = detail(room.post(f"/cases/{CASE_ID}/release", {"reason": "trial over"}, token=room.supervisor.token))
    assert (released["held"], released["held_by"]) == (False, None)
    assert room.post(f"/cases/{CASE_ID}/release", {"reason": "x"}, token=room.supervisor.token).status_code == 409
    changes = [e for e in room.audit.latest(30) if e.action in (AuditAction.CASE_HELD, AuditAction.CASE_RELEASED)]
    assert [(e.action, e.actor) for e in changes] == [
        (AuditAction.CASE_HELD, "sgt.supervisor"),
        (AuditAction.CASE_RELEASED, "sgt.supervisor"),
    ]


def test_an_auditor_reads_cases_but_sees_no_face_and_decides_nothing(room):
    token = room.auditor.token
    assert [case["case_id"] for case in detail(room.get("/cases", token=token))["cases"]] == ["c2", CASE_ID]
    assert detail(room.get(f"/cases/{CASE_ID}", token=token))["items"] == 2
    for method, path in [
        ("GET", f"/cases/{CASE_ID}/items/1/crop"),
        ("POST", f"/cases/{CASE_ID}/items/1/confirm"),
        ("POST", f"/cases/{CASE_ID}/items/1/reject"),
        ("POST", f"/cases/{CASE_ID}/hold"),
        ("POST", f"/cases/{CASE_ID}/release"),
    ]:
        refused = room.call(method, path, token, json={"reason": "oversight"})
        assert refused.status_code == 403, f"{method} {path}: {refused.status_code}"
        assert refused.json()["detail"].startswith(f"{AUDITOR} is auditor; this needs the")
    assert room.services.cases.get(CASE_ID).pending == 2 and not room.services.cases.get(CASE_ID).held


def test_no_case_route_answers_without_a_credential(room):
    for method, path in [
        ("GET", "/cases"),
        ("GET", f"/cases/{CASE_ID}"),
        ("GET", f"/cases/{CASE_ID}/items/1/crop"),
        ("POST", f"/cases/{CASE_ID}/items/1/confirm"),
        ("POST", f"/cases/{CASE_ID}/hold"),
    ]:
        response = room.call(method, path, None, json={"reason": "x"})
        assert response.status_code == 401, f"{method} {path}: {response.status_code}"
        assert "DS Patel" not in response.text and PEOPLE[0] not in response.text


def test_missing_cases_and_items_are_404_with_a_reason(room):
    for method, path, words in [
        ("GET", "/cases/none", "no case 'none'"),
        ("GET", "/cases/none/items/1/crop", "no case 'none'"),
        ("GET", f"/cases/{CASE_ID}/items/9/crop", f"case {CASE_ID} has no crop for item 9"),
        ("POST", f"/cases/{CASE_ID}/items/9/confirm", f"case {CASE_ID} has no item 9"),
        ("POST", "/cases/none/hold", "no case 'none'"),
    ]:
        response = room.call(method, path, room.supervisor.token, json={"reason": "checking"})
        assert response.status_code == 404, f"{method} {path}: {response.status_code}"
        assert words in response.json()["detail"], response.json()
    assert room.get(f"/cases/{CASE_ID}/items/0/crop").status_code == 422


def test_every_case_request_is_audited_with_who_made_it(room):
    room.get("/cases")
    room.get(f"/cases/{CASE_ID}")
    room.get(f"/cases/{CASE_ID}/items/1/crop")
    room.post(f"/cases/{CASE_ID}/items/1/reject", {"reason": "not him"})
    room.get(f"/cases/{CASE_ID}/items/1/crop", token=room.auditor.token)
    entries = room.audit.latest(30)
    requests = [
        (e.actor, e.subject, e.details["status"])
        for e in entries
        if e.action == AuditAction.REQUEST and e.subject.startswith("/cases")
    ]
    assert requests == [
        ("pc.operator", "/cases", 200),
        ("pc.operator", f"/cases/{CASE_ID}", 200),
        ("pc.operator", f"/cases/{CASE_ID}/items/1/crop", 200),
        ("pc.operator", f"/cases/{CASE_ID}/items/1/reject", 200),
        (AUDITOR, f"/cases/{CASE_ID}/items/1/crop", 403),
    ]
    assert room.audit.verify().ok


def test_the_supervisor_s_purge_now_also_purges_expired_cases_but_not_held_ones(room):
    """Both cases of `room` were opened in 2025, past `retention.case_days`; one is held, and one more is opened now."""
    detail(room.post(f"/cases/{CASE_ID}/hold", {"reason": "Op Falcon trial"}, token=room.supervisor.token))
    open_case(room.services.cases, "c3", people=(PEOPLE[0],))
    purged = room.post("/retention/purge", token=room.supervisor.token)
    assert purged.status_code == 200, purged.text
    figures = purged.json()
    assert (figures["cases"], figures["case_items"], figures["cases_held_kept"]) == (1, 1, 1)
    assert figures["crops_erased"] is True
    assert {case["case_id"] for case in detail(room.get("/cases"))["cases"]} == {CASE_ID, "c3"}
    assert room.get("/cases/c2").status_code == 404
    (entry,) = [e for e in room.audit.latest(30) if e.action == AuditAction.PURGE and e.subject == "cases"]
    assert entry.actor == "sgt.supervisor" and entry.details["cases"] == 1
