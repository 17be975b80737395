"""The JS client follows the server's settings: a gateway whose ``[csrf] header`` is not ``X-CSRF`` still runs
the demo, and ``new FrontdeskClient({ base, authPrefix, csrfHeader })`` sends what it was given."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from playwright.sync_api import Page, Request, Route, expect

from .helpers import Credentials, add_item, login, wait_for_login_form
from .servers import Stack, add_user, running_stack

CUSTOM_HEADER = "X-Requested-By"


@pytest.fixture(scope="module")
def custom_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("frontdesk-csrf-header"), csrf_header=CUSTOM_HEADER) as running:
        yield running


@pytest.fixture
def custom_user(custom_stack: Stack) -> Credentials:
    creds = Credentials(username=f"user{secrets.token_hex(4)}", password=secrets.token_urlsafe(12))
    add_user(custom_stack, creds.username, creds.password)
    return creds


def _record_gateway_calls(page: Page) -> list[Request]:
    """Every fetch/XHR the page sends (``/auth/*`` and ``/api/*`` calls; not documents, scripts, streams)."""
    calls: list[Request] = []
    page.on("request", lambda request: calls.append(request) if request.resource_type == "fetch" else None)
    return calls


def test_the_demo_works_on_a_gateway_with_another_csrf_header(
    page: Page, custom_stack: Stack, custom_user: Credentials
) -> None:
    calls = _record_gateway_calls(page)
    login(page, custom_stack, custom_user)  # /auth/config, /auth/session, /auth/login, then the panels' calls
    add_item(page, "Sent with X-Requested-By")
    page.reload()
    expect(page.locator("#items-list")).to_contain_text("Sent with X-Requested-By")

    page.get_by_role("button", name="Log out").click()
    wait_for_login_form(page)
    expect(page.locator("#login-notice")).to_have_text("You have signed out.")
    assert page.context.cookies(custom_stack.base_url) == []

    paths = {urlsplit(call.url).path for call in calls}
    assert {"/auth/config", "/auth/session", "/auth/login", "/auth/logout", "/api/items", "/api/me"} <= paths
    assert [c.url for c in calls if c.headers.get(CUSTOM_HEADER.lower()) != "1"] == []
    assert [c.url for c in calls if "x-csrf" in c.headers] == []


def test_the_gateway_writes_its_settings_into_the_page(page: Page, custom_stack: Stack) -> None:
    page.goto(custom_stack.base_url + "/settings/profile")  # a client-side route gets the same shell
    wait_for_login_form(page)
    settings = page.evaluate(
        """async () => {
          const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content;
          const { frontdesk, FrontdeskClient } = await import('/frontdesk.js');
          const overridden = FrontdeskClient.fromPage({ csrfHeader: 'X-Other' });
          return {
            meta: [meta('frontdesk-auth-prefix'), meta('frontdesk-csrf-header')],
            shared: [frontdesk.base, frontdesk.authPrefix, frontdesk.csrfHeader],
            overridden: [overridden.authPrefix, overridden.csrfHeader],
            tags: document.querySelectorAll('meta[name^="frontdesk-"]').length,
          };
        }"""
    )
    assert settings == {
        "meta": ["/auth", "x-requested-by"],
        "shared": ["", "/auth", "x-requested-by"],
        "overridden": ["/auth", "X-Other"],
        "tags": 2,  # index.html's own tags filled in, none added twice
    }


# A client built with explicit options against the X-Requested-By gateway: it logs in, calls the API,
# refreshes, logs out; a client left on the default header is refused by the same gateway.
EXPLICIT_CLIENT = """async ({ username, password, options }) => {
  const { FrontdeskClient, FrontdeskError } = await import('/frontdesk.js');
  const client = new FrontdeskClient(options);
  let events = 0;
  client.addEventListener('logged-out', () => { events += 1; });
  const settings = [client.base, client.authPrefix, client.csrfHeader];
  const loggedIn = await client.login(username, password, { remember: false });
  const added = await client.api('/api/items', { method: 'POST', body: { text: 'explicit' } });
  const { items } = await client.api('/api/items');
  const refreshed = await client.refresh();
  await client.logout();
  const afterLogout = await client.session();
  let refusal = null;
  try {
    await new FrontdeskClient({ base: options.base, authPrefix: options.authPrefix }).login(username, password);
  } catch (error) {
    refusal = error instanceof FrontdeskError ? [error.status, error.code] : String(error);
  }
  return {
    settings, user: loggedIn.user.username, added: added.text, items: items.map((i) => i.text),
    refreshed: refreshed.user.username, afterLogout, events, refusal,
  };
}"""


def test_an_explicit_client_sends_its_header(page: Page, custom_stack: Stack, custom_user: Credentials) -> None:
    page.goto(custom_stack.base_url + "/")
    wait_for_login_form(page)
    calls = _record_gateway_calls(page)
    options = {"base": custom_stack.base_url + "/", "csrfHeader": CUSTOM_HEADER}
    result = page.evaluate(
        EXPLICIT_CLIENT, {"username": custom_user.username, "password": custom_user.password, "options": options}
    )

    assert result == {
        "settings": [custom_stack.base_url, "/auth", CUSTOM_HEADER],  # the trailing slash of base dropped
        "user": custom_user.username,
        "added": "explicit",
        "items": ["explicit"],
        "refreshed": custom_user.username,
        "afterLogout": None,
        "events": 1,  # logout fired it; the 401 from session() right after did not fire a second one
        "refusal": [403, "csrf_rejected"],  # the default X-CSRF header is not what this gateway asks for
    }
    explicit = calls[:-1]  # the last one is the default client's refused login
    assert [urlsplit(c.url).path for c in explicit] == [
        "/auth/login", "/api/items", "/api/items", "/auth/refresh", "/auth/logout", "/auth/session",
    ]  # fmt: skip
    assert all(c.headers.get("x-requested-by") == "1" and "x-csrf" not in c.headers for c in explicit)
    assert calls[-1].headers.get("x-csrf") == "1" and "x-requested-by" not in calls[-1].headers


def test_an_explicit_client_uses_its_auth_prefix(page: Page, custom_stack: Stack, custom_user: Credentials) -> None:
    """The auth endpoints mounted under ``/account`` (as a front proxy or session mode's ``prefix=`` would):
    the browser's calls to ``/account/*`` are recorded, then answered by the gateway's ``/auth/*``."""
    page.goto(custom_stack.base_url + "/")
    wait_for_login_form(page)
    seen: list[tuple[str, str, str | None]] = []

    def remount(route: Route) -> None:
        request = route.request
        parts = urlsplit(request.url)
        seen.append((request.method, parts.path, request.headers.get("x-requested-by")))
        route.continue_(url=urlunsplit(parts._replace(path=parts.path.replace("/account/", "/auth/", 1))))

    page.route("**/account/**", remount)
    options = {"authPrefix": "/account/", "csrfHeader": CUSTOM_HEADER}
    result = page.evaluate(
        EXPLICIT_CLIENT, {"username": custom_user.username, "password": custom_user.password, "options": options}
    )

    assert result["settings"] == ["", "/account", CUSTOM_HEADER]
    assert result["user"] == custom_user.username and result["afterLogout"] is None
    assert seen == [
        ("POST", "/account/login", "1"),
        ("POST", "/account/refresh", "1"),
        ("POST", "/account/logout", "1"),
        ("GET", "/account/session", "1"),
        ("POST", "/account/login", None),  # the default client's X-CSRF-only login, refused by the gateway
    ]


def test_bad_client_options_fail_when_the_client_is_built(page: Page, stack: Stack) -> None:
    page.goto(stack.base_url + "/")
    wait_for_login_form(page)
    errors = page.evaluate(
        """async () => {
          const { FrontdeskClient } = await import('/frontdesk.js');
          const attempt = (options) => {
            try { new FrontdeskClient(options); return null; } catch (error) { return error.name; }
          };
          return [
            attempt({ csrfHeader: 'X CSRF' }), attempt({ csrfHeader: '' }), attempt({ authPrefix: 'auth' }),
            attempt({ authPrefix: '/auth?x' }), attempt({ base: 42 }), attempt({}), attempt(''),
          ];
        }"""
    )
    assert errors == ["TypeError"] * 5 + [None, None]
