"""``BearerAuth(revocations=...)`` takes what the README suggests: the gateway's store URL (or a ``Store``),
opened once on first use; anything else is refused when the middleware is built, not at the first request.

End to end: a real gateway (``create_app`` with its SQLite file) proxies to an upstream in bearer mode that
was given nothing but ``revocations="sqlite:///<the gateway's db>"``; after logout, the session's access
token (replayed straight at the upstream) is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mw_support import gateway_config
from mw_world import PASSWORD, authenticator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from frontdesk.gateway.app import create_app
from frontdesk.gateway.config import load_config
from frontdesk.middleware.asgi import FrontdeskMiddleware
from frontdesk.middleware.bearer import BearerAuth
from frontdesk.middleware.store import MemoryStore
from frontdesk.middleware.store.sqlite import SqliteStore
from frontdesk.middleware.tokens import KeyRing
from tests.support import free_port, serve_in_thread, wait_until

ACCESS_SECRET = "a" * 40
SECRETS = {"FRONTDESK_ACCESS_SECRET": ACCESS_SECRET, "FRONTDESK_REFRESH_SECRET": "r" * 40}


async def whoami(request: Request) -> JSONResponse:
    # Test-only: echo the bearer so the test can replay it straight at the upstream after logout.
    return JSONResponse({"id": request.user.identity, "authorization": request.headers["authorization"]})


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    gw_port, up_port = free_port(), free_port()
    config_path = gateway_config(
        tmp_path,
        f"""
[store]
url = "sqlite:///{tmp_path}/frontdesk.db"
[[routes]]
prefix = "/api/"
upstream = "http://127.0.0.1:{up_port}"
""",
    )
    gateway = create_app(load_config(config_path, env=SECRETS), authenticator=authenticator)
    auth = BearerAuth(keyring=KeyRing.from_secrets(ACCESS_SECRET), revocations=f"sqlite:///{tmp_path}/frontdesk.db")
    upstream = FrontdeskMiddleware(Starlette(routes=[Route("/api/whoami", whoami)]), auth)
    with (
        serve_in_thread(gateway, port=gw_port, lifespan="on") as gw_url,
        serve_in_thread(upstream, port=up_port) as up_url,
    ):
        yield gw_url, up_url


def test_a_store_url_makes_a_logged_out_token_fail(servers: tuple[str, str]) -> None:
    gw_url, up_url = servers
    with httpx.Client(base_url=gw_url, headers={"x-csrf": "1"}, timeout=30) as gw, httpx.Client(timeout=30) as up:
        login = gw.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        assert login.status_code == 200
        cookie = {"cookie": login.headers["set-cookie"].split(";", 1)[0]}
        first = gw.get("/api/whoami", headers=cookie)
        assert first.status_code == 200, first.text
        bearer = {"authorization": first.json()["authorization"]}
        assert up.get(f"{up_url}/api/whoami", headers=bearer).status_code == 200  # straight at the upstream

        assert gw.post("/auth/logout", headers=cookie).status_code in (200, 204)
        replayed = wait_until(  # REVOCATION_TTL is 0.5 s
            lambda: (r := up.get(f"{up_url}/api/whoami", headers=bearer)).status_code != 200 and r,
            what="the logged-out session's token to be refused",
        )
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "session_revoked"
    assert 'error="invalid_token"' in replayed.headers["www-authenticate"]


def test_revocations_accepts_a_url_or_a_store(tmp_path: Path) -> None:
    ring = KeyRing.from_secrets(ACCESS_SECRET)
    assert isinstance(BearerAuth(keyring=ring, revocations=f"sqlite:///{tmp_path}/f.db").revocations, SqliteStore)
    assert isinstance(BearerAuth(keyring=ring, revocations="memory://").revocations, MemoryStore)
    store = MemoryStore()
    assert BearerAuth(keyring=ring, revocations=store).revocations is store
    assert BearerAuth(keyring=ring).revocations is None
    assert not (tmp_path / "f.db").exists()  # opened lazily, at the first request that needs it


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        ("ftp://example/db", ValueError, "sqlite:///"),
        ("frontdesk.db", ValueError, "sqlite:///"),
        (42, TypeError, "store URL"),
        (Path("frontdesk.db"), TypeError, "store URL"),
        (b"sqlite:///x.db", TypeError, "store URL"),
    ],
)
def test_anything_else_is_refused_at_construction(value: Any, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match="revocations") as info:
        BearerAuth(keyring=KeyRing.from_secrets(ACCESS_SECRET), revocations=value)
    assert words in str(info.value)
