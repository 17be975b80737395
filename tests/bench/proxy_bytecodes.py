"""The proxy's own Python work per request, counted in bytecodes: a measure the shared machine's noise cannot move.

Run from the repository root::

    python tests/bench/proxy_bytecodes.py            # totals for an answered GET and a refused POST
    python tests/bench/proxy_bytecodes.py --by-function

``ProxyApp`` is driven directly (no uvicorn in front) against a stand-in upstream connection that answers at
once from memory, placed in the real pool. After a warm-up, one request runs under a tracer that counts every
bytecode executed in Python frames (C code such as httptools or json is not counted: it does not change when
the proxy's Python does). Compare two checkouts by running this in each; ``proxy_bench.py`` measures the
throughput, which on a loaded machine moves by tens of percent from run to run.

This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass
from types import FrameType
from typing import Any

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

    def begin(self, **_: Any) -> None:
        self.uses += 1

    def write(self, data: bytes) -> None:
        pass

    def end_send(self) -> None:
        pass

    async def wait_head(self) -> None:
        pass

    async def read_body(self) -> bytes:
        return BODY

    def park(self) -> None:
        self.idle_since = time.monotonic()

    def close(self) -> None:
        raise AssertionError("the stand-in connection is never closed")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--by-function", action="store_true", help="list the bytecodes of each function")
    args = parser.parse_args()
    for name, answered in (("answered GET", True), ("refused POST", False)):
        counts = asyncio.run(count(answered))
        print(f"{name}: {sum(counts.values())} bytecodes")
        if args.by_function:
            for function, n in counts.most_common():
                print(f"  {n:6d}  {function}")


if __name__ == "__main__":
    main()
