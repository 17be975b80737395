"""Signing in with an OpenID Provider in real Chromium against the real provider (npm oidc-provider): the SPA's
"Sign in with ..." button, the provider's own login and consent pages, back on the dashboard with calls through
the proxy reaching the demo upstream; a second provider beside the first; frontdesk.js loginWith."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.oidc_provider import OidcProvider

from .helpers import ConsoleWatch, screenshot, wait_for_dashboard, wait_for_login_form
from .servers import Stack, running_stack


def oidc_tables(provider: OidcProvider) -> str:
    def table(name: str, client_id: str, method: str) -> str:
        return (
            f'\n[[oidc]]\nname = "{name}"\nissuer = "{provider.issuer}"\nclient_id = "{client_id}"\n'
            f'scopes = ["openid", "profile", "email", "groups"]\ntoken_endpoint_auth_method = "{method}"\n'
        )

    return table("corp", "frontdesk", "client_secret_basic") + table("partner", "frontdesk-post", "client_secret_post")


def provider_env(provider: OidcProvider) -> dict[str, str]:
    return {**provider.secret_env("corp", "frontdesk"), **provider.secret_env("partner", "frontdesk-post")}


@pytest.fixture(scope="module")
def oidc_stack(tmp_path_factory: pytest.TempPathFactory, oidc_provider: OidcProvider) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("frontdesk-oidc-browser")
    with running_stack(workdir, extra_config=oidc_tables(oidc_provider), extra_env=provider_env(oidc_provider)) as up:
        yield up


@pytest.fixture
def console(console: ConsoleWatch) -> ConsoleWatch:
    # The provider's own pages (not frontdesk's) import a web font from the internet, which the test machine
    # cannot resolve; frontdesk's pages load nothing from another host.
    console.allow(r"Failed to load resource: net::ERR_NAME_NOT_RESOLVED")
    return console


def sign_in_at_provider(page: Page, login: str) -> None:
    """The provider's devInteractions pages: its login form, then its consent form."""
    expect(page.locator("input[name=login]")).to_be_visible()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any-password")
    page.locator("button[type=submit]").click()
    expect(page.get_by_role("button", name="Continue")).to_be_visible()
    page.get_by_role("button", name="Continue").click()


def api_me(page: Page) -> dict[str, object]:
    answer: dict[str, object] = page.evaluate(
        """async () => {
            const r = await fetch('/api/me', { headers: { 'X-CSRF': '1' }, credentials: 'same-origin' });
            return { status: r.status, body: await r.json() };
        }"""
    )
    return answer


def test_sign_in_with_a_provider_in_chromium(page: Page, oidc_stack: Stack, oidc_provider: OidcProvider) -> None:
    page.goto(oidc_stack.base_url + "/")
    wait_for_login_form(page)
    corp = page.get_by_role("button", name="Sign in with corp")
    expect(corp).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with partner")).to_be_visible()
    expect(page.locator("#login-or")).to_be_visible()  # the password form stays: password login is on
    screenshot(page, "oidc-01-login-buttons")

    corp.click()
    page.wait_for_url(f"{oidc_provider.issuer}/**")  # the provider's own page, not frontdesk's
    screenshot(page, "oidc-02-provider-login")
    sign_in_at_provider(page, "alice")

    page.wait_for_url(oidc_stack.base_url + "/")
    wait_for_dashboard(page)
    expect(page.locator("#account-name")).to_have_text("alice")
    screenshot(page, "oidc-03-dashboard")
    me = api_me(page)  # through the proxy, with frontdesk's access token, to the demo upstream
    assert me["status"] == 200, me
    body = me["body"]
    assert isinstance(body, dict) and body["claims"]["sub"] == "oidc:corp:alice", body
    # Nothing of the provider's tokens (or frontdesk's) reaches page script.
    assert page.evaluate("document.cookie") == ""


def test_a_second_provider_side_by_side(page: Page, oidc_stack: Stack, oidc_provider: OidcProvider) -> None:
    page.goto(oidc_stack.base_url + "/")
    wait_for_login_form(page)
    page.get_by_role("button", name="Sign in with partner").click()
    page.wait_for_url(f"{oidc_provider.issuer}/**")
    sign_in_at_provider(page, "bob")
    wait_for_dashboard(page)
    expect(page.locator("#account-name")).to_have_text("bob")
    assert api_me(page)["status"] == 200


def test_login_with_helper_returns_to_the_page_it_names(
    page: Page, oidc_stack: Stack, oidc_provider: OidcProvider
) -> None:
    page.goto(oidc_stack.base_url + "/")
    wait_for_login_form(page)
    url = page.evaluate("async () => (await import('/frontdesk.js')).frontdesk.loginUrl('corp', '/?from=test')")
    assert url == f"{oidc_stack.base_url}/auth/oidc/corp/login?return_to=%2F%3Ffrom%3Dtest"
    page.evaluate("async () => (await import('/frontdesk.js')).loginWith('corp', '/?from=test')")
    page.wait_for_url(f"{oidc_provider.issuer}/**")
    sign_in_at_provider(page, "alice")
    page.wait_for_url(oidc_stack.base_url + "/?from=test")
    wait_for_dashboard(page)


def test_logout_ends_the_session_at_the_provider_too(
    page: Page, oidc_stack: Stack, oidc_provider: OidcProvider
) -> None:
    """RP-initiated logout: the SPA's sign-out button ends the frontdesk session, then the browser follows the
    link the logout answered to the provider's end-session page and comes back to the app."""
    page.goto(oidc_stack.base_url + "/")
    wait_for_login_form(page)
    page.get_by_role("button", name="Sign in with corp").click()
    page.wait_for_url(f"{oidc_provider.issuer}/**")
    sign_in_at_provider(page, "alice")
    wait_for_dashboard(page)
    page.locator("#logout-button").click()
    page.wait_for_url(f"{oidc_provider.issuer}/**")  # the provider asks to confirm signing out there
    screenshot(page, "oidc-04-provider-logout")
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(oidc_stack.base_url + "/?state=*")
    wait_for_login_form(page)
    # Signed out at the provider as well: signing in again asks for the login, not straight through.
    page.get_by_role("button", name="Sign in with corp").click()
    page.wait_for_url(f"{oidc_provider.issuer}/**")
    expect(page.locator("input[name=login]")).to_be_visible()


def test_cancelling_at_the_provider_lands_on_the_login_page_with_the_reason(
    page: Page, oidc_stack: Stack, oidc_provider: OidcProvider
) -> None:
    """The user presses the provider's Cancel: the provider sends error=access_denied back, the gateway answers
    the navigation with a redirect to the SPA (a reason code, no JSON, no session), and the login page says it."""
    page.goto(oidc_stack.base_url + "/")
    wait_for_login_form(page)
    page.get_by_role("button", name="Sign in with corp").click()
    page.wait_for_url(f"{oidc_provider.issuer}/**")
    expect(page.locator("input[name=login]")).to_be_visible()
    callbacks: list[tuple[int, str | None]] = []
    page.on(
        "response",
        lambda r: callbacks.append((r.status, r.headers.get("location"))) if "/callback" in r.url else None,
    )
    page.get_by_role("link", name="[ Cancel ]").click()

    wait_for_login_form(page)
    message = page.locator("#login-provider-error")
    expect(message).to_be_visible()
    expect(message).to_have_text("Sign-in was cancelled, or this account is not allowed to sign in here.")
    screenshot(page, "oidc-05-cancelled")
    assert callbacks == [(302, "/?login_error=access_denied")]
    assert page.url == oidc_stack.base_url + "/"  # the reason is taken off the address: a reload says nothing
    assert not [c for c in page.context.cookies() if c["name"] == "__Host-frontdesk"], "no session was started"
    status = page.evaluate("async () => (await fetch('/auth/session', { headers: { 'X-CSRF': '1' } })).status")
    assert status == 401
    page.reload()
    wait_for_login_form(page)
    expect(message).to_be_hidden()


def test_a_login_that_cannot_start_lands_on_the_login_page_with_the_reason(page: Page, oidc_stack: Stack) -> None:
    """A stale bookmark of a provider's login URL (no such provider any more): Chromium's navigation gets the
    gateway's redirect to the SPA (not a JSON page), and the login page says it in plain words. A provider that
    is down takes the same path with ``provider_unavailable`` (tests/gateway/test_oidc_login.py)."""
    answers: list[tuple[int, str | None]] = []
    page.on(
        "response", lambda r: answers.append((r.status, r.headers.get("location"))) if "/auth/oidc/" in r.url else None
    )
    page.goto(oidc_stack.base_url + "/auth/oidc/gone/login?return_to=/orders")
    wait_for_login_form(page)
    message = page.locator("#login-provider-error")
    expect(message).to_have_text("That sign-in option is not available here. Please choose another way to sign in.")
    assert answers == [(302, "/?login_error=unknown_provider")]
    assert page.url == oidc_stack.base_url + "/"
    expect(page.get_by_role("button", name="Sign in with corp")).to_be_visible()  # the other ways stay


def test_the_login_page_never_shows_text_from_the_address(page: Page, oidc_stack: Stack) -> None:
    page.goto(oidc_stack.base_url + "/?login_error=%3Cb%3ECall%200800-SCAM%3C/b%3E")
    wait_for_login_form(page)
    message = page.locator("#login-provider-error")
    expect(message).to_have_text("Sign-in with your identity provider failed. Please try again.")
    assert "SCAM" not in page.content()
