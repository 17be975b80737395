"""The proxy's side of "logout ends streams", against real uvicorn servers and the fake token source: a
stream of a revoked session is cut and abandoned upstream, short responses never reach the session watch,
and streams without a session are not watched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from proxy_support import Gateway

from frontdesk.middleware.session_watch import STREAM_WATCH_DELAY
from tests.support import wait_until_async


async def test_an_event_stream_is_ended_and_abandoned_upstream_when_its_session_ends(gw: Gateway) -> None:
    async with gw.client() as c, c.stream("GET", "/api/sse") as r:
        events = r.aiter_bytes()
        assert await anext(events) == b"data: first\n\n"
        gw.engine.revoked.add("sid-alice")
        # An event stream has no "complete": it ends cleanly, so EventSource reconnects and meets the 401.
        rest = await asyncio.wait_for(_rest(events), 10)
    assert rest == b""
    await asyncio.wait_for(gw.upstream.sse_disconnected.wait(), 10)
    assert gw.app.pool.open_connections == 0
    assert not gw.upstream.sse_release.is_set()  # the upstream never got to finish: it was cut, not drained


async def test_a_download_is_cut_mid_body_when_its_session_ends(gw: Gateway) -> None:
    size = 1024**3
    got = 0
    async with gw.client() as c, c.stream("GET", f"/api/big?n={size}") as r:
        chunks = r.aiter_raw()
        got += len(await anext(chunks))
        gw.engine.revoked.add("sid-alice")
        with pytest.raises(httpx.RemoteProtocolError):  # closed mid-body: it cannot pass for a complete one
            async for chunk in chunks:
                got += len(chunk)
    assert got < size


async def _rest(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_another_sessions_logout_leaves_the_stream_alone(gw: Gateway) -> None:
    async with gw.client() as c, c.stream("GET", "/api/sse") as r:
        events = r.aiter_bytes()
        assert await anext(events) == b"data: first\n\n"
        gw.engine.revoked.add("sid-bob")
        # the watch has looked at alice's session a few times
        await wait_until_async(lambda: gw.engine.liveness_checks >= 3, what="the session watch's polls")
        gw.upstream.sse_release.set()
        assert b"".join([chunk async for chunk in events]) == b"data: last\n\n"


async def test_short_responses_never_reach_the_session_watch(gw: Gateway) -> None:
    async with gw.client() as c:
        for _ in range(20):
            assert (await c.get("/api/echo")).status_code == 200
            # streamed from the upstream (no Content-Length) but over in far less than STREAM_WATCH_DELAY
            assert len((await c.get("/api/big?n=200000")).content) == 200000
    await asyncio.sleep(STREAM_WATCH_DELAY * 2)  # any timer a short stream left behind would have fired
    assert gw.engine.liveness_checks == 0


async def test_a_stream_without_a_session_is_not_watched(gw: Gateway) -> None:
    async with gw.client(user=None) as c, c.stream("GET", "/open/sse") as r:
        events = r.aiter_bytes()
        assert await anext(events) == b"data: first\n\n"
        await asyncio.sleep(STREAM_WATCH_DELAY * 2)
        assert gw.engine.liveness_checks == 0
        gw.upstream.sse_release.set()
        assert b"".join([chunk async for chunk in events]) == b"data: last\n\n"
