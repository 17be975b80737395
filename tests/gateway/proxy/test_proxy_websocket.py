"""WebSocket routes: origin check, Bearer upstream, round trip, and the close when the session ends."""

from __future__ import annotations

import asyncio

import pytest
from proxy_support import Gateway, refresh_cookie
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def _headers(gw: Gateway, origin: str | None = "own", user: str | None = "alice") -> dict[str, str]:
    h = {"Cookie": "theme=dark; " + refresh_cookie(user, f"sid-{user}")} if user else {}
    if origin is not None:
        h["Origin"] = f"http://127.0.0.1:{gw.port}" if origin == "own" else origin
    return h


async def test_round_trip_with_bearer_and_subprotocol(gw: Gateway) -> None:
    url = f"ws://127.0.0.1:{gw.port}/ws/socket?room=1"
    async with connect(url, additional_headers=_headers(gw), subprotocols=["chat.v1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat.v1"
        await ws.send("hello")
        assert await ws.recv() == "echo:hello"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"
    (seen,) = gw.upstream.seen
    assert seen.target == "/api/socket"
    assert seen.header("authorization") == ["Bearer at.alice.sid-alice.frontdesk-api.1"]
    assert seen.header("cookie") == ["theme=dark"]
    assert seen.header("x-forwarded-for") == ["127.0.0.1"]
    await asyncio.wait_for(gw.upstream.ws_closed.wait(), 10)


async def test_closed_when_the_session_is_logged_out(gw: Gateway) -> None:
    url = f"ws://127.0.0.1:{gw.port}/ws/socket"
    async with connect(url, additional_headers=_headers(gw)) as ws:
        await ws.send("ping")
        assert await ws.recv() == "echo:ping"
        gw.engine.revoked.add("sid-alice")
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    await asyncio.wait_for(gw.upstream.ws_closed.wait(), 10)


@pytest.mark.parametrize(
    ("path", "origin", "user", "status"),
    [
        ("/ws/socket", "https://evil.example", "alice", 403),
        ("/ws/socket", None, "alice", 403),
        ("/ws/socket", "own", None, 401),
        ("/api/socket", "own", "alice", 403),  # a route without websocket = true
        ("/ws/../socket", "own", "alice", 400),
    ],
)
async def test_refused_upgrades(gw: Gateway, path: str, origin: str | None, user: str | None, status: int) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"ws://127.0.0.1:{gw.port}{path}", additional_headers=_headers(gw, origin, user)):
            pass
    assert info.value.response.status_code == status
    assert b'"error"' in info.value.response.body
    assert gw.upstream.seen == []
