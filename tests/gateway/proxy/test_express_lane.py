"""The fast path's express lane (issue 11): a bodiless request whose session grant the engine remembers, sent on
an idle pooled upstream connection at once and answered from that connection's callback, without a task
(``ProtocolClient.express``, ``HttpCycle.admit_at_once / send_at_once / whole_at_once``). Whatever it cannot
finish goes on in a task from where it stopped (``HttpCycle.forward``): these tests drive each of those turns
against real servers and check that the browser cannot tell which way its answer went.

The gateway here is the proxy behind the gateway's own edge layer (request ids, security headers), as
``frontdesk serve`` runs it. Every test runs on both protocols (``[fast]``, ``[asgi]``) unless it proves the lane
itself; the ``lanes`` fixture says which requests took it (on ``[asgi]`` none is ever offered it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from proxy_support import FakeEngine, Gateway, Servers, Trust, Upstream, refresh_cookie, route_config, spa

from frontdesk.gateway.edge import GatewayEdge
from frontdesk.gateway.proxy import ProxyApp, parse_proxy_settings, parse_routes
from frontdesk.gateway.proxy.fast import FastPath, ProtocolClient
from frontdesk.gateway.request_ids import RequestIds, current_request_id
from frontdesk.gateway.security_headers import SecurityHeaders
from frontdesk.gateway.serving import FastHttp
from tests.support import BOTH_LOOPS, wait_until_async

FAST_ONLY = pytest.mark.parametrize("server_protocol", [FastHttp])

# -- the gateway: the proxy behind the edge layer, on a recording or a scripted upstream -----------------------


class EdgeApp:
    """The proxy as ``frontdesk serve`` runs it: through the gateway's edge (request id, security headers) on
    both sides, the fast path's answers included (``FastPath(edge=...)``)."""

    def __init__(self, proxy: ProxyApp) -> None:
        self.edge = GatewayEdge(proxy, ids=RequestIds(trusted=Trust()), security=SecurityHeaders())
        self.fast_path = FastPath(proxy, edge=self.edge)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.edge(scope, receive, send)


Handler = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]


class ScriptedUpstream:
    """A raw upstream: ``handler(connection number, request head, writer)`` answers and says whether to keep
    the connection (False: it is closed without a word more)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.heads: list[tuple[int, bytes]] = []
        self.connections = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append((number, head))
                if not await self.handler(number, head, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@dataclass
class Scripted:
    gw: Gateway
    upstream: ScriptedUpstream


@pytest.fixture
async def make_gateway(server_protocol: Any) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    servers = Servers()
    proxies: list[ProxyApp] = []
    raw: list[asyncio.Server] = []

    async def make(upstream_port: int | None = None) -> Gateway:
        upstream = Upstream()
        up_port = upstream_port or await servers.start(upstream)
        routes, problems = parse_routes(route_config(up_port), default_audience="frontdesk-api")
        assert problems == []
        settings, problems = parse_proxy_settings({"max_body_size": "1MB"})
        assert problems == []
        engine = FakeEngine()
        proxy = ProxyApp(routes, engine, settings=settings, trusted=Trust(), fallback=spa, request_id=current_request_id)
        proxies.append(proxy)
        port = await servers.start(EdgeApp(proxy), http=server_protocol)
        return Gateway(port, proxy, engine, upstream, up_port)

    async def scripted(handler: Handler) -> Scripted:
        upstream = ScriptedUpstream(handler)
        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        raw.append(server)
        return Scripted(await make(server.sockets[0].getsockname()[1]), upstream)

    make.scripted = scripted  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        await servers.stop()
        for proxy in proxies:
            await proxy.aclose()
        for server in raw:
            server.close()


@dataclass
class Lanes:
    """What the express lane did: per request it was asked to take, whether it did; and how many of those it
    handed on to a task (``ProtocolClient._continue``: a stream, a failure, a 401 to retry...)."""

    taken: list[bool] = field(default_factory=list)
    resumed: int = 0


@pytest.fixture
def lanes(monkeypatch: pytest.MonkeyPatch) -> Lanes:
    seen = Lanes()
    express, resume = ProtocolClient.express, ProtocolClient._continue

    def recording(self: ProtocolClient, server: Any) -> bool:
        taken = express(self, server)
        seen.taken.append(taken)
        return taken

    def resuming(self: ProtocolClient, server: Any, work: Any) -> None:
        seen.resumed += 1
        resume(self, server, work)

    monkeypatch.setattr(ProtocolClient, "express", recording)
    monkeypatch.setattr(ProtocolClient, "_continue", resuming)
    return seen


def fast(request: pytest.FixtureRequest) -> bool:
    """Whether the test runs on the fast path's protocol (the only one with an express lane)."""
    return request.getfixturevalue("server_protocol") is FastHttp


def count_grants(engine: FakeEngine) -> list[bool]:
    """Wrap ``engine.grant`` (the async ask the express lane avoids): one entry (its force_new) per call."""
    asked: list[bool] = []
    grant = engine.grant

    async def counting(cookie_header: str | None, *, audience: str | None = None, force_new: bool = False) -> Any:
        asked.append(force_new)
        return await grant(cookie_header, audience=audience, force_new=force_new)

    engine.grant = counting  # type: ignore[method-assign]
    return asked


class Logged(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[Callable[[], Logged]]:
    """Call it once the servers run (uvicorn's logging config replaces the handlers of its loggers): the
    warnings and errors of uvicorn's and frontdesk's loggers from then on."""
    attached: list[tuple[logging.Logger, Logged]] = []

    def attach() -> Logged:
        handler = Logged()
        for name in ("uvicorn.error", "frontdesk"):
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            attached.append((logger, handler))
        return handler

    yield attach
    for logger, handler in attached:
        logger.removeHandler(handler)


# -- a browser speaking raw HTTP/1.1, reading answers one by one -----------------------------------------------


def req(method: str, path: str, *, user: str | None = "alice", extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: gw\r\nx-csrf: 1\r\n"
    if user is not None:
        head += f"cookie: theme=dark; {refresh_cookie(user, f'sid-{user}')}\r\n"
    return (head + extra + "\r\n").encode()


@dataclass
class Answer:
    raw: bytes  # the bytes on the wire: head, then the body as framed
    head: bytes
    body: bytes  # unframed

    @property
    def status(self) -> int:
        return int(self.head[9:12])

    def header(self, name: bytes) -> list[bytes]:
        return re.findall(rb"\r\n" + name + rb": ([^\r]*)", self.head)

    def json(self) -> Any:
        return json.loads(self.body)


class Browser:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, gw: Gateway) -> Browser:
        return cls(*await asyncio.open_connection("127.0.0.1", gw.port))

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def answer(self, *, head_only: bool = False) -> Answer:
        """The next answer; ``head_only``: the answer to a HEAD (its framing headers describe no body)."""
        reader = self.reader
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        raw, body = head, b""
        status = int(head[9:12])
        length = re.search(rb"\r\ncontent-length: (\d+)", head)
        if head_only or status in (204, 304):
            pass
        elif b"\r\ntransfer-encoding: chunked\r\n" in head:
            while True:
                line = await reader.readuntil(b"\r\n")
                size = int(line[:-2], 16)
                chunk = await reader.readexactly(size + 2)
                raw += line + chunk
                body += chunk[:-2]
                if size == 0:
                    break
        elif length is not None:
            body = await asyncio.wait_for(reader.readexactly(int(length.group(1))), 10)
            raw += body
        else:
            body = await asyncio.wait_for(reader.read(), 10)  # until the gateway closes
            raw += body
        return Answer(raw, head, body)

    async def ask(self, data: bytes, **kw: Any) -> Answer:
        self.send(data)
        return await self.answer(**kw)

    async def closed(self) -> bool:
        """Whether the gateway closed the connection (EOF with nothing more sent)."""
        return await asyncio.wait_for(self.reader.read(), 5) == b""

    def close(self) -> None:
        self.writer.close()


async def ask(gw: Gateway, data: bytes, **kw: Any) -> Answer:
    """One request on a connection of its own."""
    browser = await Browser.open(gw)
    try:
        return await browser.ask(data, **kw)
    finally:
        browser.close()


def shape(answer: Answer) -> bytes:
    """The answer's bytes with what must differ per request masked: the date and the request id."""
    raw = re.sub(rb"\r\ndate: [^\r]*", b"\r\ndate: -", answer.raw)
    return re.sub(rb"\r\nx-request-id: [^\r]*", b"\r\nx-request-id: -", raw)


SECURITY = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"same-origin"),
]


def assert_secured(answer: Answer) -> None:
    for name, value in SECURITY:
        assert answer.header(name) == [value], (name, answer.head)
    assert len(answer.header(b"x-request-id")) == 1 and len(answer.header(b"x-request-id")[0]) == 32, answer.head


def idle(gw: Gateway) -> int:
    """Idle pooled upstream connections."""
    return sum(len(conns) for conns in gw.app.pool._idle.values())


# -- the lane itself ---------------------------------------------------------------------------------------------


@FAST_ONLY
async def test_the_second_request_of_a_session_is_answered_by_the_express_lane_with_the_same_bytes(
    make_gateway: Any, lanes: Lanes
) -> None:
    gw = await make_gateway()
    asked = count_grants(gw.engine)
    browser = await Browser.open(gw)
    first = await browser.ask(req("GET", "/api/hop"))  # no grant remembered yet, no idle connection: a task
    second = await browser.ask(req("GET", "/api/hop"))  # the same connection: express
    browser.close()
    third = await ask(gw, req("GET", "/api/hop"))  # another browser connection, the same session: express
    assert lanes.taken == [False, True, True] and lanes.resumed == 0
    assert asked == [False]  # grant() was asked once; the engine's memo answered the other two
    assert [call["force_new"] for call in gw.engine.calls] == [False] * 3
    # The browser cannot tell: status, headers (security headers, cache-control, their order), body, framing.
    assert first.status == 200 and first.json() == {}
    assert first.header(b"cache-control") == [b"public, max-age=300"] and first.header(b"vary") == [b"Cookie"]
    assert first.header(b"x-kept") == [b"yes"]
    assert not first.header(b"x-hop") and first.header(b"server") == [b"uvicorn"]  # the gateway's, not the upstream's
    assert_secured(first)
    assert shape(second) == shape(first) == shape(third)
    # One pooled upstream connection served all three; each request had its own id, written upstream.
    assert len({seen.client_port for seen in gw.upstream.seen}) == 1
    ids = [answer.header(b"x-request-id")[0].decode() for answer in (first, second, third)]
    assert [seen.header("x-request-id") for seen in gw.upstream.seen] == [[rid] for rid in ids]
    assert len(set(ids)) == 3


@FAST_ONLY
async def test_what_the_express_lane_may_not_take_goes_the_usual_way(make_gateway: Any, lanes: Lanes) -> None:
    gw = await make_gateway()
    assert (await ask(gw, req("GET", "/api/echo"))).status == 200  # remembers alice's grant, pools a connection
    assert (await ask(gw, req("GET", "/api/echo", user="bob"))).status == 200  # bob: not remembered
    answer = await ask(gw, req("POST", "/api/echo", extra="content-length: 2\r\n") + b"{}")  # a body
    assert answer.status == 200 and answer.json()["body"] == "{}"
    answer = await ask(gw, req("GET", "/api/echo", extra="x-csrf-missing: 1\r\n").replace(b"x-csrf: 1\r\n", b""))
    assert answer.status == 403  # refused: written by the task, as every refusal
    assert_secured(answer)
    answer = await ask(gw, req("GET", "/open/echo", user=None))  # auth = "none": no grant needed at all
    assert answer.status == 200 and answer.json()["target"] == "/api/echo"
    gw.engine.rotate_next = True  # a grant that rotates the cookie must be asked of grant() (the memo says no)
    answer = await ask(gw, req("GET", "/api/echo"))
    assert answer.status == 200 and len(answer.header(b"set-cookie")) == 1
    assert lanes.taken == [False, False, False, False, True, False] and lanes.resumed == 0


@FAST_ONLY
async def test_a_request_with_no_idle_pooled_connection_connects_in_a_task(make_gateway: Any, lanes: Lanes) -> None:
    gw = await make_gateway()
    slow = await Browser.open(gw)
    assert (await ask(gw, req("GET", "/api/echo"))).status == 200
    slow.send(req("GET", "/api/slow?s=0.5"))  # takes the one idle connection...
    await wait_until_async(lambda: len(gw.upstream.seen) == 2, what="the slow request upstream")
    answer = await ask(gw, req("GET", "/api/echo?n=3"))  # ... so this one connects, in a task
    assert answer.status == 200 and answer.json()["target"] == "/api/echo?n=3"
    assert (await slow.answer()).json() == {"slept": True}
    slow.close()
    assert lanes.taken == [False, True, False] and lanes.resumed == 0
    assert len({seen.client_port for seen in gw.upstream.seen}) == 2


# -- what the express lane hands on to a task ---------------------------------------------------------------------


OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


@BOTH_LOOPS
async def test_a_stale_pooled_connection_under_an_express_request_is_retried(
    make_gateway: Any, lanes: Lanes, logged: Any, request: pytest.FixtureRequest
) -> None:
    async def handler(conn: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        if conn == 1 and len(up.heads) > 1:
            return False  # the race: the upstream closes the idle connection as our request arrives
        writer.write(OK)
        return True

    made = await make_gateway.scripted(handler)
    gw, up = made.gw, made.upstream
    assert (await ask(gw, req("GET", "/api/a"))).body == b"ok"
    logs = logged()
    answer = await ask(gw, req("GET", "/api/b"))  # express, on the stale socket: retried on a new one
    assert answer.status == 200 and answer.body == b"ok"
    assert_secured(answer)
    assert up.connections == 2 and [h.split(b" ")[1] for _, h in up.heads] == [b"/api/a", b"/api/b", b"/api/b"]
    # The retry carried the same request id: one request, written twice.
    rids = [re.findall(rb"x-request-id: ([^\r]*)", h) for _, h in up.heads[1:]]
    assert rids[0] == rids[1] == answer.header(b"x-request-id")
    assert logs.records == []
    if fast(request):
        assert lanes.taken == [False, True] and lanes.resumed == 1
