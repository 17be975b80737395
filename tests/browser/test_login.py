"""Logging in, the login error, and proof that page script can find no token anywhere."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect

from .helpers import Credentials, login, open_app, screenshot, wait_for_dashboard, wait_for_login_form
from .servers import Stack

JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

# Everything the page's own script can reach that might hold a token: cookies, both storages, IndexedDB,
# Cache Storage, the DOM, every global, the bodies and readable headers of every endpoint the app calls
# (including a fresh login-state check and an explicit refresh), and the resource timing entries.
SCAN_PAGE = """async () => {
  const texts = [];
  const add = (where, value) => { if (value !== undefined && value !== null) texts.push([where, String(value)]); };
  add('document.cookie', document.cookie);
  for (const [name, store] of [['localStorage', localStorage], ['sessionStorage', sessionStorage]]) {
    for (let i = 0; i < store.length; i++) add(`${name}[${store.key(i)}]`, store.getItem(store.key(i)));
  }
  add('html', document.documentElement.outerHTML);
  for (const name of Object.getOwnPropertyNames(window)) {
    let value;
    try { value = window[name]; } catch { continue; }
    if (typeof value === 'string') add(`window.${name}`, value);
    else if (value && typeof value === 'object' && !(value instanceof Node) && value !== window) {
      try { add(`window.${name}`, JSON.stringify(value)); } catch {}
    }
  }
  const calls = [
    ['GET', '/auth/session'], ['POST', '/auth/refresh'], ['GET', '/api/me'], ['GET', '/api/items'],
  ];
  const statuses = {};
  for (const [method, path] of calls) {
    const response = await fetch(path, { method, headers: { 'X-CSRF': '1' }, credentials: 'same-origin' });
    statuses[path] = response.status;
    add(`${path} body`, await response.text());
    for (const [name, value] of response.headers) add(`${path} header ${name}`, value);
  }
  for (const entry of performance.getEntries()) add('performance', entry.name);
  const databases = indexedDB.databases ? (await indexedDB.databases()).map((d) => d.name) : [];
  const cacheNames = window.caches ? await caches.keys() : [];
  return {
    texts, statuses, databases, cacheNames,
    cookie: document.cookie, local: localStorage.length, session: sessionStorage.length,
  };
}"""


def test_login_screen_and_wrong_password(page: Page, stack: Stack, user: Credentials) -> None:
    open_app(page, stack)
    wait_for_login_form(page)
    expect(page.get_by_label("Username")).to_be_focused()
    screenshot(page, "01-login")

    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_label("Password").press("Enter")  # the keyboard path, not only the mouse
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("wrong username or password")
    screenshot(page, "02-login-error")

    # An unknown user gets exactly the same words: the form does not say which part was wrong.
    page.get_by_label("Username").fill("nobody-by-that-name")
    page.get_by_label("Password").fill("whatever-password")
    page.get_by_role("button", name="Sign in").click()
    expect(alert).to_have_text("wrong username or password")
    expect(page.locator("#app-view")).to_be_hidden()


def test_login_shows_the_dashboard_and_survives_a_reload(page: Page, stack: Stack, user: Credentials) -> None:
    login(page, stack, user)
    expect(page.locator("#account-name")).to_have_text(user.username)
    expect(page.locator("#session-user")).to_have_text(user.username)
    expect(page.locator("#idle-countdown")).to_have_text(re.compile(r"^in \d+"))
    expect(page.locator("#absolute-countdown")).to_have_text(re.compile(r"^in \d+"))
    expect(page.locator("#claims-list [data-claim='sub'] dd")).not_to_be_empty()
    expect(page.locator("#claims-list [data-claim='aud'] dd")).to_have_text("frontdesk-api")

    page.reload()
    wait_for_dashboard(page)  # the HttpOnly cookie carries the session; no login prompt
    expect(page.locator("#account-name")).to_have_text(user.username)


def test_no_token_is_readable_by_page_script(
    page: Page, context: BrowserContext, stack: Stack, user: Credentials
) -> None:
    login(page, stack, user, remember=True)
    expect(page.locator("#clock-time")).not_to_have_attribute("data-ticks", "0")

    found = page.evaluate(SCAN_PAGE)

    assert found["statuses"] == {"/auth/session": 200, "/auth/refresh": 200, "/api/me": 200, "/api/items": 200}
    assert found["cookie"] == ""
    assert found["local"] == 0
    assert found["session"] == 0
    assert found["databases"] == []
    assert found["cacheNames"] == []
    leaks = [where for where, text in found["texts"] if JWT.search(text)]
    assert leaks == [], f"token-shaped strings readable by page script in: {leaks}"

    # The browser does hold the session, but only where script cannot reach it.
    cookies = context.cookies(stack.base_url)
    # The session cookie, and the device cookie of the login limits: both out of script's reach.
    assert sorted(c["name"] for c in cookies) == ["__Host-frontdesk", "__Host-frontdesk-device"]
    assert all(c["httpOnly"] and c["secure"] and c["sameSite"] == "Strict" for c in cookies)
    (cookie,) = [c for c in cookies if c["name"] == "__Host-frontdesk"]
    assert cookie["name"].startswith("__Host-")
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert cookie["expires"] > 0  # "remember me": a persistent cookie
    assert all(cookie["value"] not in text for _, text in found["texts"])


def test_without_remember_me_the_cookie_ends_with_the_browser(
    page: Page, context: BrowserContext, stack: Stack, user: Credentials
) -> None:
    login(page, stack, user, remember=False)
    (cookie,) = [c for c in context.cookies(stack.base_url) if c["name"] == "__Host-frontdesk"]
    assert cookie["expires"] == -1  # a session cookie: no Max-Age, gone when the browser closes


def test_pages_are_served_with_strict_security_headers(page: Page, stack: Stack) -> None:
    response = page.goto(stack.base_url + "/")
    assert response is not None
    headers = response.headers
    csp = headers["content-security-policy"]
    for directive in ("script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"]
    wait_for_login_form(page)  # and the app runs under that policy (the console watch sees any violation)


def test_login_form_is_labelled_and_keyboard_operable(page: Page, stack: Stack, user: Credentials) -> None:
    open_app(page, stack)
    wait_for_login_form(page)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, button')]
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                            && !el.textContent.trim())
            .map((el) => el.id || el.outerHTML)"""
    )
    assert unlabelled == []

    # Tab through the form in order and sign in without the mouse.
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type(user.username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(user.password)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Remember me")).to_be_focused()
    page.keyboard.press("Space")
    expect(page.get_by_label("Remember me")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    page.keyboard.press("Enter")
    wait_for_dashboard(page)
    expect(page.locator("#dashboard-title")).to_be_focused()  # focus moves to the new screen's heading
