"""The control room page in headless Chromium (Debian's package, driven by Playwright): an officer signs in,
an alert raised while the page is open appears without a reload, and the officer confirms it with a reason;
an auditor reads alerts and decisions with no face shown and no decision possible; anyone reads the public
deployment records; an officer confirms a retrospective search's candidate in the Cases view, which an auditor
reads without faces; an officer uploads a photo in the Social search view and sees the posts (ingested for real) the
face appears in, with their provenance, and follows the link into the case the search opened.

Also keeps docs/control_room.png, the page as an officer sees it, docs/control_room_auditor.png (an auditor
reading the audit log), docs/control_room_cases.png (a case's candidates, one confirmed),
docs/control_room_social.png (a social search's posts) and docs/public_records.png.
"""

import time
from datetime import UTC, datetime, timedelta

import pytest

from cluster.alerts.model import AlertState
from cluster.alerts.suppression import SuppressedSighting
from cluster.api.keys import Role
from cluster.api.routers.social import SEARCH_PATH
from cluster.audit.actions import AuditAction
from cluster.cases.model import ItemState
from cluster.deployment.purpose import Purpose
from tests.api.conftest import start_control_room
from tests.api.factories import (
    CAMERAS,
    CASE_ID,
    DEPLOYMENT,
    PEOPLE,
    WATCHLIST,
    deployment_status,
    make_alert,
    open_case,
)
from tests.api.social_gallery import POSTS, SEARCHED, ingest_posts
from tests.api.test_public_records import deployment as public_deployment
from tests.api.test_public_records import enrol_watchlist
from tests.audit_key import TEST_SEALER
from tests.chromium import CHROMIUM, DOCS, INSTALL_HINT, chromium_missing
from tests.records import records_database
from tests.test_watchlist_cli import lite_lfr_config

pytestmark = pytest.mark.slow

SCREENSHOT = DOCS / "control_room.png"
PUBLIC_SCREENSHOT = SCREENSHOT.with_name("public_records.png")
AUDITOR_SCREENSHOT = SCREENSHOT.with_name("control_room_auditor.png")
CASES_SCREENSHOT = SCREENSHOT.with_name("control_room_cases.png")
SOCIAL_SCREENSHOT = SCREENSHOT.with_name("control_room_social.png")
WAIT_MS = 10_000

sync_api = pytest.importorskip("playwright.sync_api", reason=INSTALL_HINT)
if chromium_missing():
    pytest.skip(chromium_missing(), allow_module_level=True)


@pytest.fixture
def browser_page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 860}, locale="en-GB", timezone_id="UTC")
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
            assert errors == [], f"JavaScript errors on the page: {errors}"
        finally:
            browser.close()


def test_sign_in_see_an_alert_arrive_live_and_confirm_it(control_room, browser_page):
    page = browser_page
    now = time.time()
    control_room.services.board.publish(deployment_status(now, alerts=4))
    for index, person in enumerate(PEOPLE[1:4]):
        control_room.store.save(
            make_alert(f"earlier-{index}", person, CAMERAS[index : index + 1], now - 600 * (index + 1))
        )
    control_room.store.transition("earlier-2", AlertState.ACKNOWLEDGED, "pc.another")

    page.goto(control_room.url + "/")
    page.fill("#token", "lfr_000000000000_not-a-real-key-at-all-000000")
    page.click("#login-submit")
    sync_api.expect(page.locator("#login-error")).to_contain_text("not accepted")
    page.fill("#token", control_room.operator.token)
    page.click("#login-submit")
    sync_api.expect(page.locator("#who")).to_have_text("pc.operator · operator")
    sync_api.expect(page.locator("#queue .queue-item")).to_have_count(3)
    sync_api.expect(page.locator("#live")).to_have_text("live")
    sync_api.expect(page.locator("#cameras .camera")).to_have_count(3)
    selected = page.locator('#queue .queue-item[aria-selected="true"]')
    sync_api.expect(selected).to_have_attribute("data-alert-id", "earlier-0")
    page.keyboard.press("j")
    sync_api.expect(selected).to_have_attribute("data-alert-id", "earlier-1")
    sync_api.expect(page.locator("#detail-person")).to_have_text(PEOPLE[2])
    page.keyboard.press("k")
    sync_api.expect(selected).to_have_attribute("data-alert-id", "earlier-0")
    page.evaluate("window.loadedOnce = true")

    person = PEOPLE[0]
    control_room.store.save(make_alert("live-1", person, CAMERAS[:2], time.time()))
    arrived = page.locator('#queue .queue-item[data-alert-id="live-1"]')
    sync_api.expect(arrived).to_be_visible()
    assert page.evaluate("window.loadedOnce === true"), "the page reloaded to show the alert"

    arrived.click()
    sync_api.expect(page.locator("#detail-person")).to_have_text(person)
    sync_api.expect(page.locator("#live-crop.loaded")).to_be_visible()
    sync_api.expect(page.locator("#watchlist-photo.loaded")).to_be_visible()
    page.keyboard.press("a")
    sync_api.expect(page.locator("#detail-state")).to_have_text("acknowledged")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    page.keyboard.press("c")
    sync_api.expect(page.locator("#reason-dialog")).to_be_visible()
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#reason-error")).to_contain_text("reason is required")
    reason = "Engaged at Oxford Circus; identity verified against driving licence"
    page.fill("#reason", reason)
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#reason-dialog")).to_be_hidden()
    sync_api.expect(page.locator("#detail-state")).to_have_text("confirmed")
    sync_api.expect(page.locator("#history")).to_contain_text(reason)
    sync_api.expect(arrived).to_have_count(0)

    stored = control_room.store.get("live-1")
    assert stored.state == AlertState.CONFIRMED
    assert [(a.state, a.officer, a.reason) for a in stored.adjudications] == [
        (AlertState.ACKNOWLEDGED, "pc.operator", ""),
        (AlertState.CONFIRMED, "pc.operator", reason),
    ]
    viewed = [e for e in control_room.audit.latest(200) if e.actor == "pc.operator"]
    assert any(e.subject == "/alerts/live-1/watchlist-photo" for e in viewed)


def test_an_auditor_reads_alerts_and_decisions_but_sees_no_face_and_cannot_decide(control_room, browser_page):
    page = browser_page
    now = time.time()
    control_room.services.board.publish(deployment_status(now, alerts=2))
    control_room.store.save(make_alert("decided", PEOPLE[1], CAMERAS[:2], now - 300))
    control_room.store.transition("decided", AlertState.ACKNOWLEDGED, "pc.jones")
    control_room.store.transition("decided", AlertState.REJECTED, "pc.jones", "Not the watchlist person")
    control_room.store.save(make_alert("open", PEOPLE[2], CAMERAS[:1], now - 60))
    auditor = control_room.services.keys.add_user("ms.auditor", Role.AUDITOR, actor="cli:test")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url.removeprefix(control_room.url)))

    page.goto(control_room.url + "/")
    page.fill("#token", auditor.token)
    page.click("#login-submit")
    sync_api.expect(page.locator("#who")).to_have_text("ms.auditor · auditor")
    sync_api.expect(page.locator("#live")).to_have_text("read-only")
    sync_api.expect(page.locator("#open-social")).to_be_hidden()
    sync_api.expect(page.locator("#queue .queue-item")).to_have_count(1)
    page.click('.tabs button[data-filter="all"]')
    sync_api.expect(page.locator("#queue .queue-item")).to_have_count(2)
    page.click('#queue .queue-item[data-alert-id="decided"]')
    sync_api.expect(page.locator("#detail-person")).to_have_text(PEOPLE[1])
    sync_api.expect(page.locator("#history")).to_contain_text("rejected by pc.jones — Not the watchlist person")
    sync_api.expect(page.locator("#oversight-note")).to_be_visible()
    sync_api.expect(page.locator(".actions")).to_be_hidden()
    sync_api.expect(page.locator(".compare")).to_be_hidden()
    sync_api.expect(page.locator("#cameras .camera")).to_have_count(3)
    page.keyboard.press("r")
    sync_api.expect(page.locator("#reason-dialog")).to_be_hidden()
    page.click("#open-audit")
    sync_api.expect(page.locator("#audit-dialog")).to_be_visible()
    newest = page.locator("#audit-entries tr").first
    sync_api.expect(newest).to_contain_text("ms.auditor")
    sync_api.expect(newest).to_contain_text("GET 200")
    sync_api.expect(page.locator("#audit-entries")).to_contain_text("access_change")
    AUDITOR_SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(AUDITOR_SCREENSHOT))
    page.click("#audit-close")

    faces_or_live = [url for url in asked if "/crop" in url or "watchlist-photo" in url or url.startswith("/events")]
    assert faces_or_live == [], "the page asks nothing an auditor may not have"
    assert control_room.store.get("decided").state == AlertState.REJECTED
    refused = [e for e in control_room.audit.latest(100) if e.actor == "ms.auditor" and e.details["status"] != 200]
    assert refused == [], "nothing the page does as an auditor is refused"


def test_the_public_records_page_lists_deployments_to_anyone(control_room, browser_page):
    page = browser_page
    now = datetime.now(UTC)
    enrol_watchlist(control_room)
    records = control_room.services.records
    records.record(public_deployment(DEPLOYMENT, now - timedelta(hours=2), 6), actor="cli:insp.hargreaves")
    records.record(public_deployment("regent_st", now + timedelta(days=3), 8), actor="cli:insp.hargreaves")
    records.record(public_deployment("bond_st", now - timedelta(days=20), 5), actor="cli:insp.hargreaves")
    control_room.services.board.publish(deployment_status(now.timestamp(), faces_seen=18_240))
    for index, person in enumerate(PEOPLE[:3]):
        control_room.store.save(make_alert(f"public-{index}", person, CAMERAS[:1], now.timestamp() - 100 + index))
    for alert_id, outcome in (("public-0", AlertState.CONFIRMED), ("public-1", AlertState.REJECTED)):
        control_room.store.transition(alert_id, AlertState.ACKNOWLEDGED, "pc.jones")
        control_room.store.transition(alert_id, outcome, "pc.jones", "checked")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url.removeprefix(control_room.url)))

    page.goto(control_room.url + "/public/")
    sync_api.expect(page.locator("h1")).to_have_text("Live facial recognition: deployment records")
    now_section, planned, past = (page.locator(f"section#{name} article") for name in ("now", "planned", "past"))
    sync_api.expect(now_section).to_have_count(1)
    sync_api.expect(planned).to_have_count(1)
    sync_api.expect(past).to_have_count(1)
    west_end = page.locator(f'article[data-deployment-id="{DEPLOYMENT}"]')
    sync_api.expect(west_end.locator("h3")).to_have_text("West End, London W1")
    sync_api.expect(west_end.locator(".purpose")).to_have_text(Purpose.WANTED_FOR_OFFENCES.label)
    sync_api.expect(west_end.locator(".watchlist-size")).to_have_text(str(len(PEOPLE)))
    sync_api.expect(west_end.locator(".faces-seen")).to_have_text("18,240")
    figures = [
        west_end.locator(f".{name}").inner_text() for name in ("alerts", "confirmed", "false-alerts", "awaiting")
    ]
    assert figures == ["3", "1", "1", "1"]
    sync_api.expect(planned.locator(".faces-seen")).to_have_text("not yet known")
    sync_api.expect(past.locator(".faces-seen")).to_have_text("not reported")
    sync_api.expect(page.locator("link[rel=stylesheet]")).to_have_attribute("href", "/public/records.css")
    assert page.evaluate("getComputedStyle(document.querySelector('.figures th')).fontWeight") == "600", "styled"
    text = page.content()
    assert not [name for name in (*PEOPLE, "pc.jones", "hargreaves", "Marlowe", "Nightjar") if name in text]
    PUBLIC_SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(PUBLIC_SCREENSHOT), full_page=True)
    page.click("text=JSON")
    page.wait_for_url("**/public/deployments")
    assert page.evaluate("JSON.parse(document.querySelector('pre').innerText).deployments.length") == 3
    assert sorted(set(asked) - {"/favicon.ico"}) == ["/public/", "/public/deployments", "/public/records.css"]


def figure(page, label: str):
    """The value beside `label` in the deployment's figures panel."""
    return page.locator("#figures .label", has_text=label).locator("xpath=following-sibling::span[1]")


def test_a_rejection_in_the_page_stops_that_person_and_the_figures_count_suppressed_repeats(control_room, browser_page):
    page = browser_page
    now = time.time()
    control_room.services.board.publish(deployment_status(now, alerts=2))
    store = control_room.store
    store.save(make_alert("rejected-earlier", PEOPLE[1], CAMERAS[:1], now - 900))
    store.transition("rejected-earlier", AlertState.REJECTED, "pc.another", "Not the watchlist person")
    repeat = SuppressedSighting("cam:repeat", "rejected-earlier", DEPLOYMENT, CAMERAS[1], now - 60, now - 55, 9, 0.97)
    assert store.suppressions.record(repeat, "system:coordinator")
    store.save(make_alert("look-alike", PEOPLE[2], CAMERAS[:1], now - 300))

    page.goto(control_room.url + "/")
    page.fill("#token", control_room.operator.token)
    page.click("#login-submit")
    sync_api.expect(figure(page, "Repeats suppressed")).to_have_text("1")
    sync_api.expect(figure(page, "Rejected")).to_have_text("1")
    page.locator('#queue .queue-item[data-alert-id="look-alike"]').click()
    page.keyboard.press("r")
    sync_api.expect(page.locator("#reason-title")).to_contain_text("not this person")
    page.locator("#reason-chips button", has_text="Not the watchlist person").click()
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#detail-state")).to_have_text("rejected")
    sync_api.expect(figure(page, "Rejected")).to_have_text("2")

    (suppression,) = store.suppressions.in_force(DEPLOYMENT, PEOPLE[2], WATCHLIST)
    assert suppression.alert_id == "look-alike" and suppression.officer == "pc.operator"
    assert all(s.embedding is None for s in store.get("look-alike").sightings)


def test_an_officer_confirms_a_search_candidate_in_the_cases_view(control_room, browser_page):
    page = browser_page
    open_case(control_room.services.cases)
    page.goto(control_room.url + "/")
    page.fill("#token", control_room.operator.token)
    page.click("#login-submit")
    sync_api.expect(page.locator("#who")).to_have_text("pc.operator · operator")
    page.click("#open-cases")
    sync_api.expect(page.locator("#cases-dialog")).to_be_visible()
    row = page.locator(f'#cases-list tr[data-case-id="{CASE_ID}"]')
    sync_api.expect(row).to_contain_text("retrospective")
    sync_api.expect(row.locator(".officer")).to_have_text("DS Patel")
    sync_api.expect(row.locator(".reason")).to_have_text("Op Falcon: robbery at Oxford Circus, ref CAD 4412")
    sync_api.expect(row.locator(".pending")).to_have_text("2")
    items = page.locator("#case-items .case-item")
    sync_api.expect(items).to_have_count(2)
    first = items.nth(0)
    sync_api.expect(first).to_contain_text(PEOPLE[0].replace("_", " "))
    sync_api.expect(first.locator(".score")).to_contain_text("threshold 3.449")
    sync_api.expect(first.locator("img.case-crop.loaded")).to_be_visible()

    first.locator("button", has_text="Confirm").click()
    sync_api.expect(page.locator("#reason-dialog")).to_be_visible()
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#reason-error")).to_contain_text("reason is required")
    reason = "Same man: scar above the left eye matches the custody photo"
    page.fill("#reason", reason)
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#reason-dialog")).to_be_hidden()
    sync_api.expect(first).to_have_attribute("data-state", "confirmed")
    sync_api.expect(first.locator(".decision")).to_have_text(f"confirmed by pc.operator — {reason}")
    sync_api.expect(first.locator("button")).to_have_count(0)
    sync_api.expect(row.locator(".pending")).to_have_text("1")
    sync_api.expect(row.locator(".confirmed")).to_have_text("1")
    page.screenshot(path=str(CASES_SCREENSHOT))

    item = control_room.services.cases.get(CASE_ID).item(1)
    assert item.state is ItemState.CONFIRMED and item.decision is not None
    assert (item.decision.officer, item.decision.reason) == ("pc.operator", reason)
    assert control_room.services.cases.get(CASE_ID).item(2).state is ItemState.PENDING
    viewed = {e.subject for e in control_room.audit.latest(100) if e.actor == "pc.operator"}
    assert {"/cases", f"/cases/{CASE_ID}", f"/cases/{CASE_ID}/items/1/crop", f"case:{CASE_ID}:1"} <= viewed


def test_an_auditor_reads_cases_without_faces_or_decisions(control_room, browser_page):
    page = browser_page
    open_case(control_room.services.cases)
    control_room.services.cases.decide(CASE_ID, 2, ItemState.REJECTED, "pc.jones", "Not the same person")
    auditor = control_room.services.keys.add_user("ms.auditor", Role.AUDITOR, actor="cli:test")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url.removeprefix(control_room.url)))
    page.goto(control_room.url + "/")
    page.fill("#token", auditor.token)
    page.click("#login-submit")
    page.click("#open-cases")
    items = page.locator("#case-items .case-item")
    sync_api.expect(items).to_have_count(2)
    sync_api.expect(items.nth(1).locator(".decision")).to_have_text("rejected by pc.jones — Not the same person")
    sync_api.expect(page.locator("#case-items button")).to_have_count(0)
    sync_api.expect(page.locator("#case-items img")).to_have_count(0)
    assert not [url for url in asked if "/crop" in url], "the page asks for no face an auditor may not see"


@pytest.fixture
def social_room(tmp_path):
    """Posts ingested by `lfr social ingest` into a real milvus-lite gallery, and a control room over the same
    records database and gallery, as `lfr serve` runs."""
    with lite_lfr_config(tmp_path / "lfr") as config:
        ingest_posts(config, tmp_path)
        database = records_database(config.database.url)
        server, room = start_control_room(database, tmp_path / "photos", sealer=TEST_SEALER, social=config)
        try:
            yield room
        finally:
            server.stop()
            database.close()


def test_an_officer_finds_where_a_face_appears_in_the_posts_and_opens_the_case(social_room, browser_page):
    page, room = browser_page, social_room
    page.goto(room.url + "/")
    page.fill("#token", room.operator.token)
    page.click("#login-submit")
    sync_api.expect(page.locator("#who")).to_have_text("pc.operator · operator")
    page.click("#open-social")
    sync_api.expect(page.locator("#social-dialog")).to_be_visible()
    page.set_input_files("#social-photo", str(SEARCHED))
    page.click("#social-submit")
    sync_api.expect(page.locator("#social-error")).to_contain_text("A reason is required")
    reason = "Op Bramble: where else the man in the custody photo was seen, ref CAD 7781"
    page.fill("#social-reason", reason)
    page.click("#social-submit")

    found = page.locator("#social-results .social-match")
    sync_api.expect(found).to_have_count(2)
    for post_id, post in POSTS.items():
        shown = page.locator(f'.social-match[data-post-id="{post_id}"]')
        sync_api.expect(shown.locator(".label")).to_have_text(f"{post['platform']} post {post_id} by {post['author']}")
        sync_api.expect(shown.locator(".when-where")).to_contain_text(post["place"])
        sync_api.expect(shown.locator("a.url")).to_have_attribute(
            "href", f"https://example.org/{post['platform']}/{post_id}"
        )
        sync_api.expect(shown.locator("img.case-crop.loaded")).to_be_visible()
    sync_api.expect(page.locator('.social-match[data-post-id="fb-3003"] .badge')).to_have_text(
        "text flagged for review"
    )
    sync_api.expect(page.locator('.social-match[data-post-id="1001"] .badge')).to_have_text("text not flagged")
    posted = page.locator('.social-match[data-post-id="1001"] .when-where')
    sync_api.expect(posted).to_have_text("14 Jun 2025, 09:32 · Trafalgar Square")
    sync_api.expect(page.locator("#social-summary")).to_contain_text(f"2 posts with face 0 of upload {SEARCHED.name}")
    page.screenshot(path=str(SOCIAL_SCREENSHOT))

    (search,) = [e for e in room.audit.latest(100) if e.action == AuditAction.SEARCH]
    case_id = search.details["case_id"]
    assert (search.actor, search.details["reason"], search.details["hits"]) == ("pc.operator", reason, 2)
    page.click("#social-case")
    sync_api.expect(page.locator("#social-dialog")).to_be_hidden()
    sync_api.expect(page.locator("#cases-dialog")).to_be_visible()
    sync_api.expect(page.locator(f'#cases-list tr[data-case-id="{case_id}"]')).to_have_attribute(
        "aria-selected", "true"
    )
    sync_api.expect(page.locator("#case-title")).to_have_text("social case · pc.operator")
    sync_api.expect(page.locator("#case-items .case-item")).to_have_count(2)
    sync_api.expect(page.locator("#case-items")).to_contain_text("https://example.org/facebook/fb-3003")
    requests = [e for e in room.audit.latest(100) if e.subject == SEARCH_PATH]
    assert [(e.actor, e.details["status"]) for e in requests] == [("pc.operator", 200)]
