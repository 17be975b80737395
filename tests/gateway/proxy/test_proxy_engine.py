"""The proxy with the real session engine: the gateway from ``gateway.app.create_app`` (SQLite store,
``/auth/*``) served by uvicorn, in front of the recording upstream. Time is a ManualClock, so an access
token's expiry is crossed without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from proxy_support import Upstream
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from frontdesk.gateway.app import create_app
from frontdesk.gateway.config import load_config
from frontdesk.gateway.errors import ConfigError
from frontdesk.gateway.proxy import ProxyApp
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.sessions import User
from tests.support import serve_in_loop

ACCESS_SECRET = "integration-access-secret-0123456789abcdef0123456789"
REFRESH_SECRET = "integration-refresh-secret-0123456789abcdef012345678"
CONFIG = """\
[tokens]
access_ttl = "5m"
refresh_ttl = "1d"
max_session_age = "7d"

[store]
url = "sqlite:///frontdesk.db"

[login]
max_attempts_per_user = 1000
max_attempts_per_address = 1000
"""


@dataclass
class RealGateway:
    port: int
    upstream: Upstream
    clock: ManualClock
    cookie_name: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def login(self, username: str) -> str:
        async with httpx.AsyncClient(base_url=self.url, headers={"x-csrf": "1"}) as c:
            r = await c.post("/auth/login", json={"username": username, "password": "pw-" + username})
        assert r.status_code == 200, r.text
        return r.headers["set-cookie"].split(";", 1)[0]


ROUTES = """
[[routes]]
prefix = "/api/"
upstream = "http://127.0.0.1:{port}"

[[routes]]
prefix = "/ws/"
upstream = "http://127.0.0.1:{port}/api/"
websocket = true
"""


@pytest.fixture
async def real(tmp_path: Path) -> AsyncIterator[RealGateway]:
    upstream = Upstream()
    async with serve_in_loop(upstream) as up:
        (tmp_path / "config.toml").write_text(CONFIG + ROUTES.format(port=up.port))
        env = {"FRONTDESK_ACCESS_SECRET": ACCESS_SECRET, "FRONTDESK_REFRESH_SECRET": REFRESH_SECRET}
        config = load_config(tmp_path / "config.toml", env=env)
        clock = ManualClock(time.time())

        async def authenticator(username: str, password: str) -> User | None:
            return User(id=f"u-{username}", username=username) if password == "pw-" + username else None

        gateway = create_app(config, authenticator=authenticator, clock=clock)
        assert isinstance(gateway.app, ProxyApp)
        async with serve_in_loop(gateway, lifespan="on") as server:
            yield RealGateway(server.port, upstream, clock, gateway.engine.cookie_name)


def test_route_problems_join_the_start_up_error(tmp_path: Path) -> None:
    bad = CONFIG + '[[routes]]\nprefix = "api"\nupstream = "ftp://x"\n[proxy]\nmax_body_size = "lots"\n'
    (tmp_path / "config.toml").write_text(bad)
    env = {"FRONTDESK_ACCESS_SECRET": ACCESS_SECRET, "FRONTDESK_REFRESH_SECRET": REFRESH_SECRET}
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config.toml", env=env)
    text = "\n".join(info.value.problems)
    assert "routes[0].prefix" in text and "routes[0].upstream" in text and "proxy.max_body_size" in text


def _claims(token_header: str) -> dict[str, Any]:
    scheme, _, token = token_header.partition(" ")
    assert scheme == "Bearer"
    return jwt.decode(
        token,
        ACCESS_SECRET,
        algorithms=["HS256"],
        audience="frontdesk-api",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )


async def test_silent_refresh_across_access_token_expiry(real: RealGateway) -> None:
    cookie = await real.login("alice")
    async with httpx.AsyncClient(base_url=real.url, headers={"x-csrf": "1"}) as c:
        r = await c.get("/api/echo", headers={"cookie": cookie})
        assert r.status_code == 200, r.text
        first = _claims(real.upstream.seen[-1].header("authorization")[0])
        assert first["sub"] == "u-alice" and first["exp"] > real.clock()

        real.clock.advance(6 * 60)  # past the 5 min access token, well inside the refresh token
        r = await c.get("/api/echo", headers={"cookie": cookie})
        assert r.status_code == 200, r.text
        second = _claims(real.upstream.seen[-1].header("authorization")[0])
        assert second["jti"] != first["jti"] and second["sid"] == first["sid"]
        assert second["exp"] > real.clock() > first["exp"]  # fresh and valid now, where the first is not
        rotated = r.headers.get("set-cookie", "")
        assert rotated.startswith(real.cookie_name + "=") and "HttpOnly" in rotated

        # the browser applies the rotated cookie; the next call rides the cached fresh token
        cookie = rotated.split(";", 1)[0]
        r = await c.get("/api/echo", headers={"cookie": cookie})
        assert r.status_code == 200 and "set-cookie" not in r.headers
        assert _claims(real.upstream.seen[-1].header("authorization")[0])["jti"] == second["jti"]
    # the refresh cookie never reached the upstream
    assert all(not s.header("cookie") for s in real.upstream.seen)


async def test_upstream_invalid_token_gets_one_fresh_mint_and_one_retry(real: RealGateway) -> None:
    cookie = await real.login("alice")
    async with httpx.AsyncClient(base_url=real.url, headers={"x-csrf": "1"}) as c:
        r = await c.get("/api/strict-once", headers={"cookie": cookie})
        assert r.status_code == 200, r.text
        first, second = (s.header("authorization")[0] for s in real.upstream.seen)
        assert first != second and _claims(second)["sub"] == "u-alice"
        rotated = r.headers.get("set-cookie", "")
        assert rotated.startswith(real.cookie_name + "=")  # the forced mint rotated the refresh cookie
        # a POST is never retried: the upstream's 401 goes to the browser
        real.upstream.rejected = None
        r = await c.post("/api/strict-once", headers={"cookie": rotated.split(";", 1)[0]}, content=b"{}")
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert len(real.upstream.seen) == 3


async def test_two_users_get_their_own_tokens_and_cookies(real: RealGateway) -> None:
    alice, bob = await real.login("alice"), await real.login("bob")
    async with httpx.AsyncClient(base_url=real.url, headers={"x-csrf": "1"}) as c:
        ra, rb = await asyncio.gather(
            c.get("/api/cookies", headers={"cookie": alice}), c.get("/api/cookies", headers={"cookie": bob})
        )
    assert ra.status_code == rb.status_code == 200
    subs = {_claims(s.header("authorization")[0])["sub"] for s in real.upstream.seen}
    assert subs == {"u-alice", "u-bob"}
    assert [c for c in ra.headers.get_list("set-cookie") if c.startswith("upstream_user")] != [
        c for c in rb.headers.get_list("set-cookie") if c.startswith("upstream_user")
    ]
    # an upstream can never overwrite the session cookie
    assert not any(c.startswith(real.cookie_name + "=hijack") for c in ra.headers.get_list("set-cookie"))


async def test_no_session_is_401_json(real: RealGateway) -> None:
    async with httpx.AsyncClient(base_url=real.url, headers={"x-csrf": "1"}) as c:
        r = await c.get("/api/echo")
    assert r.status_code == 401 and r.json()["error"] == "not_authenticated"
    assert real.upstream.seen == []


async def test_websocket_closes_on_logout(real: RealGateway) -> None:
    cookie = await real.login("alice")
    headers = {"Cookie": cookie, "Origin": real.url}
    async with connect(f"ws://127.0.0.1:{real.port}/ws/socket", additional_headers=headers) as ws:
        await ws.send("hi")
        assert await ws.recv() == "echo:hi"
        assert _claims(real.upstream.seen[-1].header("authorization")[0])["sub"] == "u-alice"
        async with httpx.AsyncClient(base_url=real.url, headers={"x-csrf": "1"}) as c:
            r = await c.post("/auth/logout", headers={"cookie": cookie})
            assert r.status_code in (200, 204), r.text
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    await asyncio.wait_for(real.upstream.ws_closed.wait(), 10)


@pytest.mark.parametrize("how", ["delete", "everywhere"])
async def test_websocket_closes_when_another_device_signs_it_out(real: RealGateway, how: str) -> None:
    laptop, phone = await real.login("bob"), await real.login("bob")  # two sessions of one user
    headers = {"Cookie": laptop, "Origin": real.url}
    async with connect(f"ws://127.0.0.1:{real.port}/ws/socket", additional_headers=headers) as ws:
        await ws.send("hi")
        assert await ws.recv() == "echo:hi"
        async with httpx.AsyncClient(base_url=real.url, headers={"x-csrf": "1", "cookie": phone}) as c:
            if how == "delete":
                listed = (await c.get("/auth/sessions")).json()["sessions"]
                (laptop_id,) = [s["id"] for s in listed if not s["current"]]
                r = await c.delete(f"/auth/sessions/{laptop_id}")
            else:
                r = await c.post("/auth/logout", json={"everywhere": True})
            assert r.status_code == 204, r.text
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
