"""The dashboard on a wide screen (cards keep their own height, toasts stay off the claims panel), the login
form's remember-me lifetime as configured, and no toast left behind by a logout (nor brought back by Back).

Layout is asserted with element bounding boxes in real Chromium, in light and dark colour schemes, and
captured to ``artifacts/screenshots/`` for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from .conftest import DEFAULT_TIMEOUT_MS
from .helpers import SCREENSHOTS, ConsoleWatch, Credentials, add_item, login, open_app, wait_for_login_form
from .servers import Stack, add_user, running_stack

WIDE = {"width": 1600, "height": 1000}

BOX = "(el) => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; }"
# The bottom of a card's last visible child plus the card's bottom padding and border: where the card ends
# when it is as tall as its content, and not stretched by a taller neighbour in its grid row.
CONTENT_BOTTOM = """(el) => {
  const kids = [...el.children].filter((c) => c.offsetParent !== null || getComputedStyle(c).position === 'fixed');
  const style = getComputedStyle(el);
  const last = Math.max(...kids.map((c) => c.getBoundingClientRect().bottom));
  return last + parseFloat(style.paddingBottom) + parseFloat(style.borderBottomWidth);
}"""


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    across = a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
    down = a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
    return across and down


def wide_page(browser: Browser, console: ConsoleWatch, scheme: Any) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport=WIDE, color_scheme=scheme)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    console.attach(page)
    return context, page


def shot(page: Page, name: str) -> Path:
    """A screenshot of the screen as it is (toasts included, unlike ``helpers.screenshot``)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_wide_screen_cards_keep_their_height_and_toasts_stay_off_the_claims_panel(
    browser: Browser, stack: Stack, user: Credentials, console: ConsoleWatch, scheme: str
) -> None:
    context, page = wide_page(browser, console, scheme)
    try:
        login(page, stack, user)
        add_item(page, "A wide-screen item")
        expect(page.locator("#claims-list [data-claim='exp']")).to_be_visible()

        items, claims = page.locator("#items-panel"), page.locator("#claims-panel")
        items_box, claims_box = items.evaluate(BOX), claims.evaluate(BOX)
        assert items_box["x"] < claims_box["x"] and abs(items_box["y"] - claims_box["y"]) < 1  # side by side
        # The items card ends where its content ends, however tall the claims card beside it is.
        assert items_box["h"] < claims_box["h"], (items_box, claims_box)
        assert abs(items_box["y"] + items_box["h"] - items.evaluate(CONTENT_BOTTOM)) <= 2, items_box

        # A toast, with the claims panel at the top of the screen and then at its bottom: never over it.
        toast = page.locator(".toast", has_text="A wide-screen item")
        expect(toast).to_be_visible()
        for block in ("start", "end"):
            claims.evaluate(f"(el) => el.scrollIntoView({{block: '{block}'}})")
            toast_box, panel_box = toast.evaluate(BOX), claims.evaluate(BOX)
            assert not overlaps(toast_box, panel_box), (block, toast_box, panel_box)
            # Inside the sticky top bar: it can only cover what the bar itself already covers.
            bar = page.locator(".topbar").evaluate(BOX)
            toast_bottom, bar_bottom = toast_box["y"] + toast_box["h"], bar["y"] + bar["h"]
            assert bar["y"] <= toast_box["y"] and toast_bottom <= bar_bottom, (toast_box, bar)
            for other in ("#account", ".brand"):
                assert not overlaps(toast_box, page.locator(other).evaluate(BOX)), other
        shot(page, f"20-wide-{scheme}-toast")
        expect(page.locator(".toast")).to_have_count(0)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / f"21-wide-{scheme}.png"), full_page=True)
    finally:
        context.close()


def test_the_remember_me_label_shows_the_configured_lifetime(page: Page, stack: Stack) -> None:
    # The browser stack is configured with remember_ttl = "1h".
    open_app(page, stack)
    wait_for_login_form(page)
    expect(page.locator("label[for='remember']")).to_have_text("Remember me for 1 hour on this device")


@pytest.fixture(scope="module")
def fortnight_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("frontdesk-remember"), remember_ttl="14d") as running:
        yield running


def test_the_remember_me_label_follows_a_configured_number_of_days(
    page: Page, fortnight_stack: Stack, console: ConsoleWatch
) -> None:
    open_app(page, fortnight_stack)
    wait_for_login_form(page)
    expect(page.locator("label[for='remember']")).to_have_text("Remember me for 14 days on this device")
    page.screenshot(path=str(SCREENSHOTS / "22-login-remember-14-days.png"))
    # And a remembered login really lasts that long (the label is the server's word, not a guess).
    creds = Credentials(username="fortnight", password="fortnight-pw-1")
    add_user(fortnight_stack, creds.username, creds.password)
    login(page, fortnight_stack, creds, remember=True)
    # The session cookie (the device cookie beside it has its own lifetime, [login] device_ttl).
    (cookie,) = [c for c in page.context.cookies(fortnight_stack.base_url) if c["name"] == "__Host-frontdesk"]
    assert 13.9 * 86400 < cookie["expires"] - page.evaluate("Date.now() / 1000") <= 14 * 86400


def test_toasts_are_cleared_at_logout_and_stay_gone_after_back(page: Page, stack: Stack, user: Credentials) -> None:
    login(page, stack, user)
    add_item(page, "Private item name")
    named = page.locator(".toast", has_text="Private item name")
    expect(named).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    wait_for_login_form(page)
    # At once, not after the toast's own lifetime: a toast naming the user's data must not outlive the session.
    assert page.locator(".toast").count() == 0
    shot(page, "23-logged-out-no-toast")

    # Leave, then come Back: the page shown again (from the back/forward cache or reloaded) has no toast either.
    page.goto("about:blank")
    page.go_back()
    wait_for_login_form(page)
    assert page.locator(".toast").count() == 0
    assert page.locator("#items-list .item").count() == 0
