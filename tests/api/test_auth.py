"""Credentials and roles over a real server: every route the app has is checked, so a new one cannot slip by.

Routes are enumerated from the app itself: each must answer 401 without a credential and with a bad
one (except the page's own files and the public records, which hold nothing personal), in the same
words whatever was wrong with it; supervisor and oversight routes must answer 403 to an operator
(tests/api/test_auditor.py checks the auditor). Every request with an accepted credential leaves an
audit entry naming who made it; those without one are counted, and the counts audited.
"""

import re
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

from cluster.api.app import PUBLIC_PATHS
from cluster.api.auth import overseer, supervisor
from cluster.api.gate import REFUSED_DETAIL
from cluster.api.keys import TOKEN_PREFIX
from cluster.api.routers.public import PUBLIC_PREFIX
from cluster.audit.actions import AuditAction
from cluster.control_room import PAGE_FILES, page_file
from tests.api.factories import CASE_ID, PEOPLE, make_alert, open_case

PATH_VALUES = {
    "alert_id": "a1",
    "sighting_id": "oxford_st_2:a1",
    "deployment_id": "west_end",
    "name": "pc.operator",
    "case_id": CASE_ID,
    "number": "1",
}
SUPERVISOR_ROUTES = {
    "POST /alerts/{alert_id}/hold",
    "POST /alerts/{alert_id}/release",
    "POST /cases/{case_id}/hold",
    "POST /cases/{case_id}/release",
    "POST /retention/purge",
    "POST /users",
    "POST /users/{name}/keys",
    "POST /users/{name}/revoke",
}
OVERSIGHT_ROUTES = {
    "GET /audit",
    "GET /deployments/{deployment_id}/authorisation",
    "GET /deployments/{deployment_id}/report",
    "GET /users",
}
"""Supervisors and auditors read these; operators do not."""
BAD_TOKENS = {
    "garbage": "not-a-token",
    "unknown key": "lfr_0123456789ab_" + "A" * 43,
    "wrong secret": None,
}


def routes(app) -> list[tuple[str, str, Route]]:
    """(method, path, route) for every route of the app, routers included (FastAPI 0.16x keeps them nested)."""
    found = []
    pending = [("", route) for route in app.routes]
    while pending:
        prefix, route = pending.pop()
        if isinstance(route, Route):
            found += [(method, prefix + route.path, route) for method in sorted(route.methods - {"HEAD"})]
        elif hasattr(route, "original_router") and hasattr(route, "include_context"):
            inner = prefix + route.include_context.prefix
            pending += [(inner, child) for child in route.original_router.routes]
        else:
            raise AssertionError(f"unknown kind of route {route!r}: teach routes() about it")
    return sorted(found, key=lambda item: (item[1], item[0]))


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: PATH_VALUES[match[1]], path)


def needs(route: Route, access) -> bool:
    """Whether the route depends on `access` (a role check of cluster.api.auth)."""
    if not isinstance(route, APIRoute):
        return False
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call is access:
            return True
        pending.extend(dependency.dependencies)
    return False


@pytest.fixture
def room(control_room):
    control_room.store.save(make_alert("a1", PEOPLE[0]))
    open_case(control_room.services.cases)
    return control_room


def test_the_route_table_is_what_these_tests_expect(room):
    paths = {path for _, path, _ in routes(room.app)}
    assert PUBLIC_PATHS == set(PAGE_FILES) and PUBLIC_PATHS <= paths
    assert {f"{m} {p}" for m, p, r in routes(room.app) if needs(r, supervisor)} == SUPERVISOR_ROUTES
    assert {f"{m} {p}" for m, p, r in routes(room.app) if needs(r, overseer)} == OVERSIGHT_ROUTES
    assert len(routes(room.app)) >= 20


def test_no_route_answers_without_a_valid_credential(room):
    wrong_secret = room.operator.token[:-4] + ("AAAA" if not room.operator.token.endswith("AAAA") else "BBBB")
    checked = 0
    for method, path, _route in routes(room.app):
        if path in PUBLIC_PATHS or path.startswith(f"{PUBLIC_PREFIX}/"):
            continue
        url = concrete(path)
        for label, token in {**BAD_TOKENS, "wrong secret": wrong_secret, "none": None}.items():
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            response = room.call(method, url, None, headers=headers, json={"reason": "x"})
            assert response.status_code == 401, f"{method} {path} with {label}: {response.status_code}"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json() == {"detail": REFUSED_DETAIL}, "the answer must not say why it was refused"
            assert "a1" not in response.text and PEOPLE[0] not in response.text
        checked += 1
    assert checked >= 17
    for path in ("/docs", "/redoc", "/no/such/route"):
        assert room.call("GET", path, None).status_code == 401


def test_basic_and_other_schemes_are_not_bearer_tokens(room):
    token = room.operator.token
    for header in (f"Basic {token}", token, f"Token {token}"):
        assert room.call("GET", "/alerts", None, headers={"Authorization": header}).status_code == 401
    assert room.call("GET", "/alerts", None, headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_the_page_loads_without_a_credential_and_holds_no_data(room):
    for path, (name, media_type) in PAGE_FILES.items():
        response = room.call("GET", path, None)
        assert response.status_code == 200
        assert response.headers["content-type"] == media_type
        assert response.content == page_file(name)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"


def test_operators_get_403_on_supervisor_and_oversight_routes_and_supervisors_do_not(room):
    for method, path, route in routes(room.app):
        if not (needs(route, supervisor) or needs(route, overseer)):
            continue
        url = concrete(path)
        as_operator = room.call(method, url, room.operator.token, json={"reason": "checking roles"})
        assert as_operator.status_code == 403, f"{method} {path}: {as_operator.status_code}"
        assert "pc.operator is operator; this needs the supervisor" in as_operator.json()["detail"]
        as_supervisor = room.call(method, url, room.supervisor.token, json={"reason": "checking roles"})
        assert as_supervisor.status_code not in (401, 403), f"{method} {path}: {as_supervisor.status_code}"


def test_every_request_is_audited_with_who_made_it(room):
    room.get("/me")
    room.get("/alerts?state=new")
    room.get("/alerts/a1/watchlist-photo")
    room.post("/alerts/a1/acknowledge", {"reason": "sent PC Jones"})
    room.call("GET", "/alerts", "lfr_0123456789ab_" + "A" * 43)
    room.get("/users")
    assert room.app.state.tally.flush(room.audit) == 1
    entries = room.audit.latest(20)
    requests_only = (AuditAction.REQUEST, AuditAction.LOGIN)
    by_operator = [
        (e.action, e.subject, e.details["status"])
        for e in entries
        if e.actor == "pc.operator" and e.action in requests_only
    ]
    assert by_operator == [
        (AuditAction.LOGIN, "/me", 200),
        (AuditAction.REQUEST, "/alerts", 200),
        (AuditAction.REQUEST, "/alerts/a1/watchlist-photo", 200),
        (AuditAction.REQUEST, "/alerts/a1/acknowledge", 200),
        (AuditAction.REQUEST, "/users", 403),
    ]
    request = next(e for e in entries if e.subject == "/alerts" and e.actor == "pc.operator")
    assert request.details["query"] == "state=new" and request.details["key_id"] == room.operator.key_id
    decision = next(e for e in entries if e.action == AuditAction.ADJUDICATION)
    assert decision.actor == "pc.operator"
    assert decision.details["reason_digest"] == room.store.audit.sealer.reason_digest("sent PC Jones")
    refused = next(e for e in entries if e.actor == "anonymous")
    assert (refused.action, refused.subject) == (AuditAction.LOGIN, "127.0.0.1")
    assert refused.details | {"first_at": None, "last_at": None} == {
        "client": "127.0.0.1", "outcome": "refused", "reason": "unknown key", "status": 401, "count": 1,
        "first_at": None, "last_at": None, "paths": {"/alerts": 1}, "key_ids": ["0123456789ab"],
    }  # fmt: skip
    assert room.audit.verify().ok


def test_a_revoked_key_stops_working_at_once(room):
    issued = room.post("/users", {"name": "pc.temp", "role": "operator"}, token=room.supervisor.token)
    assert issued.status_code == 201
    token = issued.json()["token"]
    assert room.get("/me", token=token).json() == {"name": "pc.temp", "role": "operator"}
    assert room.post("/users/pc.temp/revoke", token=room.supervisor.token).json() == {
        "name": "pc.temp",
        "revoked_keys": 1,
    }
    response = room.get("/me", token=token)
    assert response.status_code == 401 and response.json() == {"detail": REFUSED_DETAIL}
    room.app.state.tally.flush(room.audit)
    (refused,) = [e for e in room.audit.latest(10) if e.actor == "anonymous"]
    assert refused.details["reason"] == "revoked key", "the audit log keeps why"
    assert room.post("/users/sgt.supervisor/revoke", token=room.supervisor.token).status_code == 409
    users = {u["name"]: u for u in room.get("/users", token=room.supervisor.token).json()}
    assert users["pc.temp"]["active_keys"] == 0 and users["sgt.supervisor"]["active_keys"] == 1
    changes = [e.details["change"] for e in room.audit.latest(50) if e.action == AuditAction.ACCESS_CHANGE]
    assert changes[-2:] == ["user_added", "keys_revoked"]


def test_keys_are_stored_as_digests_only(room, database):
    secret = room.operator.token.removeprefix(f"{TOKEN_PREFIX}{room.operator.key_id}_")
    assert len(secret) >= 20, "the random part of the token (which may itself hold underscores)"
    main = Path(database.url.database)
    stored = b"".join(path.read_bytes() for path in (main, main.with_name(main.name + "-wal")) if path.is_file())
    assert room.operator.key_id.encode() in stored, "looked in the wrong files"
    assert secret.encode() not in stored


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"name": "Bad Name", "role": "operator"}, "name"),
        ({"name": "system", "role": "operator"}, None),
        ({"name": "pc.x", "role": "admin"}, "role"),
        ({"name": "pc.x"}, "role"),
        ({"name": "pc.x", "role": "operator", "extra": 1}, "extra"),
    ],
)
def test_new_users_are_checked(room, body, problem):
    response = room.post("/users", body, token=room.supervisor.token)
    if problem is None:
        assert response.status_code == 409 and "names the system" in response.json()["detail"]
    else:
        assert response.status_code == 422
        assert problem in {str(part) for error in response.json()["detail"] for part in error["loc"]}


class BrokenPhotos:
    """A fault injected on purpose: the photo source fails."""

    def photo(self, person_id: str, watchlist_id: str) -> bytes | None:
        raise OSError("photo store unreachable")


def test_a_request_that_fails_inside_is_audited_too(room):
    room.app.state.services = replace(room.services, photos=BrokenPhotos())
    response = room.get("/alerts/a1/watchlist-photo")
    assert response.status_code == 500
    (entry,) = [e for e in room.audit.latest(5) if e.subject == "/alerts/a1/watchlist-photo"]
    assert (entry.actor, entry.details["status"]) == ("pc.operator", 500)
