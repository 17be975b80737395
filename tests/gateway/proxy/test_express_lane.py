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
import os
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from proxy_support import FakeEngine, Gateway, Servers, Trust, Upstream, refresh_cookie, route_config, spa

from frontdesk.gateway.edge import GatewayEdge
from frontdesk.gateway.proxy import ProxyApp, parse_proxy_settings, parse_routes
from frontdesk.gateway.proxy.cycle import HttpCycle
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
        self.handling: set[asyncio.Task[Any]] = set()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handling.add(task)
        task.add_done_callback(self.handling.discard)
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
    raw: list[tuple[asyncio.Server, ScriptedUpstream]] = []

    async def make(upstream_port: int | None = None) -> Gateway:
        upstream = Upstream()
        up_port = upstream_port or await servers.start(upstream)
        routes, problems = parse_routes(route_config(up_port), default_audience="frontdesk-api")
        assert problems == []
        settings, problems = parse_proxy_settings({"max_body_size": "1MB"})
        assert problems == []
        engine = FakeEngine()
        proxy = ProxyApp(
            routes, engine, settings=settings, trusted=Trust(), fallback=spa, request_id=current_request_id
        )
        proxies.append(proxy)
        port = await servers.start(EdgeApp(proxy), http=server_protocol)
        return Gateway(port, proxy, engine, upstream, up_port)

    async def scripted(handler: Handler) -> Scripted:
        upstream = ScriptedUpstream(handler)
        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        raw.append((server, upstream))
        return Scripted(await make(server.sockets[0].getsockname()[1]), upstream)

    make.scripted = scripted  # type: ignore[attr-defined]
    make.servers = servers  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        await servers.stop()
        for proxy in proxies:
            await proxy.aclose()
        for server, upstream in raw:
            server.close()
            # Its handlers end on the EOF of the gateway's connections (closed above), before the loop does.
            if upstream.handling:
                await asyncio.wait(upstream.handling, timeout=5)


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


def fin(writer: asyncio.StreamWriter) -> None:
    """Send a FIN on ``writer``'s socket right now (``write_eof`` may wait for the loop, on uvloop)."""
    fd = writer.transport.get_extra_info("socket").fileno()
    with socket.socket(fileno=os.dup(fd)) as same:
        same.shutdown(socket.SHUT_WR)


def seen(upstream: ScriptedUpstream, count: int) -> Callable[[], bool]:
    """Whether ``upstream`` has seen ``count`` requests."""
    return lambda: len(upstream.heads) == count


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


async def test_an_invalid_token_401_on_an_express_request_is_reminted_and_retried(
    make_gateway: Any, lanes: Lanes, request: pytest.FixtureRequest
) -> None:
    gw = await make_gateway()
    asked = count_grants(gw.engine)
    assert (await ask(gw, req("GET", "/api/echo"))).status == 200  # remembers the grant, pools the connection
    # /api/strict-once rejects the first token it sees (as after a key rotation): this express request's
    answer = await ask(gw, req("GET", "/api/strict-once"))
    assert answer.status == 200, answer.raw  # the browser gets the retried answer, never the 401
    assert_secured(answer)
    first, retried = [seen.header("authorization") for seen in gw.upstream.seen[1:]]
    assert first == [gw.upstream.rejected] and retried == answer.json()["authorization"] != first
    express = fast(request)
    assert asked == [False, True] if express else [False, False, True]  # and one forced re-mint
    assert gw.engine.minted == 2
    rid = answer.header(b"x-request-id")[0].decode()
    assert [seen.header("x-request-id") for seen in gw.upstream.seen[1:]] == [[rid], [rid]]  # one request
    # The memo forgets the rejected token: the next request asks grant() and goes out with the new one.
    again = await ask(gw, req("GET", "/api/strict-once"))
    assert again.status == 200 and again.json()["authorization"] == retried
    if express:
        assert lanes.taken == [False, True, False] and lanes.resumed == 1


def _chunked(body: bytes, size: int) -> bytes:
    out = b"".join(b"%x\r\n%b\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


BIG = bytes(range(256)) * 400  # 100 KiB: more than the 64 KiB held back to go out with its head


async def _streaming(conn: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
    """Answers by path: /warm, /chunked-small, /chunked-big, /length-big, /length-hold (64 KiB, held whole), /early,
    /trickle (a small body written in pieces), /until-close (no length: ends with the connection); the query
    is ignored."""
    path = head.split(b" ")[1].partition(b"?")[0]
    plain = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
    if path == b"/api/chunked-small":
        writer.write(plain + b"transfer-encoding: chunked\r\n\r\n" + _chunked(b"abcde", 3))
    elif path == b"/api/chunked-big":
        writer.write(plain + b"transfer-encoding: chunked\r\n\r\n" + _chunked(BIG, 10_000))
    elif path == b"/api/length-big":
        writer.write(plain + b"content-length: %d\r\n\r\n" % len(BIG) + BIG)
    elif path == b"/api/length-hold":
        writer.write(plain + b"content-length: %d\r\n\r\n" % 65536 + BIG[:65536])
    elif path == b"/api/trickle":
        writer.write(plain + b"content-length: 9\r\n\r\nabc")
        for piece in (b"def", b"ghi"):
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(piece)
    elif path == b"/api/early":
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n" + OK)
    elif path == b"/api/until-close":
        writer.write(plain + b"\r\n" + BIG)
        await writer.drain()
        return False
    else:
        writer.write(OK)
    return True


STREAMED = {
    "chunked-small": (b"abcde", True),  # (the body, whether the answer streams: handed on to a task)
    "chunked-big": (BIG, True),
    "length-big": (BIG, True),
    "length-hold": (BIG[:65536], False),
    "trickle": (b"abcdefghi", False),
    "until-close": (BIG, True),
    "early": (b"ok", False),  # a 103 first: nothing for the browser, the 200 after it answered whole
}


@BOTH_LOOPS
@pytest.mark.parametrize("path", list(STREAMED))
async def test_a_streamed_chunked_or_large_answer_to_an_express_request_arrives_whole(
    make_gateway: Any, lanes: Lanes, logged: Any, request: pytest.FixtureRequest, path: str
) -> None:
    made = await make_gateway.scripted(_streaming)
    gw = made.gw
    assert (await ask(gw, req("GET", "/api/warm"))).body == b"ok"
    logs = logged()
    browser = await Browser.open(gw)
    answer = await browser.ask(req("GET", f"/api/{path}"))
    body, streams = STREAMED[path]
    assert answer.status == 200 and len(answer.body) == len(body)
    assert hashlib.sha256(answer.body).digest() == hashlib.sha256(body).digest()
    assert_secured(answer)
    # The browser connection is still good for the next request (the framing ended where it should).
    after = await browser.ask(req("GET", "/api/warm"))
    assert after.status == 200 and after.body == b"ok"
    browser.close()
    assert logs.records == []
    if fast(request):
        assert lanes.taken[:2] == [False, True] and lanes.resumed == int(streams)


async def test_an_upstream_timeout_on_an_express_request_is_a_504_with_security_headers(
    make_gateway: Any, lanes: Lanes, request: pytest.FixtureRequest
) -> None:
    gw = await make_gateway()
    assert (await ask(gw, req("GET", "/slowapi/echo"))).status == 200  # the route's timeout: 300 ms
    browser = await Browser.open(gw)
    answer = await browser.ask(req("GET", "/slowapi/slow?s=2"))
    assert answer.status == 504 and answer.json()["error"] == "upstream_timeout"
    assert answer.header(b"content-type") == [b"application/json"]
    assert_secured(answer)
    assert answer.header(b"x-request-id") == [gw.upstream.seen[-1].header("x-request-id")[0].encode()]
    # The connection that timed out was dropped, not pooled; the browser's connection goes on.
    after = await browser.ask(req("GET", "/slowapi/echo"))
    browser.close()
    assert after.status == 200
    assert gw.upstream.seen[-1].client_port != gw.upstream.seen[1].client_port
    if fast(request):
        assert lanes.taken == [False, True, False] and lanes.resumed == 1


@BOTH_LOOPS
async def test_a_browser_leaving_while_its_express_request_waits_upstream_logs_nothing(
    make_gateway: Any, lanes: Lanes, logged: Any, request: pytest.FixtureRequest
) -> None:
    gw = await make_gateway()
    assert (await ask(gw, req("GET", "/api/echo"))).status == 200
    logs = logged()
    leaving = await Browser.open(gw)
    leaving.send(req("GET", "/api/slow?s=0.3"))
    await wait_until_async(lambda: len(gw.upstream.seen) == 2, what="the slow request upstream")
    leaving.close()
    # The upstream's answer still arrives, for nobody: the connection goes back to the pool...
    await wait_until_async(lambda: idle(gw) == 1, what="the connection back in the pool")
    answer = await ask(gw, req("GET", "/api/echo?n=3"))
    assert answer.status == 200 and answer.json()["target"] == "/api/echo?n=3"
    # ... and serves the next request: one upstream connection throughout.
    assert len({seen.client_port for seen in gw.upstream.seen}) == 1
    assert logs.records == [], [r.getMessage() for r in logs.records]
    if fast(request):
        assert lanes.taken == [False, True, True] and lanes.resumed == 0


def _bodiless(conn: int, head: bytes) -> bytes:
    path = head.split(b" ")[1]
    if path == b"/api/empty":
        return b"HTTP/1.1 204 No Content\r\nx-up: 1\r\n\r\n"
    if path == b"/api/same":
        return b'HTTP/1.1 304 Not Modified\r\netag: "v1"\r\ncache-control: max-age=60\r\n\r\n'
    if path == b"/api/same-sized":  # a 304 may announce the length the 200 would have had (RFC 9110 8.6)
        return b'HTTP/1.1 304 Not Modified\r\netag: "v1"\r\ncontent-length: 123\r\n\r\n'
    if head.startswith(b"HEAD "):
        return b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n"
    return OK


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("HEAD", "/api/x", 200), ("GET", "/api/empty", 204), ("GET", "/api/same", 304), ("GET", "/api/same-sized", 304)],
)
async def test_head_204_and_304_on_the_express_lane(
    make_gateway: Any, lanes: Lanes, logged: Any, request: pytest.FixtureRequest, method: str, path: str, status: int
) -> None:
    async def handler(conn: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(_bodiless(conn, head))
        return True

    made = await make_gateway.scripted(handler)
    gw = made.gw
    logs = logged()
    browser = await Browser.open(gw)
    # The first of each: a task (nothing remembered yet); the second: express (remembered, a pooled connection).
    first = await browser.ask(req(method, path, user="bob"), head_only=method == "HEAD")
    assert (await browser.ask(req("GET", "/api/warm", user="bob"))).body == b"ok"  # pools a connection again
    second = await browser.ask(req(method, path, user="bob"), head_only=method == "HEAD")
    # The browser connection still frames the next answer right: nothing of a body was written after the head.
    after = await browser.ask(req("GET", "/api/warm", user="bob"))
    browser.close()
    assert first.status == second.status == status and first.body == second.body == b""
    assert shape(second) == shape(first)
    assert_secured(second)
    assert b"transfer-encoding" not in second.head
    assert after.status == 200 and after.body == b"ok"
    assert logs.records == [], [r.getMessage() for r in logs.records]
    if fast(request):
        # After a HEAD the upstream connection is never reused (its parser would expect the announced body).
        expected = [False, False, True, False] if method == "HEAD" else [False, True, True, True]
        assert lanes.taken == expected and lanes.resumed == 0


@BOTH_LOOPS
async def test_pipelined_gets_on_one_connection_are_answered_in_order(
    make_gateway: Any, lanes: Lanes, request: pytest.FixtureRequest
) -> None:
    gw = await make_gateway()
    assert (await ask(gw, req("GET", "/api/echo"))).status == 200
    browser = await Browser.open(gw)
    # One write: a slow one first (express), then two quick ones queued behind it; then two quick ones.
    browser.send(req("GET", "/api/slow?s=0.2") + req("GET", "/api/echo?n=2") + req("GET", "/api/echo?n=3"))
    answers = [await browser.answer() for _ in range(3)]
    browser.send(req("GET", "/api/echo?n=4") + req("GET", "/api/echo?n=5", extra="connection: close\r\n"))
    answers += [await browser.answer() for _ in range(2)]
    assert await browser.closed()
    browser.close()
    assert [a.status for a in answers] == [200] * 5
    assert answers[0].json() == {"slept": True}
    assert [a.json()["target"] for a in answers[1:]] == [f"/api/echo?n={n}" for n in range(2, 6)]
    assert answers[4].header(b"connection") == [b"close"]
    ids = [a.header(b"x-request-id")[0].decode() for a in answers]
    assert [seen.header("x-request-id") for seen in gw.upstream.seen[1:]] == [[rid] for rid in ids]
    assert len(set(ids)) == 5
    if fast(request):
        # The first of each write went on the express lane; those queued behind it, in tasks.
        assert lanes.taken == [False, True, True] and lanes.resumed == 0


async def test_a_revoked_session_is_refused_though_its_grant_was_remembered(
    make_gateway: Any, lanes: Lanes, request: pytest.FixtureRequest
) -> None:
    gw = await make_gateway()
    assert (await ask(gw, req("GET", "/api/echo"))).status == 200
    assert (await ask(gw, req("GET", "/api/echo"))).status == 200  # remembered: express on [fast]
    gw.engine.revoked.add("sid-alice")
    answer = await ask(gw, req("GET", "/api/echo"))
    assert answer.status == 401 and answer.json()["error"] == "session_revoked", answer.raw
    assert_secured(answer)
    assert len(gw.upstream.seen) == 2  # never forwarded
    other = await ask(gw, req("GET", "/api/echo", user="bob"))  # another session is not affected
    assert other.status == 200
    if fast(request):
        assert lanes.taken == [False, True, False, False] and lanes.resumed == 0


async def test_the_request_id_upstream_is_the_one_returned_and_new_for_every_request(
    make_gateway: Any, lanes: Lanes, request: pytest.FixtureRequest
) -> None:
    gw = await make_gateway()
    forged = "x-request-id: forged-by-the-browser\r\n"  # an untrusted peer's id is never believed
    answers = [await ask(gw, req("GET", "/api/echo?n=1", extra=forged))]
    browser = await Browser.open(gw)
    for n in range(2, 5):  # express, one after the other on one browser connection and one upstream connection
        answers.append(await browser.ask(req("GET", f"/api/echo?n={n}", extra=forged)))
    answers.append(await browser.ask(req("GET", "/api/echo?n=5", user="bob")))  # a task again (bob's first)
    answers.append(await browser.ask(req("GET", "/api/echo?n=6")))  # express right after a task
    refused = await browser.ask(req("GET", "/api/echo?n=7", user=None))  # refused: never upstream, an id all the same
    browser.close()
    assert [a.status for a in answers] == [200] * 6 and refused.status == 401
    ids = [a.header(b"x-request-id")[0].decode() for a in [*answers, refused]]
    assert [seen.header("x-request-id") for seen in gw.upstream.seen] == [[rid] for rid in ids[:6]]
    assert len(set(ids)) == 7 and "forged-by-the-browser" not in ids
    assert [a.json()["target"] for a in answers] == [f"/api/echo?n={n}" for n in range(1, 7)]
    if fast(request):
        assert lanes.taken == [False, True, True, True, False, True, False]


JUNK = {
    "a-response": b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged",  # a second response nobody asked for
    "garbage": b"garbage\r\n\r\n",  # not HTTP at all: the parser fails (not one of our callbacks)
    "a-status-line": b"HTTP/1.1 200 OK\r\n",  # the start of a response, and no more: no header callback comes
}


@BOTH_LOOPS
@pytest.mark.parametrize("junk", list(JUNK))
async def test_junk_after_an_express_answer_never_reaches_the_next_request(
    make_gateway: Any, lanes: Lanes, logged: Any, request: pytest.FixtureRequest, junk: str
) -> None:
    """The express lane answers from inside the parser's callback for the end of the response: bytes after it
    in the same read must still condemn the connection (and its parser, stopped in error). Garbage that is no
    HTTP at all, or a bare status line, used to be missed on both protocols: the next request, on that connection,
    got a 502."""

    async def handler(conn: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"/api/junk" in head:
            writer.write(OK + JUNK[junk])
        else:
            writer.write(OK)
        return True

    made = await make_gateway.scripted(handler)
    gw, up = made.gw, made.upstream
    assert (await ask(gw, req("GET", "/api/a"))).body == b"ok"
    logs = logged()
    assert (await ask(gw, req("GET", "/api/junk"))).body == b"ok"
    answer = await ask(gw, req("GET", "/api/b"))
    assert answer.status == 200 and answer.body == b"ok", answer.raw
    assert up.connections == 2 and [n for n, _ in up.heads] == [1, 1, 2]  # the junk's connection was dropped
    assert logs.records == [], [r.getMessage() for r in logs.records]
    if fast(request):
        assert lanes.taken == [False, True, False]


@FAST_ONLY
async def test_an_express_answer_to_a_browser_that_is_not_reading_is_written_when_it_reads(
    make_gateway: Any, lanes: Lanes, logged: Any
) -> None:
    """Whole 64 KiB answers, one request at a time, to a browser that reads nothing: once the gateway's buffer for
    it is past its high-water mark (flow control paused), the next express answer waits in a task for the browser
    to read (``start``'s drain) instead of piling onto the buffer; every answer arrives whole, in order. (On
    uvicorn's own protocol the next request would wait behind the unwritten answer: nothing to show there.)"""
    made = await make_gateway.scripted(_streaming)
    gw, up = made.gw, made.upstream
    assert (await ask(gw, req("GET", "/api/warm"))).body == b"ok"
    logs = logged()
    browser = await Browser.open(gw)
    sent = 0
    try:
        for _ in range(400):  # bounded: the kernel's buffers on loopback hold a few MB at most
            browser.send(req("GET", f"/api/length-hold?n={sent}"))
            sent += 1
            await wait_until_async(seen(up, sent + 1), interval=0.001, what="the request upstream")  # and the warm-up
            # The answer is back from the upstream: written by the express lane as it put the connection back in
            # the pool, or (flow control paused) handed on to a task that waits for the browser to read.
            await wait_until_async(lambda: idle(gw) == 1, interval=0.001, what="the answer back")
            if lanes.resumed:
                break
        answers = [await browser.answer() for _ in range(sent)]
    finally:
        browser.close()
    assert [(a.status, len(a.body)) for a in answers] == [(200, 65536)] * sent
    assert all(a.body == BIG[:65536] for a in answers)
    assert logs.records == [], [r.getMessage() for r in logs.records]
    assert lanes.resumed == 1 and lanes.taken == [False] + [True] * sent
    assert 2 < sent < 400, sent


async def test_a_failure_while_the_express_lane_writes_the_request_is_one_500_and_one_error_logged(
    make_gateway: Any, lanes: Lanes, logged: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything raised while the request is written upstream is the task's to log and answer (500), once, as for
    any request; the connection it was being written on is dropped without a word more from the express lane."""
    gw = await make_gateway()
    assert (await ask(gw, req("GET", "/api/echo"))).status == 200
    head = HttpCycle._head
    failures = [RuntimeError("the head could not be rendered (expected in this test)")]

    def failing(self: HttpCycle) -> bytes:
        if failures:
            raise failures.pop()
        return head(self)

    monkeypatch.setattr(HttpCycle, "_head", failing)
    logs = logged()
    browser = await Browser.open(gw)
    answer = await browser.ask(req("GET", "/api/echo?n=2"))
    assert answer.status == 500
    browser.close()
    await asyncio.sleep(0.1)  # the dropped upstream connection's loss is heard of: it must not resume the request
    after = await ask(gw, req("GET", "/api/echo?n=3"))
    assert after.status == 200 and after.json()["target"] == "/api/echo?n=3"
    messages = [r.getMessage() for r in logs.records]
    assert messages == ["Exception in ASGI application\n"], messages
    assert [seen.target for seen in gw.upstream.seen] == ["/api/echo", "/api/echo?n=3"]
    if fast(request):
        assert lanes.taken == [False, True, False] and lanes.resumed == 1


@BOTH_LOOPS
async def test_an_upstream_closing_its_idle_connection_just_before_an_express_request(
    make_gateway: Any, lanes: Lanes, logged: Any, request: pytest.FixtureRequest
) -> None:
    """The other side of the stale-connection race: the upstream's FIN arrives just before the browser's request,
    in the same read of the gateway's loop, so the pooled connection is closing but not yet closed when the
    express lane looks for an idle one. The request goes out on a fresh connection and succeeds."""
    writers: dict[int, asyncio.StreamWriter] = {}
    closing: set[int] = set()

    async def handler(conn: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        writers[conn] = writer
        if conn in closing:
            return False
        writer.write(OK)
        return True

    made = await make_gateway.scripted(handler)
    gw, up = made.gw, made.upstream
    assert (await ask(gw, req("GET", "/api/a"))).body == b"ok"
    logs = logged()
    browser = await Browser.open(gw)
    try:
        await asyncio.sleep(0.05)  # the gateway has accepted the browser's connection
        closing.add(1)
        fin(writers[1])  # the upstream's FIN, now...
        browser.send(req("GET", "/api/b"))  # ... and the request right behind it
        answer = await browser.answer()
    finally:
        browser.close()
    assert answer.status == 200 and answer.body == b"ok", answer.raw
    assert up.heads[-1][0] == 2  # answered on a connection of its own
    assert logs.records == [], [r.getMessage() for r in logs.records]
    if fast(request):
        # Both arrived before the loop looked: the FIN read first, the connection closing but still pooled, the
        # express lane wrote on it, heard of its loss and went on in a task, which retried.
        assert lanes.taken == [False, True] and lanes.resumed == 1


async def test_a_graceful_stop_lets_an_express_request_in_flight_finish(
    make_gateway: Any, lanes: Lanes, logged: Any, request: pytest.FixtureRequest
) -> None:
    """An express request has no task for the server to wait for: the stop waits for its connection instead,
    which the answer closes (the server asked for ``connection: close``)."""
    gw = await make_gateway()
    live = make_gateway.servers._running[-1]  # the gateway's uvicorn, started last
    server = live.server
    assert (await ask(gw, req("GET", "/api/echo"))).status == 200
    logs = logged()
    browser = await Browser.open(gw)
    try:
        browser.send(req("GET", "/api/slow?s=0.3"))
        await wait_until_async(lambda: len(gw.upstream.seen) == 2, what="the slow request upstream")
        server.should_exit = True  # SIGTERM's way: graceful
        answer = await browser.answer()
        assert await browser.closed()
    finally:
        browser.close()
    assert answer.status == 200 and answer.json() == {"slept": True}
    assert answer.header(b"connection") == [b"close"]
    await wait_until_async(lambda: live._task.done(), what="the server stopped")
    assert logs.records == [], [r.getMessage() for r in logs.records]
    if fast(request):
        assert lanes.taken == [False, True] and lanes.resumed == 0


async def test_an_http_1_0_request_on_the_express_lane_is_answered_and_closed(
    make_gateway: Any, lanes: Lanes, request: pytest.FixtureRequest
) -> None:
    gw = await make_gateway()
    assert (await ask(gw, req("GET", "/api/echo"))).status == 200
    browser = await Browser.open(gw)
    try:
        answer = await browser.ask(req("GET", "/api/echo?n=2").replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        assert await browser.closed()
    finally:
        browser.close()
    assert answer.head.startswith(b"HTTP/1.1 200 ") and answer.json()["target"] == "/api/echo?n=2"
    assert answer.header(b"connection") == [b"close"]
    assert_secured(answer)
    if fast(request):
        assert lanes.taken == [False, True] and lanes.resumed == 0
