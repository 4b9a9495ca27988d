"""The control room page in headless Chromium (Debian's package, driven by Playwright): an officer signs in,
an alert raised while the page is open appears without a reload, and the officer confirms it with a reason.

Also keeps docs/control_room.png, the page as an officer sees it.
"""

import shutil
import time
from pathlib import Path

import pytest

from cluster.alerts.model import AlertState
from cluster.alerts.suppression import SuppressedSighting
from tests.api.factories import CAMERAS, DEPLOYMENT, PEOPLE, WATCHLIST, deployment_status, make_alert

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "control_room.png"
WAIT_MS = 10_000
INSTALL_HINT = (
    "install Debian's Chromium and Playwright for Python: apt-get install -y --no-install-recommends chromium;"
    " pip install playwright (no browser download: the test launches /usr/bin/chromium)"
)

sync_api = pytest.importorskip("playwright.sync_api", reason=INSTALL_HINT)
if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
    pytest.skip(f"no Chromium at {CHROMIUM}: {INSTALL_HINT}", allow_module_level=True)


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
