"""The floor of a proxy in Python: forwarding and nothing else, for ``proxy_bench.py --floor``.

uvloop with httptools on both sides, callbacks only (no task, future or ASGI message per request), pooled
keep-alive upstream connections, one write per direction. It checks no session, verifies nothing, keeps no
header hygiene beyond dropping hop-by-hop headers, and adds only a fixed Bearer and ``X-Forwarded-For``: what
nginx's ``proxy_pass`` does in the same benchmark. Whatever frontdesk costs above this is the price of its
features and layers; what this costs above nginx is the price of Python. Not a product: no timeouts, no
limits, GET-sized requests only.

    python tests/bench/bare_forwarder.py PORT UPSTREAM_PORT BEARER
"""

from __future__ import annotations

import asyncio
import collections
import sys

import httptools
import uvloop

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"proxy-connection"}
)


class Upstream(asyncio.Protocol):
    def __init__(self, pool: collections.deque[Upstream]) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.client: Client | None = None
        self.transport: asyncio.Transport | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.headers = []
        self.body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        self.pool.append(self)
        if client is not None:
            client.answer(self.parser.get_status_code(), self.headers, b"".join(self.body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool:
            self.pool.remove(self)
        if self.client is not None and self.client.transport is not None:
            self.client.transport.close()


class Client(asyncio.Protocol):
    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_message_complete(self) -> None:
        out = [b"%s %s HTTP/1.1\r\n" % (self.parser.get_method(), self.url)]
        for name, value in self.headers:
            if name.lower() not in HOP_BY_HOP:
                out.append(b"%s: %s\r\n" % (name, value))
        out.append(self.forwarder.added)
        self.forwarder.send(self, b"".join(out))

    def answer(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        out = [b"HTTP/1.1 %d \r\n" % status]
        for name, value in headers:
            if name not in HOP_BY_HOP:
                out.append(b"%s: %s\r\n" % (name, value))
        out.append(b"\r\n")
        out.append(body)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))


class Forwarder:
    def __init__(self, upstream_port: int, bearer: bytes) -> None:
        self.upstream_port = upstream_port
        self.pool: collections.deque[Upstream] = collections.deque()
        self.added = b"authorization: Bearer %s\r\nx-forwarded-for: 127.0.0.1\r\n\r\n" % bearer

    def send(self, client: Client, head: bytes) -> None:
        if self.pool:
            upstream = self.pool.pop()
            upstream.client = client
            assert upstream.transport is not None
            upstream.transport.write(head)
        else:
            asyncio.get_running_loop().create_task(self._connect(client, head))

    async def _connect(self, client: Client, head: bytes) -> None:
        loop = asyncio.get_running_loop()
        transport, upstream = await loop.create_connection(lambda: Upstream(self.pool), "127.0.0.1", self.upstream_port)
        upstream.client = client
        transport.write(head)


async def serve(port: int, upstream_port: int, bearer: bytes) -> None:
    forwarder = Forwarder(upstream_port, bearer)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Client(forwarder), "127.0.0.1", port, backlog=4096)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode("ascii")))
