"""The alert routes over a real server: listing and filters, evidence and photos, decisions, and clear 4xx."""

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cluster.alerts.model import AlertState
from cluster.alerts.suppression import SuppressedSighting
from cluster.api.app import create_app
from cluster.api.server import ApiServer
from cluster.deployment.config import DeploymentConfig
from tests.api import factories
from tests.api.factories import CAMERAS, DEPLOYMENT, PEOPLE, WATCHLIST, deployment_status, live_crop, make_alert

T0 = 1_750_000_000.0


@pytest.fixture
def room(control_room):
    """Six alerts, 100 s apart, newest last: three people, two deployments, three cameras."""
    for n in range(6):
        control_room.store.save(
            make_alert(
                f"al-{n}",
                PEOPLE[n % 3],
                CAMERAS[n % 3 : n % 3 + 1] if n != 5 else CAMERAS,
                created_at=T0 + 100 * n,
                deployment_id=DEPLOYMENT if n < 4 else "soho",
            )
        )
    return control_room


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [alert["alert_id"] for alert in response.json()["alerts"]]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True)
def test_listing_filters_and_pages(room):
    assert ids(room.get("/alerts")) == [f"al-{n}" for n in range(5, -1, -1)]
    assert ids(room.get("/alerts", params={"person_id": PEOPLE[1]})) == ["al-4", "al-1"]
    assert ids(room.get("/alerts", params={"deployment_id": "soho"})) == ["al-5", "al-4"]
    assert ids(room.get("/alerts", params={"camera_id": CAMERAS[2]})) == ["al-5", "al-2"]
    assert ids(room.get("/alerts", params={"since": T0 + 100, "until": T0 + 300})) == ["al-2", "al-1"]
    room.post("/alerts/al-3/acknowledge", {}).raise_for_status()
    room.post("/alerts/al-1/reject", {"reason": "not him"}).raise_for_status()
    assert ids(room.get("/alerts", params={"state": ["acknowledged", "rejected"]})) == ["al-3", "al-1"]
    room.post("/alerts/al-0/hold", {"reason": "Op Trident"}, token=room.supervisor.token).raise_for_status()
    assert ids(room.get("/alerts", params={"held": "true"})) == ["al-0"]

    pages, cursor = [], None
    while True:
        page = room.get("/alerts", params={"limit": 4, **({"cursor": cursor} if cursor else {})}).json()
        pages.append([alert["alert_id"] for alert in page["alerts"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [["al-5", "al-4", "al-3", "al-2"], ["al-1", "al-0"]]
    assert page["last_event_id"] == room.services.events.last_id() == 9


def test_one_alert_with_its_evidence_crops_and_watchlist_photo(room, tmp_path):
    alert = room.get("/alerts/al-5").json()
    assert alert["cameras"] == list(CAMERAS) and alert["sightings"] == 3
    assert [s["camera_id"] for s in alert["sightings_detail"]] == list(CAMERAS)
    assert "embedding" not in str(alert)
    for index, sighting in enumerate(alert["sightings_detail"]):
        crop = room.get(sighting["crop_url"])
        assert crop.headers["content-type"] == "image/jpeg"
        assert crop.content == live_crop(PEOPLE[2], index)
    assert alert["best_crop_url"] == alert["sightings_detail"][0]["crop_url"]
    photo = room.get(alert["watchlist_photo_url"])
    assert photo.headers["content-type"] == "image/jpeg" and photo.headers["cache-control"] == "no-store"
    assert photo.content == (tmp_path / "photos" / WATCHLIST / f"{PEOPLE[2]}.jpg").read_bytes()
    assert photo.content != live_crop(PEOPLE[2], 0)


def test_missing_things_are_404_with_a_reason(room, tmp_path):
    (tmp_path / "photos" / WATCHLIST / f"{PEOPLE[0]}.jpg").unlink()
    for path, words in [
        ("/alerts/none", "no alert 'none'"),
        ("/alerts/al-0/sightings/none/crop", "no crop for sighting 'none'"),
        ("/alerts/al-0/watchlist-photo", f"no watchlist photo of {PEOPLE[0]}"),
        ("/deployments/none", "no status for deployment 'none'"),
        ("/deployments/west_end/authorisation", "not this server's configured deployment"),
    ]:
        response = room.get(path, token=room.supervisor.token)
        assert response.status_code == 404, path
        assert words in response.json()["detail"], response.json()


def test_decisions_follow_the_lifecycle_and_name_the_officer(room):
    refused = room.post("/alerts/al-0/confirm", {"reason": "looks like him"})
    assert refused.status_code == 409 and "acknowledge" in refused.json()["detail"]
    assert room.post("/alerts/al-0/acknowledge", {"reason": "sent PC Jones"}).json()["state"] == "acknowledged"
    confirmed = room.post("/alerts/al-0/confirm", {"reason": "  verified against licence  "}).json()
    assert confirmed["state"] == "confirmed"
    assert confirmed["adjudications"][-1] | {"at": 0} == {
        "state": "confirmed", "officer": "pc.operator", "reason": "verified against licence", "at": 0,
    }  # fmt: skip
    again = room.post("/alerts/al-0/reject", {"reason": "changed my mind"})
    assert again.status_code == 409 and "final" in again.json()["detail"]
    assert room.store.get("al-0").state == AlertState.CONFIRMED


def test_holds_are_for_supervisors_and_cannot_stack(room):
    held = room.post("/alerts/al-2/hold", {"reason": "Op Trident"}, token=room.supervisor.token)
    assert held.status_code == 200 and held.json()["held"] is True
    twice = room.post("/alerts/al-2/hold", {"reason": "again"}, token=room.supervisor.token)
    assert twice.status_code == 409 and "already held by sgt.supervisor" in twice.json()["detail"]
    released = room.post("/alerts/al-2/release", {"reason": "case closed"}, token=room.supervisor.token)
    assert released.json()["held"] is False
    assert room.post("/alerts/al-2/release", {"reason": "x"}, token=room.supervisor.token).status_code == 409


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/alerts/al-0/reject", {}, ["body", "reason"]),
        ("/alerts/al-0/reject", {"reason": "   "}, ["body", "reason"]),
        ("/alerts/al-0/reject", {"reason": 42}, ["body", "reason"]),
        ("/alerts/al-0/reject", {"reason": "x" * 2001}, ["body", "reason"]),
        ("/alerts/al-0/reject", {"reason": "ok", "state": "confirmed"}, ["body", "state"]),
        ("/alerts/al-0/acknowledge", ["reason"], ["body"]),
        ("/alerts/al-0/acknowledge", "{not json", ["body", 1]),
        ("/alerts/al-0/acknowledge", None, ["body"]),
    ],
)
def test_malformed_bodies_get_a_422_naming_the_field(room, path, body, where):
    if isinstance(body, str):
        response = room.call("POST", path, room.operator.token, data=body, headers={"Content-Type": "application/json"})
    else:
        response = room.post(path, body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == where
    assert room.store.get("al-0").state == AlertState.NEW


@pytest.mark.parametrize(
    ("params", "where", "words"),
    [
        ({"state": "bogus"}, ["query", "state", 0], "new"),
        ({"limit": 0}, ["query", "limit"], "greater than or equal to 1"),
        ({"limit": 501}, ["query", "limit"], "less than or equal to 500"),
        ({"since": "nan"}, ["query", "since"], "finite"),
        ({"since": "yesterday"}, ["query", "since"], "number"),
        ({"since": T0, "until": T0}, ["query", "until"], "must be after since"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, ["query", "cursor"], "pass the next_cursor"),
        ({"held": "maybe"}, ["query", "held"], "boolean"),
    ],
)
def test_bad_queries_get_a_422_that_says_what_is_wrong(room, params, where, words):
    response = room.get("/alerts", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == where and words in error["msg"], error


def test_deployment_status_cameras_and_adjudication_figures(room):
    now = time.time()
    room.services.board.publish(deployment_status(now, faces_seen=5000, alerts=4))
    room.post("/alerts/al-0/reject", {"reason": "not him"}).raise_for_status()
    assert all(s.embedding is None for s in room.store.get("al-0").sightings), "the rejected face's embedding stays"
    (suppression,) = room.store.suppressions.in_force(DEPLOYMENT, PEOPLE[0], WATCHLIST)
    repeat = SuppressedSighting("cam:repeat", "al-0", DEPLOYMENT, CAMERAS[1], now - 5, now - 2, 6, 0.97)
    assert suppression.alert_id == "al-0" and room.store.suppressions.record(repeat, "system:coordinator")
    (status,) = room.get("/deployments").json()
    assert status["deployment_id"] == DEPLOYMENT
    assert (status["faces_seen"], status["non_match_deletions"], status["alerts"]) == (5000, 4960, 4)
    assert (status["watchlist_version"], status["threshold"]) == ("2025-06-14.1", factories.THRESHOLD)
    assert (status["target_fpir"], status["expected_tpir"]) == (factories.TARGET_FPIR, factories.EXPECTED_TPIR)
    assert status["adjudication"] == {
        "alerts": 4, "new": 3, "acknowledged": 0, "confirmed": 0, "rejected": 1, "held": 0, "false_alert_rate": 1.0,
        "suppressed_repeats": 1, "rejected_by_reason": {"not him": 1},
    }  # fmt: skip
    assert 0 <= status["age_s"] < 30
    one = room.get(f"/deployments/{DEPLOYMENT}").json()
    assert one | {"age_s": 0} == status | {"age_s": 0}
    cameras = room.get("/cameras").json()
    assert [(c["camera_id"], c["state"], c["deployment_id"]) for c in cameras] == [
        (CAMERAS[0], "streaming", DEPLOYMENT),
        (CAMERAS[1], "streaming", DEPLOYMENT),
        (CAMERAS[2], "backing_off", DEPLOYMENT),
    ]
    assert cameras[2]["last_error"] == "connection refused"


def test_supervisors_read_the_configured_authorisation(room):
    deployment = DeploymentConfig(
        id=DEPLOYMENT,
        place="Oxford Circus, London W1",
        starts_at=datetime(2025, 6, 14, 9, tzinfo=UTC),
        ends_at=datetime(2025, 6, 14, 17, tzinfo=UTC),
        cameras=CAMERAS,
        watchlist_id=WATCHLIST,
        watchlist_version="2025-06-14.1",
        purpose="wanted_for_offences",
        signage_notice="Live facial recognition in use",
        authorised_by="Supt. A. Example",
        reason="Wanted for serious violence; proportionate at this place and time",
    )
    with ApiServer(create_app(replace(room.services, deployment=deployment)), port=0) as server:
        room.url = server.url
        answer = room.get(f"/deployments/{DEPLOYMENT}/authorisation", token=room.supervisor.token).json()
        assert room.get(f"/deployments/{DEPLOYMENT}/authorisation").status_code == 403
    assert answer["authorised_by"] == "Supt. A. Example" and answer["cameras"] == list(CAMERAS)
    assert answer["starts_at"] == datetime(2025, 6, 14, 9, tzinfo=UTC).timestamp()
