"""The upstream client's HTTP/1.1 corners, against a scripted raw-socket upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.support import BOTH_LOOPS

Handler = Callable[[int, bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


class RawUpstream:
    """Reads request heads (and Content-Length bodies); ``handler`` answers and says whether to keep going."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.heads: list[bytes] = []
        self.connections = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn_no = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":")[1]))
                if not await self.handler(conn_no, head, reader, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def raw_gateway(proxy_factory: Any) -> AsyncIterator[Callable[[Handler], Awaitable[Any]]]:
    servers: list[asyncio.Server] = []

    async def make(handler: Handler) -> Any:
        upstream = RawUpstream(handler)
        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        gw = await proxy_factory(upstream_port=port)
        gw.raw = upstream
        return gw

    yield make
    for server in servers:
        server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@BOTH_LOOPS
async def test_stale_pooled_connection_is_retried_for_idempotent_requests_only(raw_gateway: Any) -> None:
    async def handler(conn: int, head: bytes, r: Any, w: asyncio.StreamWriter) -> bool:
        if conn == 1 and len(raw.heads) > 1:
            return False  # the race: the upstream closes the idle connection as our request arrives
        if conn == 3 and head.startswith(b"POST"):
            return False
        w.write(OK)
        return True

    gw = await raw_gateway(handler)
    raw = gw.raw
    async with gw.client() as c:
        assert (await c.get("/api/a")).status_code == 200
        r = await c.get("/api/b")  # lands on the stale socket, retried on a fresh one
        assert r.status_code == 200 and r.text == "ok"
        assert raw.connections == 2
        r = await c.post("/api/c", content=b"{}")  # on the pooled conn 2: fine
        assert r.status_code == 200
    assert gw.app.pool.open_connections <= 1


async def test_post_on_a_stale_connection_is_not_retried(raw_gateway: Any) -> None:
    async def handler(conn: int, head: bytes, r: Any, w: asyncio.StreamWriter) -> bool:
        if head.startswith(b"POST"):
            return False
        w.write(OK)
        return True

    gw = await raw_gateway(handler)
    async with gw.client() as c:
        assert (await c.get("/api/a")).status_code == 200
        r = await c.post("/api/b", content=b"{}")
        assert r.status_code == 502 and r.json()["error"] == "upstream_closed"
    assert gw.raw.connections == 1


@BOTH_LOOPS
async def test_head_interim_responses_and_eof_delimited_bodies(raw_gateway: Any) -> None:
    async def handler(conn: int, head: bytes, r: Any, w: asyncio.StreamWriter) -> bool:
        if head.startswith(b"HEAD"):
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\n")
            return True
        if b"/api/early" in head:
            w.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n" + OK)
            return True
        if b"/api/eof" in head:
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close")
            await w.drain()
            return False
        if b"/api/chunked" in head:
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            return True
        w.write(OK)
        return True

    gw = await raw_gateway(handler)
    async with gw.client() as c:
        r = await c.head("/api/x")
        assert r.status_code == 200 and r.headers["content-length"] == "100" and r.content == b""
        r = await c.get("/api/early")
        assert r.status_code == 200 and r.text == "ok" and "link" not in r.headers
        r = await c.get("/api/eof")
        assert r.status_code == 200 and r.text == "until-close"
        r = await c.get("/api/chunked")
        assert r.text == "abcde" and "content-length" not in r.headers
        assert (await c.get("/api/x")).text == "ok"


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    ],
)
async def test_broken_upstream_answers_502(raw_gateway: Any, reply: bytes) -> None:
    async def handler(conn: int, head: bytes, r: Any, w: asyncio.StreamWriter) -> bool:
        w.write(reply)
        await w.drain()
        return False

    gw = await raw_gateway(handler)
    async with gw.client() as c:
        try:
            r = await c.get("/api/x")
        except Exception as exc:  # a truncated body can only be signalled by closing the connection
            assert reply.endswith(b"short"), exc
        else:
            assert r.status_code == 502 and r.json()["error"] in ("bad_gateway", "upstream_closed")
    assert gw.app.pool.open_connections == 0


async def test_junk_after_a_response_is_never_served_to_the_next_request(raw_gateway: Any) -> None:
    async def handler(conn: int, head: bytes, r: Any, w: asyncio.StreamWriter) -> bool:
        w.write(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
        return True

    gw = await raw_gateway(handler)
    async with gw.client() as c:
        assert (await c.get("/api/a")).text == "ok"
        assert (await c.get("/api/b")).text == "ok"
    assert gw.raw.connections == 2
