"""Logout returns to the login form, an old tab follows by itself (its clock stream ends with the session),
and a tab's next calls land there too (with one event, not many)."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect

from .helpers import ConsoleWatch, Credentials, login, open_app, screenshot, wait_for_dashboard, wait_for_login_form
from .servers import Stack

# Several calls at once from a tab whose session has ended: the client must announce `logged-out` once.
CONCURRENT_401S = """async () => {
  const { frontdesk, api } = await import('/frontdesk.js');
  let events = 0;
  frontdesk.addEventListener('logged-out', () => { events += 1; });
  const results = await Promise.allSettled([
    api('/api/items'), api('/api/me'), api('/api/items'), api('/api/slow?ms=10'), api('/api/me'),
  ]);
  return { events, statuses: results.map((r) => (r.status === 'rejected' ? r.reason.status : 200)) };
}"""


def test_logout_returns_to_login_and_the_old_tab_follows(
    page: Page, context: BrowserContext, stack: Stack, user: Credentials, console: ConsoleWatch
) -> None:
    login(page, stack, user)
    old = context.new_page()
    console.attach(old)
    open_app(old, stack)
    wait_for_dashboard(old)

    page.get_by_role("button", name="Log out").click()
    wait_for_login_form(page)
    expect(page.locator("#login-notice")).to_have_text("You have signed out.")
    expect(page.locator("#account")).to_be_hidden()
    assert context.cookies(stack.base_url) == []
    screenshot(page, "07-logged-out")

    # The old tab follows by itself: its live clock stream is ended with the session (within a second), the
    # reconnect meets a 401, and the tab asks /auth/session and lands on the login form. (A call meeting a 401
    # is the other way a tab learns it; test_concurrent_401s_fire_one_logged_out_event covers it.)
    wait_for_login_form(old)
    expect(old.locator("#login-notice")).to_have_text("Your session has ended. Please sign in again.")
    expect(old.locator("#items-list .item")).to_have_count(0)  # the old user's data is gone from the page
    screenshot(old, "08-old-tab-after-logout")

    # A reload of the first tab does not bring the session back.
    page.reload()
    wait_for_login_form(page)
    old.close()


def test_concurrent_401s_fire_one_logged_out_event(page: Page, stack: Stack, user: Credentials) -> None:
    login(page, stack, user)
    # End the session behind the page's back, as another tab would.
    status = page.evaluate(
        "async () => (await fetch('/auth/logout', {method: 'POST', headers: {'X-CSRF': '1'}})).status"
    )
    assert status == 204

    result = page.evaluate(CONCURRENT_401S)
    assert result["statuses"] == [401] * 5
    assert result["events"] == 1
    wait_for_login_form(page)

    # After logging in again, a later 401 is announced again (once).
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    wait_for_dashboard(page)
    page.evaluate("async () => (await fetch('/auth/logout', {method: 'POST', headers: {'X-CSRF': '1'}})).status")
    assert page.evaluate(CONCURRENT_401S)["events"] == 1
