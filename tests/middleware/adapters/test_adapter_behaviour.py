"""What the adapters do besides refusing bad tokens: public paths, scopes, the rotated cookie, /auth/* in
session mode, WebSockets, and how fast a revocation takes effect in bearer mode."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest
from mw_world import COOKIE, PASSWORD, Adapter, Keys, access_claims, sign_access
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from frontdesk.middleware.admission import Admission, Refusal
from frontdesk.middleware.bearer import REVOCATION_TTL, BearerAuth
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import ExpiredToken, InsufficientScope, SessionRevoked, UnknownKey
from frontdesk.middleware.http import HttpRequest
from frontdesk.middleware.store import MemoryStore
from tests.support import LiveServer


def valid(adapter: Adapter, keys: Keys, **claims: object) -> dict[str, str]:
    return adapter.present(adapter.login() if adapter.is_session else sign_access(keys, access_claims(**claims)))


def test_public_path_needs_no_token_and_sees_an_anonymous_user(adapter: Adapter) -> None:
    with adapter.client() as client:
        response = client.get("/public/ping")
    assert response.status_code == 200
    assert response.json()["authenticated"] is False


def test_a_dot_segment_path_is_not_public(adapter: Adapter) -> None:
    with adapter.client() as client:
        # httpx would normalise the path; send the raw target.
        request = client.build_request("GET", adapter.url, headers={"x-csrf": "1"})
        request.url = request.url.copy_with(raw_path=b"/public/../whoami")
        response = client.send(request)
    assert response.status_code == 401


def test_missing_scope_is_403_insufficient_scope(adapter: Adapter, keys: Keys) -> None:
    with adapter.client() as client:
        response = client.get("/admin/panel", headers=valid(adapter, keys))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    if not adapter.is_session:
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_granted_scope_passes_and_is_visible_to_the_app(bearer_adapter: Adapter, keys: Keys) -> None:
    adapter = bearer_adapter
    with adapter.client() as client:
        response = client.get("/admin/panel", headers=valid(adapter, keys, scope="read admin"))
    assert response.status_code == 200
    assert "admin" in response.json()["scopes"]


def test_session_mode_serves_the_auth_contract(session_adapter: Adapter) -> None:
    adapter = session_adapter
    with adapter.client() as client:
        assert client.post("/auth/login", json={"username": "x", "password": "y"}).status_code == 403  # no CSRF
        bad = client.post(
            "/auth/login", content=b"{not json", headers={"x-csrf": "1", "content-type": "application/json"}
        )
        assert bad.status_code == 400 and set(bad.json()) == {"error", "detail"}
        wrong = client.post("/auth/login", json={"username": "u", "password": "nope"}, headers={"x-csrf": "1"})
        assert wrong.status_code == 401
        token = adapter.login()
        session = client.get("/auth/session", headers={"x-csrf": "1", **adapter.present(token)})
        assert session.status_code == 200 and session.json()["user"]["username"].startswith("user")


def test_session_mode_adds_the_rotated_cookie_to_the_apps_response(session_adapter: Adapter) -> None:
    """A client still on the previous refresh token (within the grace) is handed the current one."""
    adapter = session_adapter
    first = adapter.login()
    with adapter.client() as client:
        refreshed = client.post("/auth/refresh", headers={"x-csrf": "1", **adapter.present(first)})
        assert refreshed.status_code == 200
        current = refreshed.headers["set-cookie"].split(";", 1)[0]
        response = client.get("/whoami", headers=adapter.present(first))
    assert response.status_code == 200
    assert response.headers["set-cookie"].split(";", 1)[0] == current
    assert "HttpOnly" in response.headers["set-cookie"]


def test_session_mode_requires_the_csrf_header_like_a_gateway_route(session_adapter: Adapter) -> None:
    adapter = session_adapter
    headers = adapter.present(adapter.login())
    del headers["x-csrf"]
    with adapter.client() as client:
        refused = client.get("/whoami", headers=headers)
        foreign = client.get("/whoami", headers={**adapter.present(adapter.login()), "origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_rejected"
    assert foreign.status_code == 403


def test_session_mode_refuses_after_logout_and_clears_the_cookie(session_adapter: Adapter) -> None:
    adapter = session_adapter
    token = adapter.login()
    with adapter.client() as client:
        assert client.post("/auth/logout", headers={"x-csrf": "1", **adapter.present(token)}).status_code == 204
        response = client.get("/whoami", headers=adapter.present(token))
    assert response.status_code == 401
    assert response.json()["error"] == "session_revoked"
    assert response.headers["set-cookie"].startswith(f"{COOKIE}=;") and "Max-Age=0" in response.headers["set-cookie"]


def test_session_mode_serves_your_devices_and_logout_everywhere(session_adapter: Adapter) -> None:
    """The devices endpoints live in the shared AuthAPI: session mode (ASGI and WSGI) answers them too."""
    adapter = session_adapter
    name = f"devices-{adapter.name}"
    laptop, phone, tablet = adapter.login(name), adapter.login(name), adapter.login(name)
    with adapter.client() as client:
        listed = client.get("/auth/sessions", headers=adapter.present(laptop))
        assert listed.status_code == 200, listed.text
        sessions = listed.json()["sessions"]
        assert len(sessions) == 3 and [s["current"] for s in sessions] == [True, False, False]
        assert sessions[0]["user_agent"].startswith("python-httpx ")
        phone_id = sessions[1]["id"]
        assert client.delete(f"/auth/sessions/{phone_id}", headers=adapter.present(laptop)).status_code == 204
        assert client.delete(f"/auth/sessions/{phone_id}", headers=adapter.present(laptop)).status_code == 404
        assert client.get("/whoami", headers=adapter.present(phone)).status_code == 401
        assert client.get("/whoami", headers=adapter.present(tablet)).status_code == 200
        everywhere = client.post("/auth/logout", json={"everywhere": True}, headers=adapter.present(tablet))
        assert everywhere.status_code == 204
        for token in (laptop, tablet):
            assert client.get("/whoami", headers=adapter.present(token)).status_code == 401
        verify = client.get("/auth/verify", headers={"cookie": adapter.present(adapter.login(name))["cookie"]})
        assert verify.status_code == 200 and verify.headers["x-auth-request-user"] == name
        assert "no-store" in verify.headers["cache-control"]


def test_session_login_body_limit_is_413(session_adapter: Adapter) -> None:
    adapter = session_adapter
    body = b'{"username": "' + b"a" * 20000 + b'", "password": "' + PASSWORD.encode() + b'"}'
    with adapter.client() as client:
        response = client.post("/auth/login", content=body, headers={"x-csrf": "1", "content-type": "application/json"})
    assert response.status_code == 413


def _ws_url(adapter: Adapter) -> str:
    return adapter.url.replace("http://", "ws://") + "/ws"


def test_websocket_receives_the_user(asgi_adapter: Adapter, keys: Keys) -> None:
    adapter = asgi_adapter
    headers = valid(adapter, keys)
    if adapter.is_session:
        headers["origin"] = adapter.url
    with connect(_ws_url(adapter), additional_headers=headers) as ws:
        message = ws.recv(timeout=10)
    assert '"id":"id-user' in str(message)


@pytest.mark.parametrize("why", ["no credentials", "bad token", "cross-site origin"])
def test_websocket_is_refused_before_accept(asgi_adapter: Adapter, keys: Keys, why: str) -> None:
    adapter = asgi_adapter
    headers: dict[str, str] = {}
    if why == "bad token":
        headers = adapter.present("not-a-token")
    elif why == "cross-site origin":
        # In bearer mode nothing is sent ambiently, so a foreign Origin with a valid token is fine.
        headers = {**valid(adapter, keys), "origin": "https://evil.example"}
    if why == "cross-site origin" and not adapter.is_session:
        with connect(_ws_url(adapter), additional_headers=headers) as ws:
            assert '"id":"id-user' in str(ws.recv(timeout=10))
        return
    with pytest.raises(InvalidStatus) as refused:
        connect(_ws_url(adapter), additional_headers=headers)
    # Refused before accept with the JSON answer and status a plain request gets (uvicorn supports the
    # WebSocket denial response), as the gateway's proxy refuses an upgrade.
    response = refused.value.response
    if adapter.is_session:  # the Origin is checked first: these handshakes carry none, or a foreign one
        assert response.status_code == 403
        expected = {"csrf_rejected"} if why == "cross-site origin" else {"websocket_refused"}
    else:
        assert response.status_code == 401
        expected = {"not_authenticated", "invalid_token"}
    assert json.loads(bytes(response.body or b""))["error"] in expected


def test_wsgi_sets_remote_user(adapters: dict[str, Adapter], keys: Keys) -> None:
    adapter = adapters["wsgi-bearer"]
    claims = access_claims()
    with httpx.Client(base_url=adapter.url) as client:
        response = client.get("/whoami", headers=adapter.present(sign_access(keys, claims)))
    assert response.json()["username"] == claims["preferred_username"]


async def test_bearer_revocation_takes_effect_within_one_second(keys: Keys) -> None:
    """Checked against the store at most every REVOCATION_TTL (< 1 s); a manual clock makes it exact."""
    clock = ManualClock(start=time.time())
    store = MemoryStore()
    auth = BearerAuth(keyring=keys.verifying_ring(), revocations=store, clock=clock)
    claims = access_claims(iat=int(clock()), exp=int(clock()) + 600)
    header = f"Bearer {sign_access(keys, claims)}"
    assert (await auth.authenticate("/x", header)) is not None
    await store.revoke_session(claims["sid"], now=clock(), reason="logout")
    clock.advance(REVOCATION_TTL + 0.01)
    assert REVOCATION_TTL + 0.01 < 1.0
    with pytest.raises(SessionRevoked):
        await auth.authenticate("/x", header)


async def test_bearer_checks_the_store_once_per_interval_not_per_request(keys: Keys) -> None:
    clock = ManualClock(start=time.time())
    calls = 0

    class CountingStore(MemoryStore):
        async def is_revoked(self, sid: str) -> bool:
            nonlocal calls
            calls += 1
            return await super().is_revoked(sid)

    auth = BearerAuth(keyring=keys.verifying_ring(), revocations=CountingStore(), clock=clock)
    header = f"Bearer {sign_access(keys, access_claims(iat=int(clock()), exp=int(clock()) + 600))}"
    await asyncio.gather(*(auth.authenticate("/x", header) for _ in range(50)))
    assert calls == 1


async def test_a_remembered_token_still_expires_and_loses_its_key(keys: Keys) -> None:
    """The per-header memo of verified results re-checks expiry and the key on every hit."""
    clock = ManualClock(start=time.time())
    ring = keys.verifying_ring()
    auth = BearerAuth(keyring=ring, clock=clock, leeway=5)
    now = int(clock())
    header = f"Bearer {sign_access(keys, access_claims(iat=now, exp=now + 60))}".encode()
    assert auth.authenticate_now("/x", header) is not None
    assert auth.authenticate_now("/x", header) is not None  # from the memo
    clock.advance(64)
    assert auth.authenticate_now("/x", header) is not None  # inside the leeway
    clock.advance(2)
    with pytest.raises(ExpiredToken):
        auth.authenticate_now("/x", header)
    fresh = f"Bearer {sign_access(keys, access_claims(iat=int(clock()), exp=int(clock()) + 60))}".encode()
    assert auth.authenticate_now("/x", fresh) is not None
    ring.keys = [k for k in ring.keys if k.kid != keys.access.kid]  # the key leaves the ring (JWKS refetch)
    with pytest.raises(UnknownKey):
        auth.authenticate_now("/x", fresh)


async def test_a_token_seen_before_is_admitted_without_building_anything(keys: Keys) -> None:
    """Bearer mode's hot path: a memo hit hands back the Admission built when the token was verified (one per
    token, not per request), and still checks each path's scopes and public rule."""
    auth = BearerAuth(keyring=keys.verifying_ring(), public_paths=["/public/"], scopes={"/admin/": "admin"})
    header = f"Bearer {sign_access(keys, access_claims())}"

    def request(path: str) -> HttpRequest:
        return HttpRequest("GET", path, {"authorization": header})

    first = await auth.admit(request("/x"))
    assert isinstance(first, Admission) and first.user is not None
    assert await auth.admit(request("/y")) is first
    assert await auth.admit(request("/x")) is first
    refused = await auth.admit(request("/admin/panel"))
    assert isinstance(refused, Refusal) and isinstance(refused.error, InsufficientScope)
    public = await auth.admit(request("/public/ping"))
    assert isinstance(public, Admission) and public.user is None


async def test_session_mode_purges_expired_rows_at_most_once_per_interval() -> None:
    from mw_world import ACCESS_SECRET, PASSWORD, REFRESH_SECRET, authenticator

    from frontdesk.middleware.http import HttpRequest
    from frontdesk.middleware.session_mode import SessionAuth

    clock = ManualClock(start=time.time())
    purges = 0

    class CountingStore(MemoryStore):
        async def purge(self, *, now: float) -> int:
            nonlocal purges
            purges += 1
            return await super().purge(now=now)

    auth = SessionAuth.from_secrets(
        access_secret=ACCESS_SECRET,
        refresh_secret=REFRESH_SECRET,
        authenticator=authenticator,
        store=CountingStore(),
        clock=clock,
        purge_interval=60,
    )
    login = await auth.engine.login("carol", PASSWORD)
    request = HttpRequest("GET", "/x", {"cookie": login.set_cookie.split(";", 1)[0], "x-csrf": "1"})
    await auth.admit(request)
    assert purges == 0
    clock.advance(61)
    await auth.admit(request)
    await auth.admit(request)
    assert auth.purger.task is not None
    await auth.purger.task  # the background purge task, started by the first request after the interval
    assert purges == 1


def test_wsgi_adapters_serve_many_threads_through_one_loop(adapters: dict[str, Adapter], keys: Keys) -> None:
    from concurrent.futures import ThreadPoolExecutor

    for name in ("wsgi-bearer", "wsgi-session"):
        adapter = adapters[name]
        headers = valid(adapter, keys)

        def call(_: int, adapter: Adapter = adapter, headers: dict[str, str] = headers) -> int:
            with adapter.client() as client:
                return client.get("/whoami", headers=headers).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            assert set(pool.map(call, range(64))) == {200}


def test_starlette_requires_decorator_sees_the_token_scopes(keys: Keys, live_server: Callable[..., LiveServer]) -> None:
    from starlette.applications import Starlette
    from starlette.authentication import requires
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from frontdesk.middleware.asgi import FrontdeskMiddleware

    @requires("reports")
    async def reports(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = FrontdeskMiddleware(Starlette(routes=[Route("/reports", reports)]), BearerAuth(keyring=keys.verifying_ring()))
    with httpx.Client(base_url=live_server(app).url) as client:
        allowed = client.get(
            "/reports", headers={"authorization": f"Bearer {sign_access(keys, access_claims(scope='reports'))}"}
        )
        denied = client.get("/reports", headers={"authorization": f"Bearer {sign_access(keys, access_claims())}"})
    assert allowed.status_code == 200
    assert denied.status_code == 403


def test_session_mode_never_hands_the_refresh_cookie_to_the_app(session_adapter: Adapter) -> None:
    adapter = session_adapter
    token = adapter.login()
    # Nor the login device cookie, a credential of its own.
    headers = {"cookie": f"theme=dark; {COOKIE}={token}; {COOKIE}-device=D", "x-csrf": "1"}
    with adapter.client() as client:
        for path in ("/public/ping", "/whoami"):  # a public path as well as an authenticated one
            response = client.get(path, headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["cookie"] == "theme=dark", path
