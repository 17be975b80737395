"""The items list through the proxy, and silent refresh after several access-token lifetimes of idleness."""

from __future__ import annotations

import time

from playwright.sync_api import BrowserContext, Page, expect

from .helpers import ConsoleWatch, Credentials, add_item, claims, login, open_app, screenshot, wait_for_dashboard
from .servers import Stack


def test_items_create_list_delete(page: Page, stack: Stack, user: Credentials) -> None:
    login(page, stack, user)
    expect(page.locator("#items-empty")).to_be_visible()

    for text in ("Buy oat milk", "Review pull request #42", "Book the train to Lyon"):
        add_item(page, text)
    expect(page.locator("#items-list .item")).to_have_count(3)
    expect(page.locator("#items-count")).to_have_text("3")
    screenshot(page, "03-dashboard")

    # Delete by keyboard: the delete button is reachable and labelled with the item's text.
    delete = page.get_by_role("button", name="Delete “Review pull request #42”")
    delete.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#items-list .item")).to_have_count(2)
    expect(page.locator("#items-list")).not_to_contain_text("Review pull request #42")

    # Stored upstream, per user: a reload shows the same list.
    page.reload()
    wait_for_dashboard(page)
    expect(page.locator("#items-list .item")).to_have_count(2)
    expect(page.locator("#items-list")).to_contain_text("Buy oat milk")


def test_dashboard_on_a_phone(page: Page, stack: Stack, user: Credentials) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, stack, user)
    add_item(page, "Call the plumber")
    # Nothing wider than the screen: no horizontal scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "04-dashboard-phone")


def test_dashboard_in_dark_mode(page: Page, stack: Stack, user: Credentials) -> None:
    page.emulate_media(color_scheme="dark")
    login(page, stack, user)
    add_item(page, "Ship the release notes")
    assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    screenshot(page, "11-dashboard-dark")


def _idle_past(stack: Stack, exp: int, lifetimes: int) -> None:
    """Let ``lifetimes`` access-token lifetimes pass after ``exp`` without the test touching the page.

    A wait, not a timing assertion: the condition is only that the clock has moved past the expiry.
    """
    until = exp + lifetimes * stack.access_ttl + 1
    while time.time() < until:
        time.sleep(0.25)


def test_silent_refresh_after_idle_also_in_a_second_tab(
    page: Page, context: BrowserContext, stack: Stack, user: Credentials, console: ConsoleWatch
) -> None:
    login(page, stack, user)
    add_item(page, "written before the idle time")
    first = claims(page)
    assert first["jti"] and first["exp"]

    # Idle past the first access token, then open a second tab: it goes straight to the dashboard.
    _idle_past(stack, int(first["exp"]), 1)
    second = context.new_page()
    console.attach(second)
    open_app(second, stack)
    wait_for_dashboard(second)
    expect(second.locator("#items-list")).to_contain_text("written before the idle time")
    second_claims = claims(second)

    # More idle time, several lifetimes past every token either tab has seen.
    _idle_past(stack, max(int(first["exp"]), int(second_claims["exp"])), 3)

    # The next click in the first tab just works: no login prompt, and a new access token answered.
    add_item(page, "written after the idle time")
    expect(page.locator("#login-view")).to_be_hidden()
    page.get_by_role("button", name="Ask again").click()
    expect(page.locator("#claims-list")).not_to_have_attribute("data-jti", first["jti"])
    expect(page.locator("#claims-badge")).to_be_visible()  # "New token"
    screenshot(page, "05-after-silent-refresh")

    # And in the second tab too; after a reload it lists what both tabs wrote.
    add_item(second, "written in the second tab")
    expect(second.locator("#login-view")).to_be_hidden()
    second.reload()
    wait_for_dashboard(second)
    expect(second.locator("#items-list .item")).to_have_count(3)
    expect(second.locator("#items-list")).to_contain_text("written after the idle time")
    second.close()
