"""Shared steps for the browser tests: logging in, waiting for page conditions, screenshots, console watch.

Waiting: the page's CSP (``script-src 'self'``, no ``unsafe-eval``) stops Playwright's ``wait_for_function``
from compiling its predicate inside the page, so ``wait_until`` polls with ``page.evaluate`` (which goes
through the DevTools protocol, not through page script) until the condition holds or a generous deadline
passes. Nothing here asserts on how long anything took.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Locator, Page, expect

from .servers import REPO, Stack

__all__ = [
    "Credentials",
    "ConsoleWatch",
    "SCREENSHOTS",
    "add_item",
    "claims",
    "login",
    "open_app",
    "screenshot",
    "wait_until",
    "wait_for_dashboard",
    "wait_for_login_form",
]

SCREENSHOTS = REPO / "artifacts" / "screenshots"
WAIT_TIMEOUT = 30.0
# Expected network failures the browser reports on the console: 401 from /auth/session on a fresh visit
# or after a logout, 401 from a wrong password, and EventSource refusing a JSON 401 after a logout.
EXPECTED_CONSOLE = (
    re.compile(r"Failed to load resource: the server responded with a status of 40[13]"),
    re.compile(r"EventSource's response has a MIME type .* Aborting the connection"),
)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass
class ConsoleWatch:
    """Collects console errors and uncaught exceptions of every tab it is attached to."""

    problems: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=lambda: list(EXPECTED_CONSOLE))

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if any(p.search(message.text) for p in self.allowed):
            return
        self.problems.append(f"console error: {message.text}")

    def assert_clean(self) -> None:
        assert not self.problems, "the page reported errors:\n" + "\n".join(self.problems)


def wait_until(page: Page, expression: str, *, timeout: float = WAIT_TIMEOUT, what: str = "") -> Any:
    """Poll a JS expression until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or expression}")
        page.wait_for_timeout(100)


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save ``artifacts/screenshots/<name>.png`` of the steady screen: toasts gone, scrolled to the top
    (a full-page capture of a scrolled page would paint the sticky header mid-page)."""
    expect(page.locator(".toast")).to_have_count(0)
    page.evaluate("window.scrollTo(0, 0)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def open_app(page: Page, stack: Stack) -> None:
    page.goto(stack.base_url + "/")


def wait_for_login_form(page: Page) -> Locator:
    form = page.locator("#login-form")
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#app-view")).to_be_hidden()
    return form


def wait_for_dashboard(page: Page) -> None:
    """The dashboard is up and its first calls through the proxy have answered."""
    expect(page.locator("#app-view")).to_be_visible()
    expect(page.locator("#login-view")).to_be_hidden()
    expect(page.locator("#claims-list [data-claim='jti']")).to_be_visible()
    expect(page.locator("#session-user")).not_to_be_empty()


def login(page: Page, stack: Stack, creds: Credentials, *, remember: bool = False) -> None:
    open_app(page, stack)
    wait_for_login_form(page)
    page.get_by_label("Username").fill(creds.username)
    page.get_by_label("Password").fill(creds.password)
    if remember:
        page.get_by_label("Remember me").check()
    page.get_by_role("button", name="Sign in").click()
    wait_for_dashboard(page)


def add_item(page: Page, text: str) -> None:
    page.get_by_label("New item").fill(text)
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#items-list .item", has_text=text)).to_be_visible()


def claims(page: Page) -> dict[str, str]:
    """The claims the upstream reported, as the claims panel shows them (``jti`` from its data attribute)."""
    result: dict[str, str] = page.evaluate(
        """() => ({
            jti: document.getElementById('claims-list').dataset.jti || '',
            exp: document.getElementById('claims-list').dataset.exp || '',
        })"""
    )
    return result
