"""The whole /auth/* flow against a real ``frontdesk serve``: login, session, refresh, logout, the refresh
cookie's exact shape, and replay of a rotated refresh token inside and after the rotation grace (the reuse
interval two rotations back runs on the real app in-process, on a manual clock)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_gateway import GatewayProcess, SetCookie, in_process_gateway, jwt_claims, set_cookies

COOKIE = "__Host-frontdesk"
GRACE = 3.0  # rotation_grace of this module's server
USERS = {"alice": "alice-password-1", "bob": "bob-password-22", "carol": "carol-password-333"}
TOKENS = {"access_ttl": "10m", "rotation_grace": f"{GRACE:g}s", "remember_ttl": "1h"}


@pytest.fixture(scope="module")
def gw(gateway_factory: Any) -> GatewayProcess:
    return gateway_factory(
        "flow",
        users=USERS,
        tokens=TOKENS,
    )


def only_cookie(response: httpx.Response) -> SetCookie:
    """The one refresh Set-Cookie of the response (a login also sets the device cookie of the login limits)."""
    cookies = [c for c in set_cookies(response) if c.name != "__Host-frontdesk-device"]
    assert len(cookies) == 1, f"expected exactly one Set-Cookie, got {response.headers.get_list('set-cookie')}"
    return cookies[0]


def assert_refresh_cookie(cookie: SetCookie, *, max_age: bool) -> None:
    """``__Host-`` name, HttpOnly; Secure; SameSite=Strict; Path=/, no Domain; Max-Age only if remembered."""
    assert cookie.name == COOKIE and cookie.name.startswith("__Host-")
    assert cookie.value.count(".") == 2  # a JWT
    assert cookie.attrs.get("path") == "/"
    assert "httponly" in cookie.attrs and "secure" in cookie.attrs
    assert cookie.attrs.get("samesite") == "Strict"
    assert "domain" not in cookie.attrs
    assert "expires" not in cookie.attrs
    assert ("max-age" in cookie.attrs) is max_age
    assert set(cookie.attrs) <= {"path", "httponly", "secure", "samesite", "max-age"}


def assert_clearing_cookie(cookie: SetCookie) -> None:
    assert cookie.name == COOKIE and cookie.value == ""
    assert cookie.attrs.get("max-age") == "0" and cookie.attrs.get("path") == "/"
    assert "domain" not in cookie.attrs
    assert "secure" in cookie.attrs and "httponly" in cookie.attrs


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"} and isinstance(body["detail"], str)
    assert "Traceback" not in response.text
    if code is not None:
        assert body["error"] == code
    return body


# --- login ---------------------------------------------------------------------------------------


def test_login_answers_user_and_session_with_one_exact_cookie(gw: GatewayProcess) -> None:
    with gw.client() as client:
        r = client.login("alice", USERS["alice"])
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert set(body) == {"user", "session"}
        assert body["user"]["username"] == "alice" and body["user"]["id"]
        assert set(body["session"]) == {"expires_at", "idle_expires_at"}
        assert body["session"]["idle_expires_at"] <= body["session"]["expires_at"]  # ISO-8601 UTC, comparable
        cookie = only_cookie(r)
        assert_refresh_cookie(cookie, max_age=False)  # not remembered: a browser-session cookie
        claims = cookie.claims()
        assert claims["sub"] == body["user"]["id"]
        row = gw.session_row(claims["sid"])
        assert row is not None and row["current_jti"] == claims["jti"] and row["revoked_at"] is None


def test_remember_me_gives_max_age_of_the_remember_lifetime(gw: GatewayProcess) -> None:
    with gw.client() as client:
        cookie = only_cookie(client.login("alice", USERS["alice"], remember=True))
        assert_refresh_cookie(cookie, max_age=True)
        assert cookie.max_age is not None and 3600 - 120 <= cookie.max_age <= 3600  # remember_ttl = 1h
        # Rotation keeps the choice: the new cookie is persistent too.
        rotated = only_cookie(client.refresh())
        assert_refresh_cookie(rotated, max_age=True)
        assert rotated.max_age is not None and 3600 - 120 <= rotated.max_age <= 3600
        # An explicit false is the same as leaving it out.
        assert_refresh_cookie(only_cookie(client.login("alice", USERS["alice"], remember=False)), max_age=False)


def test_login_always_starts_a_new_session_and_ends_the_one_it_came_with(gw: GatewayProcess) -> None:
    with gw.client() as client:
        client.login("bob", USERS["bob"])
        old_token, old_sid = client.cookie, client.claims()["sid"]
        r = client.login("bob", USERS["bob"])  # the old cookie rides along
        assert r.status_code == 200
        only_cookie(r)
        assert client.claims()["sid"] != old_sid
        assert client.session().status_code == 200
        assert client.session(cookie=old_token, follow=False).status_code == 401
        row = gw.session_row(old_sid)
        assert row is not None and row["revoked_at"] is not None


# --- session, refresh, logout --------------------------------------------------------------------


def test_whole_flow_login_session_refresh_logout(gw: GatewayProcess) -> None:
    with gw.client() as client:
        login = client.login("alice", USERS["alice"])
        assert login.status_code == 200
        first = client.claims()

        # A fresh session with a cached access token: 200, and nothing to rotate.
        r = client.session()
        assert r.status_code == 200
        assert r.json()["user"] == login.json()["user"]
        assert r.json()["session"]["expires_at"] == login.json()["session"]["expires_at"]
        assert r.headers["cache-control"] == "no-store"
        assert set_cookies(r) == []

        # /auth/refresh rotates: a new refresh cookie with a new jti, same session.
        r = client.refresh()
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
        assert set(r.json()) == {"user", "session"}
        assert r.json()["session"]["idle_expires_at"] >= login.json()["session"]["idle_expires_at"]
        assert r.json()["session"]["expires_at"] == login.json()["session"]["expires_at"]  # the absolute cap
        cookie = only_cookie(r)
        assert_refresh_cookie(cookie, max_age=False)
        second = cookie.claims()
        assert second["sid"] == first["sid"] and second["jti"] != first["jti"]
        row = gw.session_row(first["sid"])
        assert row is not None
        assert (row["current_jti"], row["previous_jti"]) == (second["jti"], first["jti"])

        assert client.session().status_code == 200

        # Logout: 204, the cookie cleared with the same name and path, Clear-Site-Data, no-store.
        token = client.cookie
        r = client.logout()
        assert r.status_code == 204 and r.content == b""
        assert r.headers["clear-site-data"] == '"cookies"'
        assert r.headers["cache-control"] == "no-store"
        assert_clearing_cookie(only_cookie(r))
        assert client.cookie is None
        row = gw.session_row(first["sid"])
        assert row is not None and row["revoked_at"] is not None
        assert gw.query("SELECT kind FROM revocations WHERE id = ?", (first["sid"],)) == [("session",)]

        # The logged-out cookie is dead, and the 401 tells the browser to drop it.
        r = client.session(cookie=token, follow=False)
        assert_error(r, 401)
        assert r.headers["cache-control"] == "no-store"
        assert_clearing_cookie(only_cookie(r))
        assert_error(client.refresh(cookie=token, follow=False), 401)

        # Idempotent: the same logout again, and a logout with no cookie at all.
        for again in (client.logout(cookie=token), client.logout(cookie=None)):
            assert again.status_code == 204
            assert again.headers["clear-site-data"] == '"cookies"'
            assert_clearing_cookie(only_cookie(again))


def test_no_cookie_or_a_forged_cookie_is_401_json(gw: GatewayProcess) -> None:
    with gw.client() as client:
        r = client.session(cookie=None)
        assert_error(r, 401, "not_authenticated")
        assert set_cookies(r) == []  # nothing to clear
        assert_error(client.refresh(cookie=None), 401)
        client.login("carol", USERS["carol"])
        good = client.cookie
        assert good is not None
        header, payload, signature = good.split(".")
        forged = f"{header}.{payload}.{signature[::-1]}"
        assert_error(client.session(cookie=forged, follow=False), 401)
        assert_error(client.session(cookie="not-a-jwt", follow=False), 401)
        assert client.session().status_code == 200  # the real cookie is unaffected


def test_unknown_auth_path_and_wrong_method(gw: GatewayProcess) -> None:
    with gw.client() as client:
        assert_error(client.request("GET", "/auth/nope"), 404)
        r = client.request("GET", "/auth/login")
        assert_error(r, 405)
        assert r.headers["allow"] == "POST"
        # A CORS preflight is never granted.
        preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        r = client.request("OPTIONS", "/auth/login", headers=preflight)
        assert r.status_code in (403, 405)
        assert not [k for k in r.headers if k.lower().startswith("access-control-")]


def test_concurrent_logouts_in_one_worker_all_succeed(gw: GatewayProcess) -> None:
    """Two tabs (or many users) logging out at once: every logout is acknowledged and recorded."""

    async def scenario() -> list[tuple[str, int]]:
        async with gw.async_client() as client:
            tokens = []
            for _ in range(8):
                r = await client.login("carol", USERS["carol"], cookie=None)
                assert r.status_code == 200
                tokens.append(client.cookie)
            responses = await asyncio.gather(
                *(client.request("POST", "/auth/logout", cookie=t, follow=False) for t in tokens)
            )
            return [(t, r.status_code) for t, r in zip(tokens, responses, strict=True)]

    results = asyncio.run(scenario())
    assert [status for _, status in results] == [204] * len(results), [status for _, status in results]

    for token, _ in results:
        row = gw.session_row(jwt_claims(token)["sid"])
        assert row is not None and row["revoked_at"] is not None


# --- rotation grace and reuse detection ----------------------------------------------------------


def test_replay_of_the_rotated_token_inside_the_grace_still_works(gw: GatewayProcess) -> None:
    with gw.client() as client:
        client.login("bob", USERS["bob"])
        old = client.cookie
        old_claims = client.claims()
        assert client.refresh().status_code == 200
        new_claims = client.claims()
        # The previous token again (a parallel request, a second tab): still fine, and it is handed the
        # current cookie so it converges.
        r = client.session(cookie=old, follow=False)
        assert r.status_code == 200, r.text
        handed = only_cookie(r).claims()
        assert (handed["sid"], handed["jti"]) == (new_claims["sid"], new_claims["jti"])
        assert client.session().status_code == 200
        row = gw.session_row(old_claims["sid"])
        assert row is not None and row["revoked_at"] is None
        assert (row["current_jti"], row["previous_jti"]) == (new_claims["jti"], old_claims["jti"])


def test_replay_after_the_grace_revokes_the_whole_session(gw: GatewayProcess) -> None:
    with gw.client() as client:
        client.login("bob", USERS["bob"])
        old = client.cookie
        sid = client.claims()["sid"]
        assert client.refresh().status_code == 200
        new = client.cookie
        row = gw.session_row(sid)
        assert row is not None
        # Wait until the grace has certainly run out on the server's clock (same machine).
        rotated_at = row["rotated_at"]
        while time.time() <= rotated_at + GRACE + 0.5:
            time.sleep(0.1)
        r = client.session(cookie=old, follow=False)
        assert_error(r, 401, "token_reused")
        assert_clearing_cookie(only_cookie(r))
        # The new token is dead too: the whole session was revoked.
        assert_error(client.session(cookie=new, follow=False), 401, "session_revoked")
        assert_error(client.refresh(cookie=new, follow=False), 401)
        row = gw.session_row(sid)
        assert row is not None and row["revoked_at"] is not None


async def test_a_token_two_rotations_back_is_accepted_within_the_grace_and_reuse_after_it(tmp_path: Path) -> None:
    # The reuse interval: what counts is when a token was superseded, not how many rotations ago. The real app
    # in-process on a manual clock (the test above crosses the grace on the real clock, against a real server).
    alice = {"alice": USERS["alice"]}
    async with in_process_gateway(tmp_path, users=alice, tokens=TOKENS) as gw, gw.client() as client:
        await client.login("alice", USERS["alice"])
        first = client.cookie
        sid = client.claims()["sid"]
        assert (await client.refresh()).status_code == 200  # supersedes the first token, now
        # A refresh less than a second after a rotation hands back the current token; step that second out.
        gw.clock.advance(1.05)
        assert (await client.refresh()).status_code == 200
        latest = client.claims()
        row = gw.session_row(sid)
        assert row is not None and row["current_jti"] == latest["jti"] != jwt_claims(first or "")["jti"]
        # Two rotations back but superseded 1.05 s ago: accepted, handed the current cookie.
        r = await client.session(cookie=first, follow=False)
        assert r.status_code == 200, r.text
        assert only_cookie(r).claims()["jti"] == latest["jti"]
        # Just inside the grace (superseded GRACE - 0.01 s ago) it still is.
        gw.clock.advance(GRACE - 1.05 - 0.01)
        assert (await client.session(cookie=first, follow=False)).status_code == 200
        # Once it was superseded longer than the grace ago, it is reuse: the whole session is revoked.
        gw.clock.advance(0.02)
        assert_error(await client.session(cookie=first, follow=False), 401, "token_reused")
        assert_error(await client.session(follow=False), 401)
        row = gw.session_row(sid)
        assert row is not None and row["revoked_at"] is not None
