"""Browser tests: Debian's Chromium driven by Playwright against a real gateway and demo upstream.

One gateway + upstream for the whole session (short token lifetimes, see ``servers.TEST_CONFIG``); a fresh
user and a fresh browser context (no cookies) for every test, so tests never see each other's state.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from .helpers import ConsoleWatch, Credentials
from .servers import Stack, add_user, running_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous: CI machines can be slow, and every wait is for a condition, never a fixed time.
DEFAULT_TIMEOUT_MS = 20_000
expect.set_options(timeout=DEFAULT_TIMEOUT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("frontdesk-browser")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module, not per session: while Playwright's sync API is active it keeps an asyncio loop running
    on this thread, which would break every async test that pytest runs after the browser tests."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def user(stack: Stack) -> Credentials:
    creds = Credentials(username=f"user{secrets.token_hex(4)}", password=secrets.token_urlsafe(12))
    add_user(stack, creds.username, creds.password)
    return creds


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(DEFAULT_TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
def page(context: BrowserContext, console: ConsoleWatch) -> Iterator[Page]:
    """A tab whose console errors and uncaught exceptions fail the test (CSP violations show up there)."""
    tab = context.new_page()
    console.attach(tab)
    yield tab
    console.assert_clean()
