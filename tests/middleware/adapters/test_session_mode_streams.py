"""Session mode on real servers: a WebSocket ends with its session, as at the gateway (Starlette on uvicorn).

The drift cases every adapter shares (a rotated cookie is never cacheable, an upgrade needs an Origin) are one
table over the proxy and both session modes, in test_admission_table.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mw_world import COOKIE, PASSWORD, session_auth_on
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from frontdesk.middleware.asgi import FrontdeskMiddleware
from frontdesk.middleware.clock import ManualClock
from tests.support import serve_in_thread

# --- the apps -------------------------------------------------------------------------------------------


class Ended:
    """Which WebSocket handlers have returned (the app learned that its socket is gone)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.changed = threading.Event()

    def add(self, name: str) -> None:
        self.names.append(name)
        self.changed.set()


def starlette_app(ended: Ended) -> Starlette:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text("echo:" + await websocket.receive_text())
        except WebSocketDisconnect:
            ended.add("echo")

    async def ticker(websocket: WebSocket) -> None:
        # never reads: it can only learn that the socket is gone from a failing send
        await websocket.accept()
        try:
            while True:
                await websocket.send_text("tick")
                await asyncio.sleep(0.02)
        except WebSocketDisconnect:
            ended.add("ticker")

    return Starlette(routes=[WebSocketRoute("/ws/echo", echo), WebSocketRoute("/ws/ticker", ticker)])


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(start=time.time())


@pytest.fixture(scope="module")
def ended() -> Ended:
    return Ended()


@pytest.fixture(scope="module")
def servers(clock: ManualClock, ended: Ended) -> Iterator[dict[str, str]]:
    with serve_in_thread(FrontdeskMiddleware(starlette_app(ended), session_auth_on(clock))) as asgi_url:
        yield {"starlette": asgi_url}


def login(url: str) -> str:
    response = httpx.post(f"{url}/auth/login", json={"username": "ann", "password": PASSWORD}, headers={"x-csrf": "1"})
    assert response.status_code == 200, response.text
    return str(response.cookies.get(COOKIE) or response.headers["set-cookie"].split(";")[0].split("=", 1)[1])


def headers(url: str, token: str, **extra: str) -> dict[str, str]:
    return {"cookie": f"{COOKIE}={token}", "x-csrf": "1", **extra}


# --- WebSockets end with their session (ASGI) ------------------------------------------------------------


def _ws(url: str, path: str, token: str, origin: str | None) -> Any:
    extra = {"origin": origin} if origin else {}
    return connect(url.replace("http://", "ws://") + path, additional_headers=headers(url, token, **extra))


@pytest.mark.parametrize("path", ["/ws/echo", "/ws/ticker"])
def test_a_websocket_is_closed_when_its_session_logs_out(servers: dict[str, str], ended: Ended, path: str) -> None:
    url = servers["starlette"]
    token = login(url)
    ended.changed.clear()
    with _ws(url, path, token, url) as ws:
        if path == "/ws/echo":
            ws.send("hi")
            assert ws.recv(timeout=10) == "echo:hi"
        else:
            assert ws.recv(timeout=10) == "tick"
        out = httpx.post(f"{url}/auth/logout", headers=headers(url, token))
        assert out.status_code in (200, 204)
        deadline = time.monotonic() + 10  # generous; the close comes within a second
        with pytest.raises(ConnectionClosed) as info:
            while time.monotonic() < deadline:  # a ticker may still have a few messages in flight
                ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    # the app's handler saw its socket end (receive or send raised WebSocketDisconnect) and returned
    assert ended.changed.wait(10) and path.rsplit("/", 1)[1] in ended.names


def test_a_websocket_of_a_live_session_stays_open(servers: dict[str, str]) -> None:
    url = servers["starlette"]
    token = login(url)
    other = login(url)
    with _ws(url, "/ws/echo", token, url) as ws:
        httpx.post(f"{url}/auth/logout", headers=headers(url, other))  # someone else's logout
        for n in range(20):
            ws.send(str(n))
            assert ws.recv(timeout=10) == f"echo:{n}"
