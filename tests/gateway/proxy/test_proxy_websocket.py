"""WebSocket routes: origin check, Bearer upstream, round trip, and the close when the session ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from proxy_support import Gateway, refresh_cookie
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from frontdesk.gateway.proxy.settings import ProxySettings, parse_proxy_settings
from tests.support import BOTH_LOOPS, wait_until_async


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


@BOTH_LOOPS
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


# -- bounds: sockets per session, bytes per message -------------------------------------------------------


async def test_open_sockets_per_session_are_capped(proxy_factory: Any) -> None:
    gw: Gateway = await proxy_factory(proxy={"max_websockets_per_session": 2})
    url = f"ws://127.0.0.1:{gw.port}/ws/socket"
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(connect(url, additional_headers=_headers(gw)))
        await stack.enter_async_context(connect(url, additional_headers=_headers(gw)))
        with pytest.raises(InvalidStatus) as info:
            async with connect(url, additional_headers=_headers(gw)):
                pass
        assert info.value.response.status_code == 403
        assert json.loads(info.value.response.body)["error"] == "websocket_refused"
        assert b"max_websockets_per_session" in info.value.response.body
        # another session is not affected by alice's count
        async with connect(url, additional_headers=_headers(gw, user="bob")) as ws:
            await ws.send("hi")
            assert await ws.recv() == "echo:hi"
        # a closed socket frees its place
        await first.close()

        async def reopened() -> bool:
            try:
                async with connect(url, additional_headers=_headers(gw)) as ws:
                    await ws.send("again")
                    assert await ws.recv() == "echo:again"
                    return True
            except InvalidStatus:
                return False  # the gateway notices the close a moment later

        await wait_until_async(reopened, interval=0.02, what="a place for a new socket")


async def test_default_message_size_is_well_below_16_mib(gw: Gateway) -> None:
    assert ProxySettings().max_websocket_message_size == 1024 * 1024
    async with connect(f"ws://127.0.0.1:{gw.port}/ws/socket", additional_headers=_headers(gw)) as ws:
        await ws.send(b"\x00" * (1024 * 1024))  # exactly the limit passes
        assert len(await ws.recv()) == 1024 * 1024
        await ws.send(b"\x00" * (2 * 1024 * 1024))
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_message_size_setting_applies_both_ways(proxy_factory: Any) -> None:
    gw: Gateway = await proxy_factory(proxy={"max_websocket_message_size": "64KiB"})
    url = f"ws://127.0.0.1:{gw.port}/ws/socket"
    # browser -> upstream: a multi-byte text over the limit in bytes (not in characters) is refused
    async with connect(url, additional_headers=_headers(gw), max_size=None) as ws:
        await ws.send("é" * 40_000)  # 40,000 characters, 80,000 bytes
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    # upstream -> browser: the echo adds "echo:" to a message of exactly the limit
    async with connect(url, additional_headers=_headers(gw), max_size=None) as ws:
        await ws.send("x" * 65536)
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def test_websocket_settings_are_validated() -> None:
    s, problems = parse_proxy_settings({"max_websockets_per_session": 3, "max_websocket_message_size": "256KiB"})
    assert problems == [] and (s.max_websockets_per_session, s.max_websocket_message_size) == (3, 256 * 1024)
    _, problems = parse_proxy_settings({"max_websockets_per_session": 0, "max_websocket_message_size": "0"})
    assert [p.split(":")[0] for p in problems] == [
        "proxy.max_websockets_per_session",
        "proxy.max_websocket_message_size",
    ]
