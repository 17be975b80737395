"""Session mode keeps its invalidation watch running through the adapters: the ASGI adapter's lifespan hook
(two real uvicorn processes on one real Redis) and the WSGI adapter's ``start()`` (waitress). A process then
trusts its cached session rows until a logout is announced, instead of re-reading each one every 0.5 s.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from mw_support import serve_wsgi
from mw_world import ACCESS_SECRET, PASSWORD, REFRESH_SECRET, authenticator, starlette_app, wsgi_app

from frontdesk.middleware.asgi import FrontdeskMiddleware
from frontdesk.middleware.session_mode import SessionAuth
from frontdesk.middleware.sessions import SessionSettings
from frontdesk.middleware.wsgi import FrontdeskWSGIMiddleware
from tests.support import ServerProcess, free_port, wait_until
from tests.support.counting_store import CountingRedisStore

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
CSRF = {"x-csrf": "1"}
LOGOUT_BOUND = 1.0  # the README's promise: a logout is refused by every worker within 1 s


@pytest.fixture
def two_processes(redis_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two uvicorn processes serving ``redis_session_app`` on one Redis key prefix; their base URLs."""
    env = {**os.environ, "FRONTDESK_TEST_REDIS": redis_url, "FRONTDESK_TEST_PREFIX": f"t{uuid.uuid4().hex}:"}
    servers, urls = [], []
    try:
        for n in range(2):
            port = free_port()
            args = [sys.executable, "-m", "uvicorn", "redis_session_app:app", "--app-dir", str(HERE)]
            args += ["--host", "127.0.0.1", "--port", str(port), "--lifespan", "on", "--log-level", "warning"]
            server = ServerProcess(args, tmp_path / f"uvicorn{n}.log", cwd=ROOT, env=env, name=f"uvicorn {n}")
            servers.append(server.start())
            urls.append(f"http://127.0.0.1:{port}")
        for server, url in zip(servers, urls, strict=True):
            server.wait_answers(url + "/public/stats", status=200)
        yield urls
    finally:
        for server in servers:
            server.stop()


def _login(client: httpx.Client, url: str) -> dict[str, str]:
    """Log alice in at ``url``; the headers of her later requests (her refresh cookie and the CSRF header)."""
    login = client.post(url + "/auth/login", json={"username": "alice", "password": PASSWORD}, headers=CSRF)
    assert login.status_code == 200, login.text
    return {"cookie": login.headers["set-cookie"].split(";", 1)[0], **CSRF}


def _steady_reads(client: httpx.Client, url: str, headers: dict[str, str], reads: Callable[[], int]) -> int:
    """Session reads from the store during 3 s of requests, a few a second, to ``url``."""
    before = reads()
    for _ in range(30):
        assert client.get(url + "/whoami", headers=headers).status_code == 200
        time.sleep(0.1)  # the requests must span several of the 0.5 s a polled row lives
    return reads() - before


def _refused_within_bound(client: httpx.Client, logout_url: str, url: str, headers: dict[str, str]) -> None:
    assert client.post(logout_url + "/auth/logout", headers=headers).status_code in (200, 204)
    logged_out = time.monotonic()
    wait_until(lambda: client.get(url + "/whoami", headers=headers).status_code == 401, what="the logout refused")
    assert time.monotonic() - logged_out < LOGOUT_BOUND


def test_asgi_lifespan_runs_the_watch_a_logout_is_refused_by_the_other_process(two_processes: list[str]) -> None:
    one, other = two_processes
    with httpx.Client(timeout=10) as client:

        def stats(url: str) -> dict[str, int]:
            response = client.get(url + "/public/stats")
            assert response.status_code == 200, response.text
            return dict(response.json())

        headers = _login(client, one)
        assert client.get(other + "/whoami", headers=headers).json()["username"] == "alice"
        # The lifespan hook started the watch in both processes (without it, rows are polled every 0.5 s).
        assert stats(one)["watching"] and stats(other)["watching"]
        assert _steady_reads(client, other, headers, lambda: stats(other)["reads"]) == 0
        _refused_within_bound(client, one, other, headers)


def test_wsgi_start_runs_the_watch(redis_url: str) -> None:
    store = CountingRedisStore(redis_url, prefix=f"t{uuid.uuid4().hex}:")
    auth = SessionAuth.from_secrets(
        access_secret=ACCESS_SECRET,
        refresh_secret=REFRESH_SECRET,
        authenticator=authenticator,
        store=store,
        settings=SessionSettings(login_attempts_per_address=100_000),
    )
    middleware = FrontdeskWSGIMiddleware(wsgi_app, auth)
    middleware.start()  # what a WSGI app does once per worker process (there is no lifespan)
    try:
        assert auth.engine.freshness is not None and auth.engine.freshness.running
        with serve_wsgi(middleware) as url, httpx.Client(timeout=10) as client:
            headers = _login(client, url)
            assert client.get(url + "/whoami", headers=headers).json()["username"] == "alice"
            assert _steady_reads(client, url, headers, lambda: store.reads) == 0
            _refused_within_bound(client, url, url, headers)
    finally:
        middleware.close()
    assert not auth.engine.freshness.running  # close() stopped it


async def test_a_store_down_at_start_up_does_not_stop_the_app_starting() -> None:
    """The lifespan hook's start-up with Redis unreachable: logged, the app still starts (rows are polled)."""
    auth = SessionAuth.from_secrets(
        access_secret=ACCESS_SECRET,
        refresh_secret=REFRESH_SECRET,
        authenticator=authenticator,
        store=f"redis://127.0.0.1:{free_port()}/0",  # nobody listens there
    )
    app = FrontdeskMiddleware(starlette_app(), auth)
    inbox: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await inbox.put({"type": "lifespan.startup"})
    await inbox.put({"type": "lifespan.shutdown"})
    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert auth.engine.freshness is not None and not auth.engine.freshness.running
