"""The server-sent-events clock keeps ticking through the gateway across an access-token expiry."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .helpers import Credentials, claims, login, screenshot, wait_until
from .servers import Stack

TICKS = "Number(document.getElementById('clock-time').dataset.ticks)"


def test_clock_keeps_ticking_across_an_access_token_expiry(page: Page, stack: Stack, user: Credentials) -> None:
    login(page, stack, user)
    expect(page.locator("#clock-status")).to_have_attribute("data-state", "live")
    wait_until(page, f"{TICKS} >= 2", what="the first clock events")

    # The stream opened with an access token no later than the one /api/me shows (both right after login).
    # Wait until that token has expired, with the gateway's leeway and one more lifetime to spare...
    exp = int(claims(page)["exp"])
    wait_until(
        page,
        f"Date.now() / 1000 > {exp + stack.access_ttl + 2}",
        timeout=60,
        what="the access token to expire",
    )
    seen = page.evaluate(TICKS)

    # ...then the clock must still be receiving events, with no login prompt.
    wait_until(page, f"{TICKS} >= {seen + 3}", what="clock events after the access token expired")
    expect(page.locator("#clock-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#login-view")).to_be_hidden()
    expect(page.locator("#clock-time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    screenshot(page, "06-clock-after-expiry", full_page=False)
