"""JWKS rotation with an overlap, end to end: a real gateway (``create_app``, EdDSA keys, proxy to /api/) and an
upstream wrapped in bearer mode that knows nothing but the gateway's JWKS URL.

Both share one manual clock, so "an hour later" is a clock step, not a wait (one test runs on the real clock).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from mw_support import gateway_config
from mw_world import PASSWORD, authenticator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from frontdesk.gateway.app import create_app
from frontdesk.gateway.cli import main as cli_main
from frontdesk.gateway.config import load_config
from frontdesk.gateway.proxy import ProxyApp
from frontdesk.middleware.asgi import FrontdeskMiddleware
from frontdesk.middleware.bearer import BearerAuth
from frontdesk.middleware.clock import Clock, ManualClock, system_clock
from frontdesk.middleware.jwks import JwksSource
from frontdesk.middleware.key_directory import KeyDirectory
from frontdesk.middleware.keys import signing_key_from_private
from tests.support import free_port, serve_in_thread, wait_until

SECRETS = {"FRONTDESK_ACCESS_SECRET": "a" * 40, "FRONTDESK_REFRESH_SECRET": "r" * 40}
OVERLAP = 3600
PUBLISH_AHEAD = 60  # the documented default of keys.publish_ahead


async def whoami(request: Request) -> JSONResponse:
    # Test-only: echo the bearer so the test can replay it straight at the upstream later.
    return JSONResponse({"id": request.user.identity, "authorization": request.headers["authorization"]})


@dataclass
class Setup:
    gateway: str
    upstream: str
    jwks: JwksSource
    clock: Any  # a ManualClock, or the system clock for the real-time test
    config_path: Path
    keys_dir: Path

    def rotate(self) -> str:
        """``frontdesk keys rotate``, then wait (real time: the gateway's watcher) until the JWKS publishes the
        new key; returns its kid. The CLI stamps the key's start on the real clock, so a manual clock is first
        caught up with real time: a test's "publish_ahead later" then counts from the rotation, however long the
        set-up took on a loaded machine."""
        if isinstance(self.clock, ManualClock):
            self.clock.now = max(self.clock.now, time.time())
        assert cli_main(["keys", "rotate", "--config", str(self.config_path)]) == 0
        kid = KeyDirectory(self.keys_dir, overlap=OVERLAP).files()[0].kid
        wait_until(
            lambda: kid in {k["kid"] for k in httpx.get(f"{self.gateway}/.well-known/jwks.json").json()["keys"]},
            what="the new key to be published",
        )
        return kid


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    with running_setup(tmp_path, ManualClock(start=time.time())) as ready:
        yield ready


@contextmanager
def running_setup(
    tmp_path: Path, clock: Clock, *, keys: str = "", reload: str = "100ms", refetch: float = 30
) -> Iterator[Setup]:
    gw_port, up_port = free_port(), free_port()
    config_path = gateway_config(
        tmp_path,
        f"""
[store]
url = "memory://"
[keys]
algorithm = "EdDSA"
directory = "keys"
overlap = "{OVERLAP}s"
reload_interval = "{reload}"
{keys}
[[routes]]
prefix = "/api/"
upstream = "http://127.0.0.1:{up_port}"
""",
    )
    assert cli_main(["keys", "rotate", "--config", str(config_path)]) == 0  # the first key
    config = load_config(config_path, env=SECRETS)
    gateway = create_app(config, authenticator=authenticator, clock=clock)
    assert isinstance(gateway.app, ProxyApp)  # create_app wires the [[routes]] above
    jwks = JwksSource(f"http://127.0.0.1:{gw_port}/.well-known/jwks.json", min_refetch_interval=refetch, clock=clock)
    upstream = FrontdeskMiddleware(Starlette(routes=[Route("/api/whoami", whoami)]), BearerAuth(jwks=jwks, clock=clock))
    with (
        serve_in_thread(gateway, port=gw_port, lifespan="on") as gw_url,
        serve_in_thread(upstream, port=up_port) as up_url,
    ):
        yield Setup(gw_url, up_url, jwks, clock, config_path, tmp_path / "keys")


def _kid(authorization: str) -> str:
    return str(jwt.get_unverified_header(authorization.removeprefix("Bearer "))["kid"])


def test_rotation_with_overlap_end_to_end(setup: Setup) -> None:
    gw = httpx.Client(base_url=setup.gateway, headers={"x-csrf": "1"}, timeout=30)
    up = httpx.Client(base_url=setup.upstream, timeout=30)
    directory = KeyDirectory(setup.keys_dir, overlap=OVERLAP)
    key1 = directory.files()[0]

    login = gw.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 200
    cookie = {"cookie": login.headers["set-cookie"].split(";", 1)[0]}
    first = gw.get("/api/whoami", headers=cookie)
    assert first.status_code == 200, first.text
    assert first.json()["id"] == "id-alice"
    old_bearer = first.json()["authorization"]
    assert _kid(old_bearer) == key1.kid
    assert setup.jwks.fetches == 1

    # Rotate: the gateway publishes both keys, and signs new tokens with the new one after publish_ahead.
    setup.rotate()
    key2 = directory.files()[0]
    published = gw.get("/.well-known/jwks.json").json()
    assert {k["kid"] for k in published["keys"]} == {key1.kid, key2.kid}
    assert all("d" not in k for k in published["keys"])

    setup.clock.advance(PUBLISH_AHEAD + 1)  # the new key signs now; past the upstream's minimum refetch interval
    refreshed = gw.post("/auth/refresh", headers=cookie)  # mints a fresh access token, rotates the cookie
    assert refreshed.status_code == 200
    cookie = {"cookie": refreshed.headers["set-cookie"].split(";", 1)[0]}
    second = gw.get("/api/whoami", headers=cookie)
    assert second.status_code == 200, second.text
    assert _kid(second.json()["authorization"]) == key2.kid
    assert setup.jwks.fetches == 2  # the unknown kid made the upstream refetch, once

    # Inside the overlap the old key's tokens still verify at the upstream.
    assert up.get("/api/whoami", headers={"authorization": old_bearer}).status_code == 200

    # Made-up kids cannot make the upstream hammer the gateway: no refetch inside the interval.
    forged = jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "made-up", "typ": "at+jwt"})
    for _ in range(5):
        assert up.get("/api/whoami", headers={"authorization": f"Bearer {forged}"}).status_code == 401
    assert setup.jwks.fetches == 2

    # After the overlap the old key is gone from the JWKS, and the upstream (refetching a stale set) refuses
    # even a long-lived token signed with it.
    setup.clock.advance(OVERLAP + 3600)
    now = int(setup.clock())
    old_key = signing_key_from_private(key1.key)
    long_lived = jwt.encode(
        {
            "sub": "id-alice",
            "sid": "s",
            "jti": "j",
            "iat": now,
            "exp": now + 600,
            "iss": "frontdesk",
            "aud": "frontdesk-api",
        },
        old_key.sign_key,
        algorithm="EdDSA",
        headers={"kid": old_key.kid, "typ": "at+jwt"},
    )
    assert [k["kid"] for k in gw.get("/.well-known/jwks.json").json()["keys"]] == [key2.kid]
    refused = up.get("/api/whoami", headers={"authorization": f"Bearer {long_lived}"})
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    # ...while the session itself carries on with the new key.
    third = gw.get("/api/whoami", headers=cookie)
    assert third.status_code == 200
    assert _kid(third.json()["authorization"]) == key2.kid


def _whoami_after_refresh(gw: httpx.Client, cookie: dict[str, str]) -> tuple[httpx.Response, dict[str, str]]:
    """Mint a fresh access token (a refresh rotates the cookie and re-mints), then call the upstream with it."""
    refreshed = gw.post("/auth/refresh", headers=cookie)
    assert refreshed.status_code == 200, refreshed.text
    cookie = {"cookie": refreshed.headers["set-cookie"].split(";", 1)[0]}
    return gw.get("/api/whoami", headers=cookie), cookie


def test_a_verifier_that_fetched_just_before_a_rotation_accepts_every_token_minted_after_it(setup: Setup) -> None:
    gw = httpx.Client(base_url=setup.gateway, headers={"x-csrf": "1"}, timeout=30)
    login = gw.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    cookie = {"cookie": login.headers["set-cookie"].split(";", 1)[0]}
    key1 = _kid(gw.get("/api/whoami", headers=cookie).json()["authorization"])
    assert setup.jwks.fetches == 1  # the upstream fetched the JWKS just now, so it will not refetch for 30 s

    key2 = setup.rotate()
    kids = []
    for _ in range(0, PUBLISH_AHEAD + 30, 5):  # tokens minted every 5 s after the rotation, past publish_ahead
        response, cookie = _whoami_after_refresh(gw, cookie)
        assert response.status_code == 200, (setup.clock(), response.text)
        kids.append(_kid(response.json()["authorization"]))
        setup.clock.advance(5)
    assert kids[0] == key1 and kids[-1] == key2  # the switch happened, and no token of either key was refused
    assert setup.jwks.fetches == 2  # one refetch, on the first token of the new key


def test_publish_ahead_on_the_real_clock(tmp_path: Path) -> None:
    """The same on real time, with short settings: publish_ahead 4 s, reload 0.5 s, verifier refetch 2 s."""
    with running_setup(tmp_path, system_clock, keys='publish_ahead = "4s"', reload="500ms", refetch=2) as setup:
        gw = httpx.Client(base_url=setup.gateway, headers={"x-csrf": "1"}, timeout=30)
        login = gw.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        cookie = {"cookie": login.headers["set-cookie"].split(";", 1)[0]}
        key1 = _kid(gw.get("/api/whoami", headers=cookie).json()["authorization"])
        key2 = setup.rotate()
        kids = [key1]
        deadline = time.monotonic() + 60
        while kids[-1] != key2 or kids.count(key2) < 3:  # until a few tokens of the new key have passed
            assert time.monotonic() < deadline, kids
            response, cookie = _whoami_after_refresh(gw, cookie)
            assert response.status_code == 200, (kids, response.text)
            kids.append(_kid(response.json()["authorization"]))
            time.sleep(0.1)
        assert setup.jwks.fetches == 2


def test_unreachable_jwks_is_a_401_not_a_500() -> None:
    dead = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    upstream = FrontdeskMiddleware(Starlette(routes=[Route("/api/whoami", whoami)]), BearerAuth(jwks_url=dead))
    token = jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "k1", "typ": "at+jwt"})
    with serve_in_thread(upstream) as url, httpx.Client(base_url=url) as client:
        response = client.get("/api/whoami", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
