"""The control room page in headless Chromium (Debian's package, driven by Playwright): an officer signs in,
an alert raised while the page is open appears without a reload, and the officer confirms it with a reason.

Also keeps docs/control_room.png, the page as an officer sees it.
"""

import time

import pytest

from cluster.alerts.model import AlertState
from tests.api.factories import CAMERAS, PEOPLE, deployment_status, make_alert
from tests.chromium import CHROMIUM, DOCS, INSTALL_HINT, chromium_missing

pytestmark = pytest.mark.slow

SCREENSHOT = DOCS / "control_room.png"
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
