"""Session-engine benchmark: login latency over a real server, and the engine's cost per authenticated request.

Run from the repository root (about 15 seconds)::

    python tests/bench/engine_bench.py
    python -m tests.bench.engine_bench --logins 100 --grants 50000

What it measures, printed as one table:

- ``POST /auth/login`` over ``frontdesk serve`` (uvicorn, uvloop, httptools, one worker) on a free port, with a
  temp config, a real SQLite file and an argon2id user (the library's RFC 9106 defaults: 64 MiB, t=3):
  sequential logins over one keep-alive connection, client-side wall time, p50/p99/mean.
- argon2id verification alone, in-process, for reference: most of a login is this, on purpose.
- ``GET /auth/session`` over the same server with a cached access token: the HTTP round trip around one grant.
- ``engine.grant(cookie)`` in-process, in a loop, on a ``SqliteStore`` over a temp file with the default
  lifetimes (15 min access tokens): the per-request cost of the engine when the access token is cached
  (refresh-cookie check from the codec's cache, session row from the 0.5 s row cache, re-read from SQLite
  when that expires, access token from memory). The mean includes those periodic re-reads; a second line
  times the call when the row has to be re-read (a manual clock moves 0.6 s between calls).

This is a benchmark, not a test: nothing here asserts; read the table. Numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
USERNAME, PASSWORD = "bench", "bench-password-123"
CONFIG = """\
[tokens]
access_ttl = "15m"
refresh_ttl = "7d"
remember_ttl = "30d"
max_session_age = "30d"
rotation_grace = "30s"

[store]
url = "sqlite:///frontdesk.db"

[login]
max_attempts_per_user = 1000000
max_attempts_per_address = 1000000
"""


@dataclass
class Row:
    name: str
    samples: list[float]  # seconds
    unit: str  # "ms" or "us"

    def fmt(self, seconds: float) -> str:
        scale = 1e3 if self.unit == "ms" else 1e6
        return f"{seconds * scale:10.1f} {'ms' if self.unit == 'ms' else 'µs'}"

    def line(self) -> str:
        s = sorted(self.samples)
        p50 = statistics.median(s)
        p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
        mean = statistics.fmean(s)
        return f"{self.name:<52} {len(s):>7} {self.fmt(p50)} {self.fmt(p99)} {self.fmt(mean)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def secrets_env() -> dict[str, str]:
    return {
        "FRONTDESK_ACCESS_SECRET": secrets.token_urlsafe(48),
        "FRONTDESK_REFRESH_SECRET": secrets.token_urlsafe(48),
    }


def run_loop(main: Callable[[], Awaitable[object]]) -> object:
    """Run on uvloop when installed, as ``frontdesk serve`` does."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


async def add_user(config_path: Path, env: dict[str, str]) -> None:
    from frontdesk.gateway.config import load_config
    from frontdesk.gateway.users import UserDirectory

    config = load_config(config_path, env=env)
    directory = UserDirectory(config.users_database)
    await directory.open()
    try:
        await directory.add(USERNAME, PASSWORD)
    finally:
        await directory.close()


@contextlib.contextmanager
def running_server(workdir: Path, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    args = [
        sys.executable, "-m", "frontdesk.gateway.cli", "serve", "--config", str(workdir / "config.toml"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning",
    ]  # fmt: skip
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")} | env
    log = workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=workdir, env=process_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the gateway exited with {proc.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"the gateway did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def bench_http(workdir: Path, logins: int, requests: int) -> list[Row]:
    env = secrets_env()
    (workdir / "config.toml").write_text(CONFIG)
    run_loop(lambda: add_user(workdir / "config.toml", env))
    with running_server(workdir, env) as url, httpx.Client(base_url=url, timeout=60) as client:
        headers = {"X-CSRF": "1"}
        body = {"username": USERNAME, "password": PASSWORD}

        def login() -> httpx.Response:
            response = client.post("/auth/login", headers=headers, json=body)
            if response.status_code != 200:
                raise SystemExit(f"login failed: {response.status_code} {response.text}")
            return response

        for _ in range(3):  # warm-up: connection, code paths, the first argon2 allocation
            login()
        login_times = []
        for _ in range(logins):
            start = time.perf_counter()
            response = login()
            login_times.append(time.perf_counter() - start)

        cookie = response.headers["set-cookie"].split(";", 1)[0]
        session_headers = {"X-CSRF": "1", "Cookie": cookie}
        client.cookies.clear()
        for _ in range(50):
            client.get("/auth/session", headers=session_headers)
        session_times = []
        for _ in range(requests):
            start = time.perf_counter()
            r = client.get("/auth/session", headers=session_headers)
            session_times.append(time.perf_counter() - start)
            if r.status_code != 200:
                raise SystemExit(f"/auth/session failed: {r.status_code} {r.text}")
    return [
        Row("POST /auth/login over uvicorn (argon2id)", login_times, "ms"),
        Row("GET /auth/session over uvicorn (cached token)", session_times, "ms"),
    ]


def bench_argon2(rounds: int) -> Row:
    from argon2 import PasswordHasher

    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        times.append(time.perf_counter() - start)
    return Row("  argon2id verify alone, in-process", times, "ms")


async def bench_grant(workdir: Path, grants: int, rereads: int) -> list[Row]:
    from frontdesk.gateway.app import build_engine
    from frontdesk.gateway.config import load_config
    from frontdesk.middleware.clock import ManualClock
    from frontdesk.middleware.sessions import User
    from frontdesk.middleware.store.sqlite import SqliteStore

    (workdir / "config.toml").write_text(CONFIG)
    config = load_config(workdir / "config.toml", env=secrets_env())
    store = SqliteStore(workdir / "engine.db")
    await store.open()

    async def authenticator(username: str, password: str) -> User | None:
        return User(id="u-bench", username=username)

    rows = []
    try:
        # 1. The steady state: system clock, everything cached; the row cache expires every 0.5 s and the
        #    row is re-read then, which the mean includes when the loop runs longer than that.
        engine = build_engine(config, store=store, authenticator=authenticator)
        result = await engine.login(USERNAME, PASSWORD, client_ip="127.0.0.1")
        cookie = result.set_cookie.split(";", 1)[0]
        for _ in range(1000):
            await engine.grant(cookie)
        before = dict(engine.stats)
        per_call = []
        clock = time.perf_counter
        total_start = clock()
        for _ in range(grants):
            start = clock()
            grant = await engine.grant(cookie)
            per_call.append(clock() - start)
        total = clock() - total_start
        if grant.set_cookie is not None or engine.stats != before:
            raise SystemExit(f"the cached path minted or rotated: {before} -> {engine.stats}")
        rows.append(Row("engine.grant(cookie), cached access token", per_call, "us"))
        rows.append(Row(f"  same, wall time / calls over {total:.1f} s (no timer)", [total / grants], "us"))

        # 2. The same call when the session row must be re-read from SQLite (once per 0.5 s per session and
        #    worker): a manual clock moves 0.6 s between calls, well inside the 15 min access token.
        manual = ManualClock(time.time())
        engine = build_engine(config, store=store, authenticator=authenticator, clock=manual)
        result = await engine.login(USERNAME, PASSWORD, client_ip="127.0.0.1")
        cookie = result.set_cookie.split(";", 1)[0]
        before = dict(engine.stats)
        per_call = []
        for _ in range(rereads):
            manual.advance(0.6)
            start = clock()
            await engine.grant(cookie)
            per_call.append(clock() - start)
        if engine.stats != before:
            raise SystemExit(f"the re-read path minted or rotated: {before} -> {engine.stats}")
        rows.append(Row("  same, session row re-read from SQLite", per_call, "us"))
    finally:
        await store.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=50, help="timed logins over HTTP (default 50)")
    parser.add_argument("--requests", type=int, default=500, help="timed GET /auth/session (default 500)")
    parser.add_argument("--grants", type=int, default=200_000, help="timed engine.grant calls (default 200000)")
    parser.add_argument("--rereads", type=int, default=1000, help="timed grants that re-read the row (default 1000)")
    parser.add_argument("--argon2", type=int, default=20, help="timed argon2id verifications (default 20)")
    args = parser.parse_args(argv)

    os.chdir(ROOT)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as tmp:
        http_dir, engine_dir = Path(tmp, "http"), Path(tmp, "engine")
        http_dir.mkdir()
        engine_dir.mkdir()
        http_rows = bench_http(http_dir, args.logins, args.requests)
        rows += [http_rows[0], bench_argon2(args.argon2), http_rows[1]]
        rows += run_loop(lambda: bench_grant(engine_dir, args.grants, args.rereads))  # type: ignore[operator]

    try:
        import uvloop

        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio"
    print(
        f"frontdesk engine benchmark - Python {platform.python_version()}, {os.cpu_count()} CPUs, {loop}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'':<52} {'n':>7} {'p50':>13} {'p99':>13} {'mean':>13}")
    for row in rows:
        if len(row.samples) == 1:
            print(f"{row.name:<52} {'':>7} {'':>13} {'':>13} {row.fmt(row.samples[0])}")
        else:
            print(row.line())


if __name__ == "__main__":
    main()
