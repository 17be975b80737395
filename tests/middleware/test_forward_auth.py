"""``GET /auth/verify`` in-process (a real engine, MemoryStore, injected clock): identity headers, the token only
for a trusted proxy, silent refresh with the rotated cookie, never cacheable, and the cross-site rule."""

from __future__ import annotations

import json

import pytest

from frontdesk.middleware.auth_api import AuthAPI
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.forwarded import TrustedProxies
from frontdesk.middleware.http import HttpRequest, HttpResponse
from frontdesk.middleware.sessions import SessionEngine, SessionSettings, User
from frontdesk.middleware.store import MemoryStore
from frontdesk.middleware.tokens import KeyRing

PROXY = "10.0.0.2"  # the trusted proxy (nginx)
BROWSER = "192.0.2.50"  # a browser talking to frontdesk directly
SETTINGS = SessionSettings(access_ttl=60, refresh_margin=10, rotation_grace=5)


async def check(username: str, password: str) -> User | None:
    return User(f"id-{username}", username) if password == "pw" else None


class World:
    def __init__(self, *, pass_token: bool = False) -> None:
        self.clock = ManualClock()
        self.engine = SessionEngine.from_keys(
            access_keyring=KeyRing.from_secrets("a" * 40),
            refresh_keyring=KeyRing.from_secrets("r" * 40),
            store=MemoryStore(),
            authenticator=check,
            settings=SETTINGS,
            clock=self.clock,
        )
        self.api = AuthAPI(self.engine, trusted=TrustedProxies([PROXY]), forward_auth_pass_token=pass_token)

    async def login(self, username: str = "ada") -> str:
        body = json.dumps({"username": username, "password": "pw"}).encode()
        headers = {"x-csrf": "1", "host": "app.example", "content-type": "application/json"}
        response = await self.api.handle(HttpRequest("POST", "/auth/login", headers, body, client=PROXY))
        assert response.status == 200
        return _set_cookie(response) or ""

    async def verify(
        self, cookie: str | None, *, query: bytes = b"", client: str = PROXY, **extra: str
    ) -> HttpResponse:
        # What nginx forwards: the browser's own headers (no X-CSRF), Host set to the public one.
        headers = {"host": "app.example", "x-forwarded-proto": "https"}
        headers.update({k.replace("_", "-"): v for k, v in extra.items()})
        if cookie:
            headers["cookie"] = cookie
        return await self.api.handle(HttpRequest("GET", "/auth/verify", headers, b"", client=client, query=query))


def _set_cookie(response: HttpResponse) -> str | None:
    found = [v for k, v in response.headers if k == "set-cookie"]
    return found[0].split(";")[0] if found else None


def _header(response: HttpResponse, name: str) -> str | None:
    return next((v for k, v in response.headers if k == name), None)


@pytest.fixture
def world() -> World:
    return World()


async def test_signed_in_answers_200_with_the_user_and_no_token_unless_asked(world: World) -> None:
    cookie = await world.login()
    response = await world.verify(cookie)
    assert response.status == 200
    assert _header(response, "x-auth-request-user") == "ada"
    assert _header(response, "x-auth-request-email") is None  # nothing known
    assert _header(response, "authorization") is None
    assert "no-store" in (_header(response, "cache-control") or "")
    assert _set_cookie(response) is None  # nothing rotated: nothing to pass on


async def test_the_token_goes_to_a_trusted_proxy_on_request_only(world: World) -> None:
    cookie = await world.login()
    response = await world.verify(cookie, query=b"token=1")
    bearer = _header(response, "authorization")
    assert response.status == 200 and bearer is not None and bearer.startswith("Bearer ")
    claims = world.engine.access_codec.decode(bearer.removeprefix("Bearer "))
    assert claims["preferred_username"] == "ada"
    refused = await world.verify(cookie, query=b"token=1", client=BROWSER)  # straight from a browser
    assert refused.status == 403 and json.loads(refused.body)["error"] == "untrusted_proxy"
    assert "eyJ" not in refused.body.decode() and _header(refused, "authorization") is None
    bad = await world.verify(cookie, query=b"token=banana")
    assert bad.status == 400 and json.loads(bad.body)["error"] == "bad_request"


async def test_pass_token_configured_sends_it_without_asking() -> None:
    world = World(pass_token=True)
    cookie = await world.login()
    assert (_header(await world.verify(cookie), "authorization") or "").startswith("Bearer ")


async def test_an_email_username_is_the_email(world: World) -> None:
    cookie = await world.login("ada@example.org")
    response = await world.verify(cookie)
    assert _header(response, "x-auth-request-email") == "ada@example.org"


async def test_not_signed_in_is_401_json_never_cached(world: World) -> None:
    for cookie in (None, "__Host-frontdesk=garbage"):
        response = await world.verify(cookie)
        assert response.status == 401 and json.loads(response.body)["error"] == "not_authenticated"
        assert "no-store" in (_header(response, "cache-control") or "")
        assert _header(response, "x-auth-request-user") is None


async def test_silent_refresh_rotates_and_hands_back_the_cookie(world: World) -> None:
    cookie = await world.login()
    world.clock.advance(SETTINGS.access_ttl)  # the access token is gone: verify mints and rotates
    response = await world.verify(cookie)
    rotated = _set_cookie(response)
    assert response.status == 200 and rotated is not None and rotated != cookie
    world.clock.advance(SETTINGS.rotation_grace + 1)
    assert (await world.verify(rotated)).status == 200  # the browser got the new one through the proxy


async def test_a_cross_site_request_is_never_signed_in_and_keeps_the_cookie(world: World) -> None:
    cookie = await world.login()
    for headers in ({"sec_fetch_site": "cross-site"}, {"origin": "https://evil.example"}):
        response = await world.verify(cookie, **headers)
        assert response.status == 401 and json.loads(response.body)["error"] == "cross_site_request"
        assert _header(response, "x-auth-request-user") is None and _set_cookie(response) is None
    for same in ({"sec_fetch_site": "same-origin"}, {"origin": "https://app.example"}, {"sec_fetch_site": "none"}):
        assert (await world.verify(cookie, **same)).status == 200, same
