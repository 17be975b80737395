"""Signing in at a real OpenID Provider (npm oidc-provider, tests/oidc) through a real ``frontdesk serve``:
the login redirect, the callback's every check, the session it starts, the allow-lists and the password
switch. The provider's login and consent forms are driven with httpx (tests/browser does it in Chromium)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from live_gateway import GatewayProcess, set_cookies
from oidc_flow import (
    NAVIGATION,
    callback_path,
    finish_login,
    gateway_tables,
    provider_table,
    secrets_env,
    sign_in,
    start_login,
    with_params,
)

from frontdesk.gateway.oidc_login import LOGIN_ERROR_REASONS
from frontdesk.middleware.oidc import LOGIN_STATE_COOKIE
from tests.support import free_port
from tests.support.oidc_provider import TEST_TOKEN_KEY, OidcProvider, provider_login, running_provider

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gw(
    gateway_factory: Callable[..., GatewayProcess], gateway_secrets: dict[str, str], oidc_provider: OidcProvider
) -> GatewayProcess:
    return gateway_factory(
        "oidc", env={**gateway_secrets, **secrets_env(oidc_provider)}, users={"pat": "pat-password-1"},
        **gateway_tables(oidc_provider),
    )  # fmt: skip


JSON = {"Accept": "application/json"}  # what a script sends (a fetch also sends Sec-Fetch-Mode: cors)


def error_of(response: Any) -> str:
    return str(response.json()["error"])


def assert_no_session(response: Any) -> None:
    names = {c.name: c for c in set_cookies(response)}
    assert "__Host-frontdesk" not in names, "a failed login must not start a session"
    assert names[LOGIN_STATE_COOKIE].clears, "every callback answer ends the login"


def test_login_redirects_to_the_provider_with_pkce_state_nonce(gw: GatewayProcess, oidc_provider: OidcProvider) -> None:
    with gw.client() as client:
        started = start_login(client)
    q = started.query
    assert started.authorize_url.startswith(oidc_provider.metadata()["authorization_endpoint"] + "?")
    assert q["response_type"] == "code" and q["client_id"] == "frontdesk"
    assert q["redirect_uri"] == f"{gw.url}/auth/oidc/corp/callback"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert len(q["state"]) >= 32 and len(q["nonce"]) >= 32 and q["state"] != q["nonce"]
    assert q["scope"] == "openid profile email groups offline_access"
    cookie = started.state_cookie
    assert cookie.attrs["samesite"] == "Lax" and "httponly" in cookie.attrs and "secure" in cookie.attrs
    assert cookie.attrs["path"] == "/" and cookie.max_age == 600
    assert started.response.headers["cache-control"] == "no-store"
    assert started.response.headers["x-content-type-options"] == "nosniff"  # the edge layer's headers


def test_the_whole_flow_starts_an_ordinary_session(gw: GatewayProcess) -> None:
    with gw.client() as client:
        done = sign_in(client, "alice", return_to="/orders?id=7")
        assert done.status_code == 302, done.text
        assert done.headers["location"] == "/orders?id=7"
        assert done.headers["x-content-type-options"] == "nosniff"
        cookies = {c.name: c for c in set_cookies(done)}
        assert cookies[LOGIN_STATE_COOKIE].clears
        refresh = cookies["__Host-frontdesk"]
        assert refresh.attrs["samesite"] == "Strict" and "httponly" in refresh.attrs
        session = client.session()
        assert session.status_code == 200
        assert session.json()["user"] == {"id": "oidc:corp:alice", "username": "alice"}
        # The same engine: rotation works, logout ends it.
        assert client.refresh().status_code == 200
        assert client.logout().status_code == 200  # with the RP-initiated logout link (test_oidc_idp_tokens.py)
        assert client.session().status_code == 401
    row = gw.query("SELECT user_id, username FROM sessions WHERE user_id = ?", ("oidc:corp:alice",))
    assert row and row[0] == ("oidc:corp:alice", "alice")


def test_a_second_provider_with_client_secret_post(gw: GatewayProcess, oidc_provider: OidcProvider) -> None:
    before = oidc_provider.counts()["grants"].get("authorization_code", 0)
    with gw.client() as client:
        done = sign_in(client, "bob", name="partner", return_to=None)
        assert done.status_code == 302 and done.headers["location"] == "/"
        assert client.session().json()["user"] == {"id": "oidc:partner:bob", "username": "bob"}
    assert oidc_provider.counts()["grants"]["authorization_code"] == before + 1


@pytest.mark.parametrize(
    "return_to",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)"],
)
def test_open_redirects_in_return_to_land_on_the_root(gw: GatewayProcess, return_to: str) -> None:
    with gw.client() as client:
        done = sign_in(client, "alice", return_to=return_to)
    assert done.status_code == 302 and done.headers["location"] == "/"


def test_tampered_missing_and_mismatched_state(gw: GatewayProcess) -> None:
    with gw.client() as client:
        started = start_login(client)
        back = provider_login(started.authorize_url, "alice")
        value = started.state_cookie.value
        tampered = value[:-3] + ("xyz" if not value.endswith("xyz") else "abc")
        for cookie, url in [
            (tampered, back),
            (None, back),
            (value, with_params(back, state="not-the-state")),
            (value, with_params(back, state=None)),
        ]:
            answer = finish_login(client, url, cookie)
            assert answer.status_code == 400, answer.text
            assert error_of(answer) == "invalid_state"
            if cookie is not None:
                assert_no_session(answer)
        # None of the refusals used the login up: the real answer still completes it.
        assert finish_login(client, back, value).status_code == 302


def test_a_replayed_callback_is_refused(gw: GatewayProcess) -> None:
    with gw.client() as client:
        started = start_login(client)
        back = provider_login(started.authorize_url, "alice")
        assert finish_login(client, back, started.state_cookie.value).status_code == 302
        again = finish_login(client, back, started.state_cookie.value)
    assert again.status_code == 400 and error_of(again) == "invalid_state"
    assert "completed already" in again.json()["detail"]
    assert_no_session(again)


def test_a_state_cookie_from_another_login_is_refused(gw: GatewayProcess) -> None:
    with gw.client() as client:
        mine = start_login(client)
        theirs = start_login(client)  # e.g. the attacker's own login, its callback URL planted on a victim
        back = provider_login(theirs.authorize_url, "bob")
        answer = finish_login(client, back, mine.state_cookie.value)
    assert answer.status_code == 400 and error_of(answer) == "invalid_state"
    assert_no_session(answer)


def test_mix_up_an_iss_of_another_provider_is_refused(gw: GatewayProcess) -> None:
    with gw.client() as client:
        started = start_login(client)
        back = provider_login(started.authorize_url, "alice")
        for iss in ("http://127.0.0.1:1", None):  # another issuer; none at all from a provider that always sends it
            answer = finish_login(client, with_params(back, iss=iss), started.state_cookie.value)
            assert answer.status_code == 400 and error_of(answer) == "invalid_state", answer.text
            assert_no_session(answer)
            started = start_login(client)
            back = provider_login(started.authorize_url, "alice")


def test_the_provider_saying_no_and_a_bad_code(gw: GatewayProcess, oidc_provider: OidcProvider) -> None:
    with gw.client() as client:
        started = start_login(client)
        state = started.query["state"]
        denied = f"{gw.url}/auth/oidc/corp/callback?error=access_denied&state={state}&iss={oidc_provider.issuer}"
        answer = finish_login(client, denied, started.state_cookie.value)
        assert answer.status_code == 403 and error_of(answer) == "access_denied"
        assert_no_session(answer)

        started = start_login(client)
        back = provider_login(started.authorize_url, "alice")
        answer = finish_login(
            client, with_params(back, code="not-a-code-the-provider-issued"), started.state_cookie.value
        )
        assert answer.status_code == 400 and error_of(answer) == "provider_refused"
        assert "invalid_grant" in answer.json()["detail"]
        assert_no_session(answer)


def test_unknown_provider_and_wrong_method(gw: GatewayProcess) -> None:
    with gw.client() as client:
        assert client.request("GET", "/auth/oidc/nope/login", csrf=False, headers=JSON).status_code == 404
        assert client.request("GET", "/auth/oidc/corp/other", csrf=False).status_code == 404
        answer = client.request("POST", "/auth/oidc/corp/login")
        assert answer.status_code == 405 and answer.headers["allow"] == "GET"
        answer = client.request(
            "GET", "/auth/oidc/corp/callback?state=a&state=b", csrf=False, headers={"Accept": "application/json"}
        )
        assert answer.status_code == 400 and answer.json()["error"] == "oidc_login_failed"


def test_the_login_page_learns_the_providers_and_password_login_stays(gw: GatewayProcess) -> None:
    with gw.client() as client:
        config = client.request("GET", "/auth/config").json()
        assert config["password_login"] is True
        assert config["providers"] == [
            {"name": "corp", "login_url": "/auth/oidc/corp/login"},
            {"name": "partner", "login_url": "/auth/oidc/partner/login"},
        ]
        assert client.login("pat", "pat-password-1").status_code == 200


def test_allow_lists_and_password_login_switched_off(
    gateway_factory: Callable[..., GatewayProcess], gateway_secrets: dict[str, str], oidc_provider: OidcProvider
) -> None:
    strict = provider_table(oidc_provider, "corp", "frontdesk", allowed_groups=["staff"],
                            allowed_email_domains=["example.com"])  # fmt: skip
    gw = gateway_factory(
        "oidc-strict", env={**gateway_secrets, **oidc_provider.secret_env("corp")}, users={"pat": "pat-password-1"},
        oidc=[strict], login={"password": False},
    )  # fmt: skip
    with gw.client() as client:
        refused = sign_in(client, "bob")  # groups ["guests"], bob@elsewhere.test
        assert refused.status_code == 403 and error_of(refused) == "access_denied"
        assert_no_session(refused)
        assert sign_in(client, "alice").status_code == 302
        assert client.session().json()["user"]["id"] == "oidc:corp:alice"
        answer = client.login("pat", "pat-password-1")
        assert answer.status_code == 404 and "password login is switched off" in answer.json()["detail"]
        assert client.request("GET", "/auth/config").json()["password_login"] is False


def test_callback_query_shape(gw: GatewayProcess) -> None:
    """The provider answers with code, state and the RFC 9207 iss (what the checks above rely on)."""
    with gw.client() as client:
        started = start_login(client)
        back = provider_login(started.authorize_url, "alice")
    query = parse_qs(urlsplit(back).query)
    assert set(query) >= {"code", "state", "iss"} and callback_path(back).startswith("/auth/oidc/corp/callback?")


def test_a_wrong_client_secret_and_a_provider_that_is_down(
    gateway_factory: Callable[..., GatewayProcess], gateway_secrets: dict[str, str], oidc_provider: OidcProvider
) -> None:
    down = {"name": "down", "issuer": f"http://127.0.0.1:{free_port()}", "client_id": "frontdesk"}
    env = {
        **gateway_secrets,
        "FRONTDESK_OIDC_CORP_CLIENT_SECRET": "not-the-secret-the-provider-knows",
        "FRONTDESK_OIDC_DOWN_CLIENT_SECRET": "whatever",
        "FRONTDESK_OIDC_TOKEN_KEY": TEST_TOKEN_KEY,
    }
    gw = gateway_factory("oidc-broken", env=env, oidc=[provider_table(oidc_provider, "corp", "frontdesk"), down])
    with gw.client() as client:
        refused = sign_in(client, "alice")
        assert refused.status_code == 400 and error_of(refused) == "provider_refused"
        assert "invalid_client" in refused.json()["detail"]
        assert "not-the-secret" not in refused.text
        assert_no_session(refused)
        answer = client.request("GET", "/auth/oidc/down/login", csrf=False, headers=JSON)
        assert answer.status_code == 502 and error_of(answer) == "provider_unavailable"
        assert answer.headers["x-content-type-options"] == "nosniff"
        # The user's click on "Sign in with down" (a navigation): back to the login page, saying why.
        answer = client.request("GET", "/auth/oidc/down/login", csrf=False, headers=NAVIGATION)
        assert_login_lands_on_the_spa(answer, "provider_unavailable")
    assert "not-the-secret" not in gw.log()


def test_a_return_path_outside_ascii_comes_back_percent_encoded(gw: GatewayProcess) -> None:
    with gw.client() as client:
        done = sign_in(client, "alice", return_to="/caf\u00e9/\u20ac")
    assert done.status_code == 302, done.text
    assert done.headers["location"] == "/caf%C3%A9/%E2%82%AC"


def test_the_providers_error_text_is_repeated_printable_only(gw: GatewayProcess, oidc_provider: OidcProvider) -> None:
    with gw.client() as client:
        started = start_login(client)
        state = started.query["state"]
        forged = (
            f"{gw.url}/auth/oidc/corp/callback?error=server_error&state={state}&iss={oidc_provider.issuer}"
            "&error_description=" + "x%0A%0D2026-01-01 CRITICAL forged log line" + "y" * 500
        )
        answer = finish_login(client, forged, started.state_cookie.value)
    assert answer.status_code == 400 and error_of(answer) == "oidc_login_failed"
    detail = answer.json()["detail"]
    assert "\n" not in detail and "\r" not in detail and len(detail) < 400
    assert "\nCRITICAL" not in gw.log() and "\n2026-01-01 CRITICAL" not in gw.log()


def assert_lands_on_the_spa(answer: Any, reason: str) -> None:
    """A browser's navigation to a failed callback: back to the SPA with the reason code alone, no session."""
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"] == f"/?login_error={reason}"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"  # the edge layer's headers on the redirect too
    assert_no_session(answer)


def test_a_browser_navigation_to_a_failed_callback_lands_on_the_spa_with_a_reason(
    gw: GatewayProcess, oidc_provider: OidcProvider
) -> None:
    with gw.client() as client:
        # The user cancels at the provider; its text (anyone can write it into this URL) is not repeated.
        started = start_login(client)
        cancelled = (
            f"{gw.url}/auth/oidc/corp/callback?error=access_denied&state={started.query['state']}"
            f"&iss={oidc_provider.issuer}&error_description=%3Cscript%3Ealert(1)%3C/script%3E+Call+0800-SCAM"
        )
        answer = finish_login(client, cancelled, started.state_cookie.value, headers=NAVIGATION)
        assert_lands_on_the_spa(answer, "access_denied")
        assert "SCAM" not in answer.headers["location"] and not answer.content

        started = start_login(client)
        back = provider_login(started.authorize_url, "alice")
        assert_lands_on_the_spa(finish_login(client, back, "tampered", headers=NAVIGATION), "invalid_state")
        bad_code = with_params(back, code="not-a-code-the-provider-issued")
        assert_lands_on_the_spa(
            finish_login(client, bad_code, started.state_cookie.value, headers=NAVIGATION), "provider_refused"
        )
        repeated = finish_login(client, back + "&state=again", started.state_cookie.value, headers=NAVIGATION)
        assert_lands_on_the_spa(repeated, "oidc_login_failed")
        # A plain navigation with no Accept preference (curl, an old browser) is treated as one too.
        plain = finish_login(client, back, None, headers={"Accept": "*/*"})
        assert plain.status_code == 302 and plain.headers["location"] == "/?login_error=invalid_state"
        # A script's fetch() (Sec-Fetch-Mode: cors) gets the JSON answer.
        fetched = finish_login(client, back, None, headers={"Accept": "*/*", "Sec-Fetch-Mode": "cors"})
        assert fetched.status_code == 400 and error_of(fetched) == "invalid_state"
        assert client.session().status_code == 401


def assert_login_lands_on_the_spa(answer: Any, reason: str) -> None:
    """A browser's navigation to a login that cannot start: back to the SPA with the reason code alone, with
    the edge layer's headers, no session and no login started (no login-state cookie)."""
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"] == f"/?login_error={reason}"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in answer.headers
    assert not answer.content
    assert set_cookies(answer) == [], "a login that did not start sets no cookie at all"


def test_a_login_at_a_stopped_provider_lands_a_navigation_on_the_spa(
    gateway_factory: Callable[..., GatewayProcess], gateway_secrets: dict[str, str], tmp_path: Path
) -> None:
    """The provider ran (a login started there), then stopped, and the gateway restarted (so no discovery document
    is cached): the click on "Sign in with corp" comes back to the login page with ``provider_unavailable``; a
    script gets the 502 JSON it always got."""
    with running_provider(tmp_path, name="stopped-provider") as provider:
        gw = gateway_factory(
            "oidc-stopped", env={**gateway_secrets, **provider.secret_env("corp")},
            oidc=[provider_table(provider, "corp", "frontdesk")],
        )  # fmt: skip
        with gw.client() as client:
            assert start_login(client).authorize_url.startswith(provider.issuer)  # up: the login starts
    gw.restart()
    with gw.client() as client:
        for headers in (NAVIGATION, {"Accept": "*/*"}):  # a browser; curl or an old browser (no Sec-Fetch-Mode)
            assert_login_lands_on_the_spa(
                client.request("GET", "/auth/oidc/corp/login?return_to=/orders", csrf=False, headers=headers),
                "provider_unavailable",
            )
        for headers in (JSON, {"Accept": "*/*", "Sec-Fetch-Mode": "cors"}):  # a script; a fetch()
            answer = client.request("GET", "/auth/oidc/corp/login", csrf=False, headers=headers)
            assert answer.status_code == 502 and error_of(answer) == "provider_unavailable", answer.text
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert set_cookies(answer) == []
        assert client.session().status_code == 401
    assert f"OpenID discovery at {provider.issuer}" in gw.log()  # the operator learns why


def test_a_navigation_to_an_unknown_provider_or_a_bad_login_query_lands_on_the_spa(gw: GatewayProcess) -> None:
    with gw.client() as client:
        assert_login_lands_on_the_spa(
            client.request("GET", "/auth/oidc/nope/login", csrf=False, headers=NAVIGATION), "unknown_provider"
        )
        missing = client.request("GET", "/auth/oidc/nope/login", csrf=False, headers={"Sec-Fetch-Mode": "cors"})
        assert missing.status_code == 404 and error_of(missing) == "not_found"
        # A callback for a provider that is not (or no longer) configured: the same, and the login is over.
        gone = client.request("GET", "/auth/oidc/nope/callback?state=s&code=c", csrf=False, headers=NAVIGATION)
        assert gone.status_code == 302 and gone.headers["location"] == "/?login_error=unknown_provider"
        (cleared,) = set_cookies(gone)
        assert cleared.name == LOGIN_STATE_COOKIE and cleared.clears
        # A repeated parameter is someone's trick: refused before anything starts, as at the callback.
        repeated = "/auth/oidc/corp/login?return_to=/a&return_to=/b"
        assert_login_lands_on_the_spa(
            client.request("GET", repeated, csrf=False, headers=NAVIGATION), "oidc_login_failed"
        )
        answer = client.request("GET", repeated, csrf=False, headers=JSON)
        assert answer.status_code == 400 and error_of(answer) == "oidc_login_failed"
        assert client.session().status_code == 401


def test_every_login_error_code_has_a_sentence_on_the_login_page() -> None:
    """The SPA shows only its own sentences; each specific code the gateway can send it has one (the catch-all
    ones, ``oidc_login_failed`` and ``internal_error``, get the general sentence)."""
    script = (Path(__file__).resolve().parents[2] / "static" / "ui" / "login.js").read_text()
    table = script.split("const PROVIDER_ERRORS = {", 1)[1].split("};", 1)[0]
    codes = set(re.findall(r"^\s*(\w+):", table, re.MULTILINE))
    assert codes == LOGIN_ERROR_REASONS - {"oidc_login_failed", "internal_error"}
