"""The proxy's own Python work per request, counted in bytecodes: a measure the shared machine's noise cannot move.

Run from the repository root::

    python tests/bench/proxy_bytecodes.py            # totals for an answered GET and a refused POST
    python tests/bench/proxy_bytecodes.py --by-function
    python tests/bench/proxy_bytecodes.py --gateway [--metrics]     # the whole gateway app, real session engine
    valgrind --tool=cachegrind --cache-sim=no python tests/bench/proxy_bytecodes.py --gateway --loop 2000

``ProxyApp`` is driven directly (no uvicorn in front) against a stand-in upstream connection that answers at
once from memory, placed in the real pool. After a warm-up, one request runs under a tracer that counts every
bytecode executed in Python frames (C code such as httptools or json is not counted: it does not change when
the proxy's Python does). Compare two checkouts by running this in each; ``proxy_bench.py`` measures the
throughput, which on a loaded machine moves by tens of percent from run to run.

``--gateway`` drives the whole app of ``frontdesk serve`` (``create_app``: the edge layers, the real session
engine on SQLite, a logged-in cookie) the same way, for an answered proxied GET; ``--metrics`` turns
``[metrics]`` on (prometheus-client's multiprocess mode, as ``frontdesk serve --workers N``). ``--loop N`` runs N
such requests untraced after the warm-up: run it under valgrind twice with two values of N, and the difference
in instructions divided by the difference in N is the instructions per request, C included.

``--protocol asgi|fast`` drives the same gateway through a real uvicorn protocol instance, the way
``frontdesk serve`` runs it (request bytes in through ``data_received``, response bytes out of a stand-in
transport): ``asgi`` is uvicorn's protocol with the whole ASGI stack (``[server] fast_path = false``), ``fast``
is ``serving.FastHttp``, whose fast path answers the proxied request without it. With ``--loop N`` under valgrind
as above, that is the instructions per proxied request, server included; ``--refresh`` makes each request
carry an expired access token, so every one is a silent refresh (a rotated cookie in the answer)::

    valgrind --tool=cachegrind --cache-sim=no python tests/bench/proxy_bytecodes.py --protocol fast --loop 2000

``--protocol floor`` drives ``bare_forwarder.py`` (``proxy_bench.py --floor``: forwarding and nothing else, in
Python) the same way, with the same request bytes and an upstream answering from memory: the instructions any
Python proxy spends per request, to hold the gateway's against.

The start-up work (imports, the store, the login) moves by up to 15 M instructions from run to run, which a
difference of 500 requests turns into ±30 k per request: run both with ``PYTHONHASHSEED=0``, N = 100 and 2100,
and compare ``cg_diff`` outputs function by function to attribute a change.

This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvloop

from frontdesk.gateway.proxy import ProxyApp, parse_proxy_settings, parse_routes

COOKIE = "__Host-frontdesk"
BODY = b'{"user":"ann"}'


@dataclass(frozen=True, slots=True)
class Grant:
    sid: str = "sid"
    access_token: str = "at.ann.sid"
    set_cookie: str | None = None


class Engine:
    """A session engine that grants at once (the real one's cost is not the proxy's)."""

    cookie_name = COOKIE

    async def grant(self, cookie_header: str | None, *, audience: str | None = None, force_new: bool = False) -> Grant:
        return Grant()

    def remembered(self, cookie_header: str | None, *, audience: str | None = None) -> Grant:
        return Grant()

    async def is_active(self, sid: str) -> bool:
        return True


class NoProxies:
    def is_trusted(self, host: str | None) -> bool:
        return False


class InstantConnection:
    """Just the surface of ``UpstreamConnection`` the proxy uses, answering 200 with a small JSON body."""

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.uses = 0
        self.closed = False
        self.reusable = True
        self.complete = True
        self.status = 200
        self.headers = [(b"content-type", b"application/json"), (b"content-length", b"14"), (b"x-app", b"1")]
        self.got_bytes = True
        self.drained = True
        self.idle_since = time.monotonic()
        self.head_ready = True
        self.failed = False
        self.sent_all = False
        self.listener: Callable[[], None] | None = None  # the express lane's: told as the answer "arrives"

    def begin(self, **_: Any) -> None:
        self.uses += 1
        self.sent_all = False
        self.listener = None

    def write(self, data: bytes) -> None:
        pass

    def end_send(self) -> None:
        self.sent_all = True
        if self.listener is not None:  # the answer arrives on a later turn of the loop, as from a socket
            asyncio.get_running_loop().call_soon(self.listener)

    def take_body(self) -> bytes:
        return BODY

    async def wait_head(self) -> None:
        pass

    async def read_body(self) -> bytes:
        return BODY

    def park(self) -> None:
        self.idle_since = time.monotonic()

    def close(self) -> None:
        raise AssertionError("the stand-in connection is never closed")



async def _measure(one: Callable[[], Awaitable[None]], loop: int, helpers: tuple[str, ...]) -> Counter[str]:
    """Warm the caches, then either run ``one`` ``loop`` times (for valgrind: the counts come from outside) or
    trace one call and return its bytecodes per function, without this file's own stand-ins (``helpers``)."""
    for _ in range(50):  # warm caches (route lookup, the session's cached access token, label children)
        await one()
    if loop:
        for _ in range(loop):
            await one()
        return Counter()
    tracer = Tracer()
    sys.settrace(tracer.start)
    try:
        await one()
    finally:
        sys.settrace(None)
    for helper in helpers:
        tracer.counts.pop(f"{__file__.rsplit('/', 1)[-1]}:{helper}", None)
    return tracer.counts

async def fallback(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("every request here is on a proxied route")


class Tracer:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def start(self, frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return self.step

    def step(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            code = frame.f_code
            self.counts[f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}"] += 1
        return self.step


async def count(answered: bool) -> Counter[str]:
    routes, problems = parse_routes([{"prefix": "/api/", "upstream": "http://127.0.0.1:9"}], default_audience="api")
    settings, more = parse_proxy_settings({})
    assert not problems and not more
    app = ProxyApp(routes, Engine(), settings=settings, trusted=NoProxies(), fallback=fallback)
    app.pool.release(InstantConnection(routes[0].upstream.key))  # type: ignore[arg-type]
    headers = [
        (b"host", b"gw.example"),
        (b"cookie", f"{COOKIE}=abc; theme=dark".encode()),
        (b"accept", b"application/json"),
        (b"user-agent", b"bench"),
    ]
    if answered:
        headers.append((b"x-csrf", b"1"))
    scope = {
        "type": "http",
        "method": "GET" if answered else "POST",  # the POST lacks the CSRF header: refused with 403
        "path": "/api/me",
        "raw_path": b"/api/me",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
        "http_version": "1.1",
    }
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: Any) -> None:
        pass

    for _ in range(20):  # warm caches (route lookup, lazily built objects)
        await app(scope, receive, send)
    tracer = Tracer()
    sys.settrace(tracer.start)
    try:
        await app(scope, receive, send)
    finally:
        sys.settrace(None)
    tracer.counts.pop(f"{__file__.rsplit('/', 1)[-1]}:send", None)
    return tracer.counts


GATEWAY_CONFIG = """\
[tokens]
access_ttl = "15m"
refresh_ttl = "7d"

[store]
url = "sqlite:///{workdir}/frontdesk.db"

[metrics]
address = "{metrics}"

[[routes]]
prefix = "/api/"
upstream = "http://127.0.0.1:9"
"""


async def count_gateway(loop: int) -> Counter[str]:
    """One answered GET on a proxied route through the whole gateway app, traced (or ``loop`` of them, not)."""
    from frontdesk.gateway.app import create_app
    from frontdesk.gateway.config import load_config
    from frontdesk.middleware.sessions import User

    workdir = Path(os.environ["FD_BENCH_WORKDIR"])
    path = workdir / "config.toml"
    metrics = "127.0.0.1:9" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else ""
    path.write_text(GATEWAY_CONFIG.format(workdir=workdir, metrics=metrics))
    env = {"FRONTDESK_ACCESS_SECRET": "a" * 40, "FRONTDESK_REFRESH_SECRET": "r" * 40}

    async def authenticate(username: str, password: str) -> User | None:
        return User(id="u-ann", username=username)

    gateway = create_app(load_config(path, env=env), authenticator=authenticate)
    # The store only, not the whole lifespan: the background tasks (purger, audit writer, metrics sampler) are
    # not per-request work, and their thread hops can stall a run under valgrind.
    await gateway.engine.store.open()
    try:
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        def scope(method: str, target: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
            return {
                "type": "http",
                "method": method,
                "path": target,
                "raw_path": target.encode(),
                "query_string": b"",
                "headers": [(b"host", b"gw.example"), *headers],
                "client": ("127.0.0.1", 5000),
                "server": ("127.0.0.1", 8000),
                "scheme": "http",
                "http_version": "1.1",
                "root_path": "",
                "asgi": {"version": "3.0", "spec_version": "2.3"},
                "state": {},
            }

        login_body = {"type": "http.request", "body": b'{"username":"ann","password":"pw"}', "more_body": False}

        async def receive_login() -> dict[str, Any]:
            return login_body

        login = scope("POST", "/auth/login", [(b"content-type", b"application/json"), (b"x-csrf", b"1")])
        await gateway(login, receive_login, send)
        cookie = next(v for n, v in sent[0]["headers"] if n == b"set-cookie").split(b";", 1)[0]
        # The stand-in upstream connection, taken and given back by every request.
        gateway.app.pool.release(InstantConnection(gateway.config.routes[0].upstream.key))  # type: ignore[attr-defined]
        request = {"type": "http.request", "body": b"", "more_body": False}

        async def receive() -> dict[str, Any]:
            return request

        get = [
            (b"cookie", b"theme=dark; " + cookie),
            (b"accept", b"application/json"),
            (b"user-agent", b"bench"),
            (b"x-csrf", b"1"),
        ]

        async def one() -> None:
            sent.clear()
            await gateway(scope("GET", "/api/me", get), receive, send)
            assert sent[0]["status"] == 200, sent

        return await _measure(one, loop, ("send", "one", "scope", "receive", "__init__"))
    finally:
        gateway.app.pool.take_idle(gateway.config.routes[0].upstream)  # type: ignore[attr-defined]
        await gateway.app.aclose()  # type: ignore[attr-defined]
        await gateway.engine.store.close()


class BenchTransport:
    """Just enough of an asyncio transport for uvicorn's HTTP protocol: what it writes is kept, never sent."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        raise AssertionError("no upgrades here")


async def count_protocol(fast: bool, loop: int, refresh: bool) -> Counter[str]:
    """One answered GET on a proxied route, from request bytes to response bytes through uvicorn's protocol."""
    import uvicorn
    from uvicorn.server import ServerState

    from frontdesk.gateway.app import create_app
    from frontdesk.gateway.config import load_config
    from frontdesk.gateway.serving import DrainingHttp, FastHttp
    from frontdesk.middleware.sessions import User

    workdir = Path(os.environ["FD_BENCH_WORKDIR"])
    path = workdir / "config.toml"
    metrics = "127.0.0.1:9" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else ""
    text = GATEWAY_CONFIG.format(workdir=workdir, metrics=metrics)
    if refresh:  # every request's access token has expired: each one is a silent refresh with rotation
        text = text.replace('access_ttl = "15m"', 'access_ttl = "1s"')
    path.write_text(text)
    env = {"FRONTDESK_ACCESS_SECRET": "a" * 40, "FRONTDESK_REFRESH_SECRET": "r" * 40}

    async def authenticate(username: str, password: str) -> User | None:
        return User(id="u-ann", username=username)

    now = [time.time()]
    gateway = create_app(load_config(path, env=env), authenticator=authenticate, clock=lambda: now[0])
    await gateway.engine.store.open()
    config = uvicorn.Config(
        gateway,
        http=FastHttp if fast else DrainingHttp,
        lifespan="off",
        proxy_headers=False,
        log_level="warning",
        access_log=False,  # as `frontdesk serve` runs by default ([log] access_log = false)
    )
    config.load()
    protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})  # type: ignore[call-arg]
    transport = BenchTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    try:
        login_body = b'{"username":"ann","password":"pw"}'
        protocol.data_received(
            b"POST /auth/login HTTP/1.1\r\nhost: gw.example\r\ncontent-type: application/json\r\nx-csrf: 1\r\n"
            b"content-length: %d\r\n\r\n%b" % (len(login_body), login_body)
        )
        while not (protocol.cycle and protocol.cycle.response_complete):
            await asyncio.sleep(0)
        answer = b"".join(transport.out)
        cookie = answer.split(b"set-cookie: ", 1)[1].split(b";", 1)[0]
        gateway.app.pool.release(InstantConnection(gateway.config.routes[0].upstream.key))  # type: ignore[attr-defined]

        def request() -> bytes:
            return (
                b"GET /api/me HTTP/1.1\r\nhost: gw.example\r\ncookie: theme=dark; %b\r\n"
                b"accept: application/json\r\nuser-agent: bench\r\nx-csrf: 1\r\n\r\n" % cookie
            )

        async def one() -> None:
            nonlocal cookie
            transport.out.clear()
            if refresh:
                now[0] += 2  # past the access token's life: this request refreshes it
            protocol.data_received(request())
            cycle = protocol.cycle
            while not cycle.response_complete:  # woken when the answer completes (no spinning: a refresh
                cycle.message_event.clear()  # waits on SQLite's thread, and a spin would count its wait)
                await cycle.message_event.wait()
            answer = b"".join(transport.out)
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            if refresh:
                cookie = answer.split(b"set-cookie: ", 1)[1].split(b";", 1)[0]

        return await _measure(
            one, loop, ("one", "request", "write", "is_closing", "get_extra_info", "pause_reading", "resume_reading")
        )
    finally:
        gateway.app.pool.take_idle(gateway.config.routes[0].upstream)  # type: ignore[attr-defined]
        await gateway.app.aclose()  # type: ignore[attr-defined]
        await gateway.engine.store.close()


async def count_floor(loop: int) -> Counter[str]:
    """The same GET through ``bare_forwarder.py`` (``proxy_bench.py --floor``): what forwarding alone costs in
    Python, with the same stand-in upstream (answered from memory, not parsed) and the same request bytes."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bare_forwarder

    forwarder = bare_forwarder.Forwarder(9, b"at.ann.sid")
    headers = [(b"content-type", b"application/json"), (b"content-length", b"14"), (b"x-app", b"1")]

    class Answering:
        """The upstream's transport: the answer arrives on a later turn of the loop, as from a socket."""

        def write(self, data: bytes) -> None:
            asyncio.get_running_loop().call_soon(answer)

    upstream = bare_forwarder.Upstream(forwarder.pool)
    upstream.connection_made(Answering())  # type: ignore[arg-type]
    forwarder.pool.append(upstream)

    def answer() -> None:
        client_, upstream.client = upstream.client, None
        forwarder.pool.append(upstream)
        assert client_ is not None
        client_.answer(200, headers, BODY)

    transport = BenchTransport()
    client = bare_forwarder.Client(forwarder)
    client.connection_made(transport)  # type: ignore[arg-type]
    request = (
        b"GET /api/me HTTP/1.1\r\nhost: gw.example\r\ncookie: theme=dark; __Host-frontdesk=%b\r\n"
        b"accept: application/json\r\nuser-agent: bench\r\nx-csrf: 1\r\n\r\n" % (b"x" * 300)
    )
    done = asyncio.Event()
    transport.write = lambda data: (transport.out.append(data), done.set())  # type: ignore[method-assign]

    async def one() -> None:
        transport.out.clear()
        done.clear()
        client.data_received(request)
        await done.wait()
        assert transport.out[0].startswith(b"HTTP/1.1 200 ")

    return await _measure(one, loop, ("one", "write", "answer", "<lambda>"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--by-function", action="store_true", help="list the bytecodes of each function")
    parser.add_argument("--gateway", action="store_true", help="the whole gateway app instead of ProxyApp alone")
    parser.add_argument("--metrics", action="store_true", help="--gateway with [metrics] on (multiprocess mode)")
    parser.add_argument("--loop", type=int, default=0, help="--gateway: run N requests untraced (for valgrind)")
    parser.add_argument(
        "--protocol",
        choices=("asgi", "fast", "floor"),
        help="the gateway through uvicorn's protocol; floor: bare_forwarder.py (no gateway) the same way",
    )
    parser.add_argument("--refresh", action="store_true", help="--protocol: every request a silent refresh")
    args = parser.parse_args()
    if args.protocol:
        with tempfile.TemporaryDirectory(prefix="fd-bytecodes-") as workdir:
            os.environ["FD_BENCH_WORKDIR"] = workdir
            if args.metrics:
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = workdir
            # uvloop, as `frontdesk serve` runs: its loop and transports are C, not counted here
            if args.protocol == "floor":
                counts = uvloop.run(count_floor(args.loop))
            else:
                counts = uvloop.run(count_protocol(args.protocol == "fast", args.loop, args.refresh))
        if not args.loop:
            kind = "refreshed" if args.refresh else "answered"
            print(f"protocol {args.protocol}, {kind} GET, metrics {'on' if args.metrics else 'off'}: "
                  f"{sum(counts.values())} bytecodes")
            if args.by_function:
                for function, n in counts.most_common():
                    print(f"  {n:6d}  {function}")
        return
    if args.gateway:
        with tempfile.TemporaryDirectory(prefix="fd-bytecodes-") as workdir:
            os.environ["FD_BENCH_WORKDIR"] = workdir
            if args.metrics:  # read by prometheus-client when first imported, which create_app does
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = workdir
            counts = asyncio.run(count_gateway(args.loop))
        if not args.loop:
            print(f"gateway, answered GET, metrics {'on' if args.metrics else 'off'}: {sum(counts.values())} bytecodes")
            if args.by_function:
                for function, n in counts.most_common():
                    print(f"  {n:6d}  {function}")
        return
    for name, answered in (("answered GET", True), ("refused POST", False)):
        counts = asyncio.run(count(answered))
        print(f"{name}: {sum(counts.values())} bytecodes")
        if args.by_function:
            for function, n in counts.most_common():
                print(f"  {n:6d}  {function}")


if __name__ == "__main__":
    main()
