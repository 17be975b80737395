"""The "Your devices" panel in real Chromium: a laptop and a phone (two browser contexts, two sessions of one
user) see each other in the list; the laptop signs the phone out and the phone's tab follows to the login form by
itself (its live clock stream is cut with the session); "Sign out everywhere" on the phone then takes the laptop
out too."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from .conftest import DEFAULT_TIMEOUT_MS
from .helpers import ConsoleWatch, Credentials, login, screenshot, wait_for_login_form
from .servers import Stack

CHROME_ON_LINUX = re.compile(r"^Chrome \d+ on Linux")


@pytest.fixture
def phone(browser: Browser, console: ConsoleWatch) -> Iterator[Page]:
    """A second device: its own browser context, so its own cookies and its own session."""
    context: BrowserContext = browser.new_context(viewport={"width": 420, "height": 860})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    tab = context.new_page()
    console.attach(tab)
    yield tab
    context.close()


def devices(page: Page) -> Locator:
    return page.locator("#devices-list .device")


def test_sign_out_another_device_then_everywhere(page: Page, phone: Page, stack: Stack, user: Credentials) -> None:
    login(page, stack, user)  # the laptop
    login(phone, stack, user)
    expect(phone.locator("#clock-status-text")).to_have_text("Live")  # the phone streams the clock

    # The laptop's list (re-read when the tab comes back; here: reloaded) shows both, itself marked.
    page.reload()
    expect(devices(page)).to_have_count(2)
    expect(page.locator("#devices-count")).to_have_text("2")
    this = page.locator("#devices-list .device[data-current='true']")
    other = page.locator("#devices-list .device[data-current='false']")
    expect(this).to_have_count(1)
    expect(this.locator(".device__this")).to_have_text("This device")
    expect(this.locator(".device__name")).to_contain_text(CHROME_ON_LINUX)
    expect(other.locator(".device__meta")).to_contain_text("127.0.0.1")
    screenshot(page, "30-your-devices")

    # Sign the phone out from the laptop: the list shrinks, the phone's tab follows by itself.
    other.get_by_role("button", name=re.compile(r"^Sign out Chrome")).click()
    expect(devices(page)).to_have_count(1)
    expect(page.locator(".toast")).to_contain_text("Signed out Chrome")
    wait_for_login_form(phone)
    expect(phone.locator("#login-notice")).to_have_text("Your session has ended. Please sign in again.")
    expect(page.locator("#app-view")).to_be_visible()  # the laptop is still signed in

    # The phone signs in again, and signs out everywhere: the laptop follows to the login form.
    login(phone, stack, user)
    expect(page.locator("#clock-status-text")).to_have_text("Live")
    phone.get_by_role("button", name="Sign out everywhere").click()
    wait_for_login_form(phone)
    expect(phone.locator("#login-notice")).to_have_text("You have signed out.")
    wait_for_login_form(page)
    expect(page.locator("#login-notice")).to_have_text("Your session has ended. Please sign in again.")
    expect(devices(page)).to_have_count(0)  # nothing of the list is left on the page
    status = page.evaluate("async () => (await fetch('/auth/session', {headers: {'X-CSRF': '1'}})).status")
    assert status == 401


def test_this_devices_own_sign_out_button_is_a_logout(page: Page, stack: Stack, user: Credentials) -> None:
    login(page, stack, user)
    expect(devices(page)).to_have_count(1)
    page.locator("#devices-list .device[data-current='true']").get_by_role("button").click()
    wait_for_login_form(page)
    expect(page.locator("#login-notice")).to_have_text("You have signed out.")
    assert page.context.cookies(stack.base_url) == []
