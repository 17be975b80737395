"""What the metrics add to one proxied request, measured alone: the hooks' own CPU time, without the network.

Run from the repository root::

    python tests/bench/metrics_bench.py            # prometheus-client's multiprocess mode (frontdesk serve --workers N)
    python tests/bench/metrics_bench.py --single   # one process, in-memory values (frontdesk serve, one worker)

A stand-in ASGI app answers like a proxied route (a response start and one body); it runs inside the gateway's
edge layer (``gateway/edge.py``) without metrics, then with them (the edge's request meter on, and the proxy's
upstream hook called as the proxy calls it), alternating rounds so the shared machine's noise falls on both.
The difference is the metrics' cost per proxied request. ``proxy_bench.py --metrics`` measures the same thing
end to end (noisier: it is a few microseconds in a few hundred).

This is a benchmark, not a test: nothing here asserts; read the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--single", action="store_true", help="in-process values instead of multiprocess files")
    parser.add_argument("--requests", type=int, default=20000, help="requests per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each (default 7; the median is shown)")
    args = parser.parse_args()
    if not args.single:  # prometheus-client reads it at import: set before anything imports it
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="fd-metrics-bench-")

    from frontdesk.gateway.edge import GatewayEdge
    from frontdesk.gateway.metrics.instrumentation import Instrumentation
    from frontdesk.gateway.proxy.routes import parse_routes
    from frontdesk.gateway.request_ids import RequestIds
    from frontdesk.gateway.security_headers import SecurityHeaders
    from frontdesk.middleware.forwarded import TrustedProxies

    routes, problems = parse_routes(
        [{"prefix": "/api/", "upstream": "http://127.0.0.1:9"}, {"prefix": "/blob/", "upstream": "http://127.0.0.1:9"}],
        default_audience="frontdesk-api",
    )
    assert not problems, problems
    route = routes[0]
    metering = Instrumentation(routes)
    meter = metering.proxy
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    body = {"type": "http.response.body", "body": b'{"ok":true}'}
    scope = {"type": "http", "method": "GET", "path": "/api/ping", "headers": []}

    async def proxied(scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        meter.answered(route, started)  # as ProxyApp does once the upstream's head arrived
        await send(start)
        await send(body)

    async def bare_app(scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()  # the proxy reads the clock whether or not metrics are on
        del started
        await send(start)
        await send(body)

    ids, security = RequestIds(trusted=TrustedProxies()), SecurityHeaders()
    meter_requests = metering.requests(is_auth=lambda path: path.startswith("/auth/"), internal=("/healthz",))
    bare = GatewayEdge(bare_app, ids=ids, security=security)
    metered = GatewayEdge(proxied, ids=ids, security=security, meter=meter_requests)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    async def run(app: Any, n: int) -> float:
        began = time.process_time()
        for _ in range(n):
            await app(scope, receive, send)
        return (time.process_time() - began) / n * 1e6

    async def rounds() -> tuple[list[float], list[float]]:
        await run(metered, 1000)  # warm up: label children created, caches filled
        off: list[float] = []
        on: list[float] = []
        for _ in range(args.rounds):
            off.append(await run(bare, args.requests))
            on.append(await run(metered, args.requests))
        return off, on

    off, on = asyncio.run(rounds())
    mode = "one process (in-memory values)" if args.single else "multiprocess files (frontdesk serve --workers N)"
    print(f"# metrics cost per proxied request, {mode}; CPU time, median of {args.rounds} x {args.requests}")
    print(f"without metrics: {statistics.median(off):6.2f} us")
    print(f"with metrics:    {statistics.median(on):6.2f} us")
    print(f"added:           {statistics.median(b - a for a, b in zip(off, on, strict=True)):6.2f} us")


if __name__ == "__main__":
    sys.exit(main())
