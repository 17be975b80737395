"""Benchmark (run by hand, not a test): bearer-mode middleware vs the bare app, and its per-request cost.

    python tests/bench/middleware_bench.py              # ~2.5 minutes; wrk if installed, else a Python load generator
    python tests/bench/middleware_bench.py --duration 5 --rounds 1
    taskset -c 1 python tests/bench/middleware_bench.py --costs-only   # part 2 alone, a few seconds
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python tests/bench/middleware_bench.py \
        --count-calls wrapped 2100                                   # instructions, immune to load (see --help)

1. Throughput: a hello-world Starlette app under uvicorn (httptools, uvloop, 1 worker, access log off), served
   bare and wrapped in ``FrontdeskMiddleware`` bearer mode (HS256 key ring plus the SQLite revocation store),
   loaded at 16 connections each with the same Authorization header (servers pinned to one core, the load
   generator to the other). Each round loads them one after the other (absolute req/s), then both at once
   (they share the core and any background load equally, so their ratio is the relative cost per request even on
   a busy machine); the verdict is the median ratio of the "together" runs.
2. In-process cost per request in microseconds: verification with the cache of verified tokens, the
   revocation check (cached, and a store read), a first (uncached) verification per algorithm, and the whole
   ASGI middleware call minus the bare app call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from frontdesk.middleware.asgi import FrontdeskMiddleware  # noqa: E402
from frontdesk.middleware.bearer import BearerAuth  # noqa: E402
from frontdesk.middleware.keys import generate_private_key, signing_key_from_private  # noqa: E402
from frontdesk.middleware.store.sqlite import SqliteStore  # noqa: E402
from frontdesk.middleware.tokens import ACCESS_TYP, KeyRing, SigningKey, TokenCodec  # noqa: E402

SECRET = "benchmark-access-secret-0123456789abcdef0123456789"
CONNECTIONS = 16


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


def hello_app() -> Starlette:
    return Starlette(routes=[Route("/", hello)])


class NullMiddleware:
    """A pure ASGI middleware that does nothing: the floor cost of any middleware layer (--null)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def bearer(store_path: str | None) -> BearerAuth:
    store = SqliteStore(store_path) if store_path else None
    return BearerAuth(keyring=KeyRing.from_secrets(SECRET), revocations=store)


def make_token(ttl: int = 3600) -> str:
    key = SigningKey.from_secret(SECRET)
    now = int(time.time())
    claims = {"sub": "u1", "sid": "s1", "jti": "j1", "iat": now, "exp": now + ttl, "iss": "frontdesk"}
    claims["aud"] = "frontdesk-api"
    return jwt.encode(claims, key.sign_key, algorithm="HS256", headers={"typ": ACCESS_TYP, "kid": key.kid})


# --- servers -------------------------------------------------------------------------------------------------


def serve(kind: str, port: int, store_path: str) -> None:
    import uvicorn

    app: Any = hello_app()
    if kind == "wrapped":
        app = FrontdeskMiddleware(app, bearer(store_path))
    elif kind == "null":
        app = NullMiddleware(app)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(kind: str, store_path: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    script = str(Path(__file__).resolve())
    command = [sys.executable, script, "--serve", kind, "--port", str(port), "--store", store_path]
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        command = ["taskset", "-c", "1", *command]  # server on core 1, load generator on core 0
    proc = subprocess.Popen(command)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


# --- load generators -----------------------------------------------------------------------------------------


def wrk(port: int, token: str, duration: float) -> float:
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") and (os.cpu_count() or 1) >= 2 else []
    out = subprocess.run(
        [
            *pin,
            "wrk",
            "-t1",  # one load thread: the other core belongs to the server
            f"-c{CONNECTIONS}",
            f"-d{int(duration)}s",
            "-H",
            f"Authorization: Bearer {token}",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if match is None or non2xx is not None:
        raise RuntimeError(f"wrk run failed or saw errors:\n{out}")
    return float(match.group(1))


async def _py_load(port: int, token: str, duration: float) -> float:
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    done = 0
    stop = time.monotonic() + duration

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < stop:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            done += 1
        writer.close()

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(CONNECTIONS)))
    return done / (time.monotonic() - start)


def load(port: int, token: str, duration: float) -> float:
    if shutil.which("wrk"):
        return wrk(port, token, duration)
    return asyncio.run(_py_load(port, token, duration))


def throughput(duration: float, rounds: int, wrapped_kind: str = "wrapped") -> dict[str, dict[str, list[float]]]:
    """Two measurements over the same two servers (both pinned to one core):

    - "alternating": bare, then wrapped, each alone on the core: the absolute req/s of each;
    - "together": both loaded at the same moment, so they split the core and any background load equally;
      their ratio is the relative cost per request, and it barely moves when the machine is busy.
    """
    token = make_token()
    alternating: dict[str, list[float]] = {"bare": [], "wrapped": []}
    together: dict[str, list[float]] = {"bare": [], "wrapped": []}
    with tempfile.TemporaryDirectory() as tmp:
        store_path = str(Path(tmp) / "revocations.db")
        servers = {kind: start_server(wrapped_kind if kind == "wrapped" else kind, store_path) for kind in alternating}
        try:
            for _, port in servers.values():
                load(port, token, 2)  # warm-up: imports, caches, first revocation read
            with ThreadPoolExecutor(max_workers=2) as pool:
                for _ in range(rounds):
                    for kind, (_, port) in servers.items():
                        alternating[kind].append(load(port, token, duration))
                    futures = {kind: pool.submit(load, port, token, duration) for kind, (_, port) in servers.items()}
                    for kind, future in futures.items():
                        together[kind].append(future.result())
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=10)
    return {"alternating": alternating, "together": together}


# --- in-process costs ----------------------------------------------------------------------------------------


def _per_call_sync(fn: Any, n: int) -> float:
    for _ in range(min(n, 1000)):
        fn()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


async def _per_call(fn: Any, n: int) -> float:
    for _ in range(min(n, 1000)):
        await fn()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            await fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


async def _cpu_per_call(fn: Any, n: int) -> float:
    """Microseconds of this thread's CPU time per call (time spent preempted by other processes excluded)."""
    start = time.thread_time()
    for _ in range(n):
        await fn()
    return (time.thread_time() - start) / n * 1e6


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    return None


def _scope_factory(authorization: str) -> Any:
    headers = [(b"host", b"x"), (b"authorization", authorization.encode())]

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "method": "GET",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "headers": headers,
            "http_version": "1.1",
            "scheme": "http",
            "server": ("x", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
            "app": None,
        }

    return scope


async def count_calls(kind: str, n: int) -> None:
    """``n`` in-process calls of the bare or the wrapped app and nothing else, for an instruction count that
    no other process can disturb: run it twice under ``valgrind --tool=callgrind`` (say n=100 and n=2100)
    and divide the difference of the totals by 2000 (see --count-calls)."""
    app = hello_app()
    target = FrontdeskMiddleware(app, bearer(None)) if kind == "wrapped" else app
    scope = _scope_factory(f"Bearer {make_token()}")
    for _ in range(n):
        await target(scope(), _receive, _send)


async def costs(tmp: str) -> list[tuple[str, float]]:
    token = make_token()
    header = f"Bearer {token}"
    raw = header.encode()  # what the ASGI adapter hands over
    rows: list[tuple[str, float]] = []

    plain = bearer(None)
    rows.append(
        (
            "verify a token seen before (memo hit: exp, key still in ring, user)",
            _per_call_sync(lambda: plain.authenticate_now("/", raw), 50000),
        )
    )

    store = SqliteStore(str(Path(tmp) / "costs.db"))
    with_store = BearerAuth(keyring=KeyRing.from_secrets(SECRET), revocations=store)
    await with_store.authenticate("/", raw)
    rows.append(
        (
            "same + revocation check (answer cached <= 0.5 s)",
            _per_call_sync(lambda: with_store.authenticate_now("/", raw), 50000),
        )
    )
    rows.append(("revocation store read (SQLite, a cache miss)", await _per_call(lambda: store.is_revoked("s1"), 2000)))
    await store.close()

    for algorithm in ("HS256", "EdDSA", "ES256", "RS256"):
        if algorithm == "HS256":
            key = SigningKey.from_secret(SECRET)
        else:
            key = signing_key_from_private(generate_private_key(algorithm))
        codec = TokenCodec(KeyRing([key]), typ=ACCESS_TYP, issuer="frontdesk", audience="frontdesk-api")
        now = int(time.time())
        tokens = [
            codec.encode({"sub": "u", "sid": "s", "jti": f"j{i}", "iat": now, "exp": now + 600}) for i in range(300)
        ]
        start = time.perf_counter()
        for t in tokens:
            codec.decode(t)
        rows.append(
            (f"first verification of a token, {algorithm} (no cache)", (time.perf_counter() - start) / 300 * 1e6)
        )

    app = hello_app()
    wrapped = FrontdeskMiddleware(app, bearer(None))
    scope = _scope_factory(header)
    receive, send = _receive, _send

    # Bare and wrapped interleaved, on CPU time, best of many rounds: on a shared machine the wall-clock
    # difference of two ~15 us calls is mostly other processes' noise (it even came out negative).
    bare_us, wrapped_us = float("inf"), float("inf")
    for _ in range(40):
        bare_us = min(bare_us, await _cpu_per_call(lambda: app(scope(), receive, send), 2000))
        wrapped_us = min(wrapped_us, await _cpu_per_call(lambda: wrapped(scope(), receive, send), 2000))
    rows.append(("hello-world Starlette call, bare (for scale)", bare_us))
    rows.append(("whole ASGI middleware call minus the bare call", wrapped_us - bare_us))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=8, help="alternating bare/wrapped rounds")
    parser.add_argument("--costs-only", action="store_true", help="skip the throughput runs (part 2 only)")
    parser.add_argument(
        "--count-calls",
        nargs=2,
        metavar=("bare|wrapped", "N"),
        help="only make N calls (for: valgrind --tool=callgrind --callgrind-out-file=/dev/null python THIS "
        "--count-calls wrapped 2100; instructions per call = difference of two N over their difference)",
    )
    parser.add_argument("--serve", choices=["bare", "wrapped", "null"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--null", action="store_true", help="compare the bare app with a do-nothing middleware instead (the floor)"
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.store)
        return 0
    if args.count_calls:
        kind, n = args.count_calls
        asyncio.run(count_calls(kind, int(n)))
        return 0

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    if not args.costs_only:
        _report_throughput(args)
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(costs(tmp))
    print("\nper-request cost in process (microseconds):")
    for label, micros in rows:
        print(f"  {micros:8.1f} us  {label}")
    return 0


def _report_throughput(args: argparse.Namespace) -> None:
    tool = "wrk -t1 -c16" if shutil.which("wrk") else "python asyncio load generator, 16 connections"
    runs = throughput(args.duration, args.rounds, "null" if args.null else "wrapped")
    if args.null:
        print("(--null: 'wrapped' is a do-nothing middleware here)")
    print(f"\nthroughput: hello-world Starlette, uvicorn 1 worker; {tool}; {args.rounds} rounds of {args.duration:g}s")
    verdict = 0.0
    for name, results in runs.items():
        bare, wrapped = results["bare"], results["wrapped"]
        ratios = [w / b for b, w in zip(bare, wrapped, strict=True)]
        verdict = statistics.median(ratios)
        print(f"  {name}:")
        print(f"    bare     median {statistics.median(bare):8.0f} req/s   best {max(bare):8.0f}")
        print(f"    wrapped  median {statistics.median(wrapped):8.0f} req/s   best {max(wrapped):8.0f}")
        print(f"    wrapped/bare per round: {', '.join(f'{r:.0%}' for r in ratios)}; median {verdict:.1%}")
    # The "together" runs decide: same moment, same core, same background load for both.
    verdict_word = "PASS" if verdict >= 0.9 else "FAIL"
    print(f"  wrapped / bare = {verdict:.1%} (together, median of rounds); bar >= 90%: {verdict_word}")


if __name__ == "__main__":
    sys.exit(main())
