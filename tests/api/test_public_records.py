"""The public deployment records over a real server: what they show, that nothing personal ever leaves in them,
and that they are rate-limited and cacheable apart from the control room.

The privacy test attacks every public route with a records database that holds all the personal data the
system keeps: person ids and names on the watchlist, live crops, the authorising officer and their reasons,
the adjudicating officers and theirs, the users and who recorded the deployments.
"""

import hashlib
import time
from datetime import UTC, datetime, timedelta

import pytest

from cluster.alerts.model import AlertState
from cluster.api.keys import Role
from cluster.api.routers.public import PUBLIC_PREFIX
from cluster.audit.actions import AuditAction
from cluster.control_room.config import ServeConfig
from cluster.deployment.config import DeploymentConfig
from cluster.deployment.purpose import Purpose
from cluster.gallery.enrolment_keys import EnrolmentKey
from cluster.gallery.fingerprints import FrozenEntry
from cluster.gallery.records import Watchlist
from tests.api.conftest import start_control_room
from tests.api.factories import CAMERAS, DEPLOYMENT, PEOPLE, WATCHLIST, deployment_status, make_alert
from tests.api.test_auth import routes

AUTHORISING_OFFICER = "Superintendent Quentin Marlowe-Fenwick"
AUTHORISATION_REASON = "Operation Nightjar: intelligence that Ariel Sharon's associates meet here"
WATCHLIST_NAME = "Nightjar persons of interest"
WATCHLIST_OFFICER = "Chief Inspector Rosalind Threadgold"
RECORDED_BY = "cli:insp.hargreaves"
ADJUDICATORS = ("pc.holloway", "pc.abernethy")
DECISION_REASONS = ("matched the custody photo, tattoo on left hand", "not him: older, different ears")
HOLD_REASON = "Investigation 4471/25 into Nightjar"
USERS = ("pc.operator", "sgt.supervisor", "ms.auditor", *ADJUDICATORS)
SIGNAGE = "Live facial recognition in use on Oxford Street today; ask an officer."
ASSEMBLY_SUPERVISOR = "Chief Superintendent Octavia Pemberton-Lisle"
NECESSITY = "Intelligence that Nightjar's suspects will join the march"
PROPORTIONALITY = "Two cameras at the dispersal point; Nightjar only"
REMEMBRANCE = "Remembrance service at the memorial"
PURPOSE_FOR = {
    DEPLOYMENT: Purpose.WANTED_FOR_OFFENCES,
    "regent_st": Purpose.MISSING_PERSONS,
    "bond_st": Purpose.SYSTEM_TEST,
}


def alert_id(index: int) -> str:
    return f"ALERT-ZQ{index}"


def deployment(deployment_id: str, starts: datetime, hours: int, **assembly) -> DeploymentConfig:
    """A deployment; `assembly` as DeploymentConfig takes it (assembly=..., exclusion_windows=...)."""
    return DeploymentConfig(
        id=deployment_id,
        place=f"{deployment_id.replace('_', ' ').title()}, London W1",
        starts_at=starts,
        ends_at=starts + timedelta(hours=hours),
        cameras=CAMERAS,
        watchlist_id=WATCHLIST,
        watchlist_version=f"{WATCHLIST}@v1",
        purpose=PURPOSE_FOR[deployment_id],
        signage_notice=SIGNAGE,
        authorised_by=AUTHORISING_OFFICER,
        reason=AUTHORISATION_REASON,
        **assembly,
    )


def at_a_march(starts: datetime) -> dict:
    """A deployment at a march, with its supervisor's authorisation and a remembrance service excluded."""
    return {
        "assembly": {
            "authorised_by_supervisor": ASSEMBLY_SUPERVISOR,
            "rank": "chief_superintendent",
            "necessity": NECESSITY,
            "proportionality": PROPORTIONALITY,
        },
        "exclusion_windows": [
            {"starts_at": starts + timedelta(hours=2), "ends_at": starts + timedelta(hours=3), "reason": REMEMBRANCE}
        ],
    }


def enrol_watchlist(room) -> None:
    """The watchlist in the catalogue with every lfw10 person, as enrolment records them (Milvus aside)."""
    catalogue = room.services.catalogue
    now = int(time.time())
    catalogue.create_watchlist(
        Watchlist(WATCHLIST, WATCHLIST_NAME, AUTHORISATION_REASON, WATCHLIST_OFFICER, now, now + 86_400)
    )
    batch = catalogue.begin_batch(WATCHLIST, now)
    keys = [(EnrolmentKey(person, hashlib.sha256(person.encode()).hexdigest(), 0), f"e-{person}") for person in PEOPLE]
    catalogue.finish_batch(WATCHLIST, batch, True, len(keys), keys)
    entries = [FrozenEntry(entry_id, now + 86_400, "0" * 64) for _key, entry_id in keys]
    catalogue.add_version(WATCHLIST, batch, (), len(entries), "f" * 64, now, entries=entries)


@pytest.fixture
def room(control_room):
    """A records database holding everything personal: a watchlist, alerts with crops, decisions, holds, users."""
    now = datetime.now(UTC)
    enrol_watchlist(control_room)
    records = control_room.services.records
    records.record(deployment(DEPLOYMENT, now - timedelta(hours=2), 6), actor=RECORDED_BY)
    march = now + timedelta(days=3)
    records.record(deployment("regent_st", march, 8, **at_a_march(march)), actor=RECORDED_BY)
    records.record(deployment("bond_st", now - timedelta(days=20), 5), actor=RECORDED_BY)
    control_room.services.board.publish(deployment_status(now.timestamp(), faces_seen=18_240))
    store = control_room.store
    for index, person in enumerate(PEOPLE[:5]):
        store.save(make_alert(alert_id(index), person, CAMERAS[:2], now.timestamp() - 600 + index))
    for index, officer in ((0, ADJUDICATORS[0]), (1, ADJUDICATORS[1]), (2, ADJUDICATORS[0])):
        store.transition(alert_id(index), AlertState.ACKNOWLEDGED, officer, f"sent {officer} to engage")
    store.transition(alert_id(0), AlertState.CONFIRMED, ADJUDICATORS[0], DECISION_REASONS[0])
    store.transition(alert_id(1), AlertState.REJECTED, ADJUDICATORS[1], DECISION_REASONS[1])
    store.hold(alert_id(0), "sgt.supervisor", HOLD_REASON)
    past = make_alert(alert_id(9), PEOPLE[6], CAMERAS[:1], now.timestamp() - 20 * 86_400, deployment_id="bond_st")
    store.save(past)
    for user in USERS[2:]:
        control_room.services.keys.add_user(
            user, Role.AUDITOR if user == "ms.auditor" else Role.OPERATOR, actor="cli:t"
        )
    return control_room


def forbidden(room) -> dict[str, bytes]:
    """Every personal thing the database holds, as it would appear in an answer."""
    texts = [
        *PEOPLE,
        *(person.replace("_", " ") for person in PEOPLE),
        AUTHORISING_OFFICER,
        "Marlowe",
        AUTHORISATION_REASON,
        "Nightjar",
        ASSEMBLY_SUPERVISOR,
        "Pemberton",
        NECESSITY,
        PROPORTIONALITY,
        "chief_superintendent",
        WATCHLIST_NAME,
        WATCHLIST_OFFICER,
        "Threadgold",
        RECORDED_BY,
        "hargreaves",
        *DECISION_REASONS,
        HOLD_REASON,
        *USERS,
        "sent pc.",
        "/crop",
        "watchlist-photo",
        "ALERT-ZQ",
    ]
    found = {text: text.encode() for text in texts}
    for index in (0, 1, 9):
        for sighting in room.store.get(alert_id(index)).sightings:
            assert sighting.crop_jpeg is not None
            found[f"crop of {sighting.sighting_id}"] = sighting.crop_jpeg[200:232]
    found["JPEG start"] = b"\xff\xd8\xff"
    return found


def assert_nothing_personal(response, secrets: dict[str, bytes], what: str) -> None:
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items()).encode()
    for label, secret in secrets.items():
        where = [part for part, data in (("body", response.content), ("headers", headers)) if secret in data]
        assert not where, f"{what} leaks {label!r} in its {' and '.join(where)}"


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]


@pytest.mark.parametrize("database", BACKENDS, indirect=True)
def test_no_public_answer_holds_anything_personal(room):
    secrets = forbidden(room)
    public_routes = [(method, path) for method, path, _ in routes(room.app) if path.startswith(f"{PUBLIC_PREFIX}/")]
    assert {path for _, path in public_routes} == {
        f"{PUBLIC_PREFIX}/",
        f"{PUBLIC_PREFIX}/deployments",
        f"{PUBLIC_PREFIX}/records.css",
    }
    probes = [
        *((method, path, {}) for method, path in public_routes),
        ("GET", f"{PUBLIC_PREFIX}/deployments?person_id={PEOPLE[0]}&deployment_id={DEPLOYMENT}", {}),
        ("GET", f"{PUBLIC_PREFIX}/deployments", {"Authorization": f"Bearer {room.supervisor.token}"}),
        ("GET", f"{PUBLIC_PREFIX}/", {"Accept": "application/json"}),
        ("HEAD", f"{PUBLIC_PREFIX}/deployments", {}),
        ("GET", f"{PUBLIC_PREFIX}/deployments/{DEPLOYMENT}", {}),
        ("GET", f"{PUBLIC_PREFIX}/alerts", {}),
        ("GET", f"{PUBLIC_PREFIX}/../alerts", {}),
        ("POST", f"{PUBLIC_PREFIX}/deployments", {}),
        ("GET", f"{PUBLIC_PREFIX}", {}),
    ]
    answered = 0
    for method, url, headers in probes:
        response = room.call(method, url, None, headers=headers, allow_redirects=False)
        assert response.status_code in (200, 307, 401, 404, 405), f"{method} {url}: {response.status_code}"
        assert_nothing_personal(response, secrets, f"{method} {url}")
        answered += response.status_code == 200
        if response.status_code == 200 and method == "GET":
            again = room.call(method, url, None, headers={"If-None-Match": response.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
            assert_nothing_personal(again, secrets, f"{method} {url} revalidated")
    assert answered >= 5
    for path in ("/alerts", f"/alerts/{alert_id(0)}", "/users", "/audit"):
        assert room.call("GET", path, None).status_code == 401, "the public prefix opens nothing else"


def test_the_records_list_past_current_and_planned_deployments_with_their_figures(room):
    answer = room.call("GET", f"{PUBLIC_PREFIX}/deployments", None)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    records = answer.json()
    assert records["purposes"] == {purpose.value: purpose.label for purpose in Purpose}
    by_id = {record["deployment_id"]: record for record in records["deployments"]}
    assert [record["deployment_id"] for record in records["deployments"]] == ["regent_st", DEPLOYMENT, "bond_st"]
    assert {key: record["phase"] for key, record in by_id.items()} == {
        "regent_st": "planned",
        DEPLOYMENT: "active",
        "bond_st": "past",
    }
    west_end = by_id[DEPLOYMENT]
    assert west_end | {"starts_at": None, "ends_at": None} == {
        "deployment_id": DEPLOYMENT,
        "place": "West End, London W1",
        "starts_at": None,
        "ends_at": None,
        "phase": "active",
        "purpose": "wanted_for_offences",
        "signage_notice": SIGNAGE,
        "watchlist_size": len(PEOPLE),
        "faces_seen": 18_240,
        "alerts": 5,
        "confirmed": 1,
        "false_alerts": 1,
        "awaiting_decision": 3,
        "at_assembly": False,
        "exclusion_windows": [],
    }
    stats = room.store.stats(DEPLOYMENT)
    assert (west_end["confirmed"], west_end["false_alerts"]) == (stats.confirmed, stats.rejected)
    assert datetime.fromisoformat(west_end["ends_at"]) - datetime.fromisoformat(west_end["starts_at"]) == timedelta(
        hours=6
    )
    assert (by_id["bond_st"]["alerts"], by_id["bond_st"]["faces_seen"]) == (1, None)
    assert (by_id["regent_st"]["alerts"], by_id["regent_st"]["purpose"]) == (0, "missing_persons")


def test_the_records_show_a_deployment_at_an_assembly_and_its_exclusion_windows(room):
    """The flag and the windows' times and reason reach the JSON and the page; the supervisor and reasons do not."""
    answer = room.call("GET", f"{PUBLIC_PREFIX}/deployments", None).json()
    by_id = {record["deployment_id"]: record for record in answer["deployments"]}
    march = by_id["regent_st"]
    assert march["at_assembly"] is True and by_id[DEPLOYMENT]["at_assembly"] is False
    (window,) = march["exclusion_windows"]
    assert set(window) == {"starts_at", "ends_at", "reason"} and window["reason"] == REMEMBRANCE
    starts = datetime.fromisoformat(march["starts_at"])
    assert datetime.fromisoformat(window["starts_at"]) - starts == timedelta(hours=2)
    assert datetime.fromisoformat(window["ends_at"]) - starts == timedelta(hours=3)
    page = room.call("GET", f"{PUBLIC_PREFIX}/", None).text
    article = page.split('data-deployment-id="regent_st"')[1].split("</article>")[0]
    assert 'At a protest or assembly</dt><dd class="assembly">Yes' in article
    assert f"{REMEMBRANCE} (nothing matched)" in article
    other = page.split(f'data-deployment-id="{DEPLOYMENT}"')[1].split("</article>")[0]
    assert '<dd class="assembly">No' in other and "(nothing matched)" not in other


def test_answers_are_cacheable_and_change_when_the_figures_do(room):
    url = f"{PUBLIC_PREFIX}/deployments"
    first = room.call("GET", url, None)
    assert first.headers["cache-control"] == "public, max-age=60"
    assert first.headers["access-control-allow-origin"] == "*"
    assert (
        first.headers["x-content-type-options"] == "nosniff"
        and "frame-ancestors 'none'" in first.headers["content-security-policy"]
    )
    tag = first.headers["etag"]
    assert room.call("GET", url, None, headers={"If-None-Match": f'W/{tag}, "other"'}).status_code == 304
    assert room.call("GET", url, None, headers={"If-None-Match": '"other"'}).status_code == 200
    room.store.transition(alert_id(2), AlertState.REJECTED, ADJUDICATORS[0], "not her")
    changed = room.call("GET", url, None, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert {r["deployment_id"]: r["false_alerts"] for r in changed.json()["deployments"]}[DEPLOYMENT] == 2
    page = room.call("GET", f"{PUBLIC_PREFIX}/", None)
    assert page.headers["content-type"] == "text/html; charset=utf-8" and page.headers["etag"]
    assert room.call("GET", "/alerts", room.operator.token).headers["cache-control"] == "no-store"


def test_the_public_rate_is_held_per_client_apart_from_the_control_rooms(database, tmp_path):
    limits = ServeConfig(
        requests_per_client="4/minute", refusals_per_client="100000/minute", public_requests_per_client="5/minute"
    )
    server, room = start_control_room(database, tmp_path / "photos", serve=limits)
    try:
        answers = [room.call("GET", f"{PUBLIC_PREFIX}/deployments", None) for _ in range(6)]
        assert [answer.status_code for answer in answers] == [200] * 5 + [429]
        assert int(answers[-1].headers["retry-after"]) >= 1
        assert "public records" in answers[-1].json()["detail"]
        officer = [room.get("/me").status_code for _ in range(5)]
        assert officer == [200] * 4 + [429], "the public's requests do not use up the officers' allowance"
        room.app.state.tally.flush(room.audit)
        counted = {
            (e.details["outcome"], e.details["reason"], e.details["status"]): e.details["count"]
            for e in room.audit.latest(10)
            if e.actor == "anonymous"
        }
        assert counted[("served", "public records", 200)] == 5
        assert counted[("refused", "too many requests for the public records", 429)] == 1
        assert all(e.action == AuditAction.REQUEST for e in room.audit.latest(10) if e.actor == "anonymous")
    finally:
        server.stop()


@pytest.mark.parametrize("database", BACKENDS, indirect=True)
def test_a_past_deployments_figures_outlive_its_purged_alerts(room):
    url = f"{PUBLIC_PREFIX}/deployments"
    before = {r["deployment_id"]: r for r in room.call("GET", url, None).json()["deployments"]}
    room.store.transition(alert_id(9), AlertState.ACKNOWLEDGED, ADJUDICATORS[1])
    room.store.transition(alert_id(9), AlertState.REJECTED, ADJUDICATORS[1], "someone else")
    purged = room.store.purge(older_than_s=7 * 86_400)
    assert purged.alerts == 1 and room.store.stats("bond_st").alerts == 0, "the alert itself is gone"
    after = {r["deployment_id"]: r for r in room.call("GET", url, None).json()["deployments"]}
    assert (before["bond_st"]["alerts"], before["bond_st"]["awaiting_decision"]) == (1, 1)
    assert (after["bond_st"]["alerts"], after["bond_st"]["false_alerts"], after["bond_st"]["awaiting_decision"]) == (
        1,
        1,
        0,
    )
    assert after[DEPLOYMENT] == before[DEPLOYMENT], "alerts within retention are untouched"
