"""Proxy benchmark: direct upstream vs frontdesk vs nginx ``proxy_pass`` vs a plain httpx forwarder.

Run from the repository root (takes about two minutes)::

    python tests/bench/proxy_bench.py                 # wrk when installed, else a Python load generator
    python tests/bench/proxy_bench.py --duration 10 --conns 1,16,64 --stream-mib 1024
    python tests/bench/proxy_bench.py --pinned --duration 8 --rounds 3    # servers on CPU 0, wrk on CPU 1
    python tests/bench/proxy_bench.py --workers-report --stream-mib 0      # 1 vs 2 `frontdesk serve` workers

It starts a demo upstream (uvicorn + uvloop + httptools, one worker), frontdesk's ProxyApp behind uvicorn
the way ``frontdesk serve`` runs it, nginx (when installed) and an httpx-based forwarder, then drives each
with the same load and prints req/s, p50, p99 and the ratio to direct at each connection count, in one
run so all columns share the machine's weather. Every proxy verifies a refresh-JWT cookie (HS256, pyjwt)
and injects a cached Bearer, as in issue 3's comparison (nginx only injects: it cannot verify). Finally it
streams a large download and upload through frontdesk and reports the gateway's RSS growth.

``--pinned`` measures CPU cost rather than spare cores: the upstream, nginx and the gateway (a real
``frontdesk serve`` process, one worker, from a config file written here, with a logged-in user's cookie) all
run on CPU 0 (``taskset -c 0``) and the load generator on CPU 1, direct / nginx / frontdesk in the same
interleaved rounds; it reports req/s, the ratios to direct and to nginx, p50/p99, errors (non-2xx and socket
errors) and each server's CPU microseconds per request from /proc (utime + stime of its process tree).
``--workers-report`` runs ``frontdesk serve --workers 1`` and ``--workers 2`` side by side, unpinned.

This is a benchmark, not a test: nothing here asserts; read the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SECRET = "bench-refresh-secret-0123456789abcdef0123456789abcdef"
ACCESS_SECRET = "bench-access-secret-0123456789abcdef0123456789abcdef"
COOKIE = "__Host-frontdesk"
PATHS = {"demo": "/api/me", "raw": "/api/ping"}


def access_token() -> str:
    """The cached Bearer every variant injects: a valid frontdesk access token for the demo upstream."""
    cached = os.environ.get("FD_BENCH_TOKEN")
    if cached:
        return cached
    import jwt

    now = int(time.time())
    claims = {
        "sub": "bench",
        "sid": "bench-sid",
        "jti": "bench-jti",
        "iat": now,
        "exp": now + 3600,
        "iss": "frontdesk",
        "aud": "frontdesk-api",
    }
    from frontdesk.middleware.tokens import KeyRing

    kid = KeyRing.from_secrets(ACCESS_SECRET).signing_key().kid  # the demo upstream looks keys up by kid
    token = jwt.encode(claims, ACCESS_SECRET, algorithm="HS256", headers={"typ": "at+jwt", "kid": kid})
    os.environ["FD_BENCH_TOKEN"] = token  # children inherit it
    return token


# ---------------------------------------------------------------------------------------------------------
# the servers (each runs in its own process: ``proxy_bench.py _serve <kind> <port> [upstream_port]``)
# ---------------------------------------------------------------------------------------------------------


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The demo upstream: a small JSON answer, a streamed download and an upload sink."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/api/big":
        size = int(scope["query_string"].decode().partition("n=")[2] or 0)
        chunk = b"x" * 262144
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % size)]})
        while size > 0:
            part = chunk if size >= len(chunk) else chunk[:size]
            size -= len(part)
            await send({"type": "http.response.body", "body": part, "more_body": size > 0})
        return
    if path == "/api/sink":
        total = 0
        while True:
            message = await receive()
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b'{"received": %d}' % total
    else:
        authorized = any(n == b"authorization" for n, _ in scope["headers"])
        body = b'{"ok": true, "user": "bench", "authorized": %s}' % (b"true" if authorized else b"false")
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _cookie_value(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, v = part.strip().partition("=")
                if key == COOKIE:
                    return v
    return None


class BenchEngine:
    """A stand-in session engine: verifies the refresh JWT (HS256) per request, returns a cached Bearer."""

    cookie_name = COOKIE

    def __init__(self) -> None:
        import jwt

        from frontdesk.middleware.errors import NotAuthenticated

        self._jwt = jwt
        self._na = NotAuthenticated
        self._token = access_token()

    async def grant(self, cookie_header: str | None, *, audience: str | None = None, force_new: bool = False) -> Any:
        value = None
        for part in (cookie_header or "").split(";"):
            key, _, v = part.strip().partition("=")
            if key == COOKIE:
                value = v
        if value is None:
            raise self._na("no session")
        try:
            claims = self._jwt.decode(value, SECRET, algorithms=["HS256"])
        except self._jwt.PyJWTError as exc:
            raise self._na("bad cookie") from exc
        return _Grant(claims["sid"], self._token, None)

    async def is_active(self, sid: str) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class _Grant:
    sid: str
    access_token: str
    set_cookie: str | None


class _NoTrust:
    def is_trusted(self, host: str | None) -> bool:
        return False


async def _not_found(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def frontdesk_app(upstream_port: int, blob_port: int) -> Any:
    from frontdesk.gateway.proxy import ProxyApp, parse_proxy_settings, parse_routes

    routes, problems = parse_routes(
        [
            {"prefix": "/api/", "upstream": f"http://127.0.0.1:{upstream_port}", "csrf": True},
            {"prefix": "/blob/", "upstream": f"http://127.0.0.1:{blob_port}/api/", "methods": ["GET", "POST"]},
        ],
        default_audience="bench",
    )
    settings, more = parse_proxy_settings({"max_body_size": "2GiB"})
    assert not problems and not more, problems + more
    return ProxyApp(routes, BenchEngine(), settings=settings, trusted=_NoTrust(), fallback=_not_found)


BENCH_CONFIG = """\
[tokens]
access_ttl = "15m"
refresh_ttl = "7d"
max_session_age = "30d"

[store]
url = "sqlite:///frontdesk.db"

[login]
max_attempts_per_user = 1000000
max_attempts_per_address = 1000000
"""
BENCH_USER, BENCH_PASSWORD = "bench", "bench-password-123"


BENCH_ROUTES = """
[proxy]
max_body_size = "2GiB"

[metrics]
address = "{metrics}"

[[routes]]
prefix = "/api/"
upstream = "http://127.0.0.1:{upstream}"

[[routes]]
prefix = "/blob/"
upstream = "http://127.0.0.1:{blob}/api/"
methods = ["GET", "POST"]
"""


def frontdesk_real_app() -> Any:
    """The whole gateway from ``gateway.app.create_app``: the real session engine, SQLite store, /auth/*.

    Built from a config.toml with [[routes]] by ``create_app``, exactly as ``frontdesk serve`` does.
    """
    from frontdesk.gateway.app import create_app
    from frontdesk.gateway.config import load_config
    from frontdesk.middleware.sessions import User

    config = load_config(Path(os.environ["FD_BENCH_WORKDIR"]) / "config.toml", env=dict(os.environ))

    async def authenticator(username: str, password: str) -> User | None:
        # No argon2 here: logins are not what this benchmark measures (engine_bench.py does).
        return User(id="u-bench", username=username) if password == BENCH_PASSWORD else None

    gateway = create_app(config, authenticator=authenticator)
    if os.environ.get("FD_BENCH_NO_EDGE") == "1":
        # Measuring only: the gateway minus its edge layer (gateway/edge.py: request ids, security headers,
        # request counts), for what that layer costs.
        gateway._entry = gateway._dispatch
    return gateway


def httpx_app(upstream_port: int) -> Any:
    """The naive forwarder: raw ASGI + one shared httpx.AsyncClient (streaming both ways)."""
    import httpx
    import jwt

    client = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{upstream_port}",
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
        timeout=30,
    )
    hop = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"host", b"cookie"}
    bearer = b"Bearer " + access_token().encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        value = _cookie_value(scope["headers"])
        try:
            jwt.decode(value or "", SECRET, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.PyJWTError:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(n, v) for n, v in scope["headers"] if n not in hop and n != b"authorization"]
        headers.append((b"authorization", bearer))

        async def body() -> Any:
            while True:
                message = await receive()
                yield message.get("body", b"")
                if not message.get("more_body"):
                    return

        has_body = any(n in (b"content-length", b"transfer-encoding") for n, _ in scope["headers"])
        request = client.build_request(
            scope["method"],
            scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else ""),
            headers=headers,
            content=body() if has_body else None,
        )
        response = await client.send(request, stream=True)
        try:
            out = [(n.lower(), v) for n, v in response.headers.raw if n.lower() not in hop]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    return app


def _serve(kind: str, port: int, upstream_port: int, blob_port: int) -> None:
    import uvicorn

    sys.path.insert(0, str(ROOT))
    app: Any
    if kind == "raw":
        app = upstream_app
    elif kind == "demo":
        from frontdesk.gateway.demo_upstream import create_demo_upstream

        app = create_demo_upstream()  # verifies the Bearer with FRONTDESK_ACCESS_SECRET
    elif kind == "frontdesk":
        app = frontdesk_app(upstream_port, blob_port)
    elif kind == "frontdesk-real":
        app = frontdesk_real_app()
    elif kind == "httpx":
        app = httpx_app(upstream_port)
    else:
        raise SystemExit(f"unknown server kind {kind}")
    # The way `frontdesk serve` runs (uvloop, httptools, one worker, no Server header), minus the access log
    # unless FD_BENCH_ACCESS_LOG=1: uvicorn's access log alone costs about 30 us per request here.
    # FD_BENCH_LOG_FORMAT=json|text: the gateway's own logging config (gateway/logs.py: request ids on every line,
    # query strings cut), with the access log on, as `frontdesk serve --access-log` runs.
    log_format = os.environ.get("FD_BENCH_LOG_FORMAT", "") if kind.startswith("frontdesk") else ""
    access_log = (os.environ.get("FD_BENCH_ACCESS_LOG") == "1" or bool(log_format)) and kind.startswith("frontdesk")
    options: dict[str, Any] = {}
    if log_format:
        from frontdesk.gateway.logs import log_config

        options["log_config"] = log_config("info", json_lines=log_format == "json")
    if access_log:  # formatted and written as usual, to /dev/null rather than this terminal
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    from frontdesk.gateway.serving import FastHttp

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        # `frontdesk serve`'s protocol (its fast path answers proxied requests without ASGI) unless
        # FD_BENCH_FAST_PATH=0 ([server] fast_path = false): uvicorn's own, everything through ASGI
        http=FastHttp if kind.startswith("frontdesk") and os.environ.get("FD_BENCH_FAST_PATH") != "0" else "httptools",
        lifespan="on" if kind == "frontdesk-real" else "off",
        access_log=access_log,
        log_level="info" if access_log else "warning",
        proxy_headers=False,
        server_header=False,
        backlog=4096,
        **options,
    )


# ---------------------------------------------------------------------------------------------------------
# process helpers
# ---------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextlib.contextmanager
def started(cmd: list[str], port: int, cwd: Path = ROOT) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def serve_cmd(kind: str, port: int, upstream_port: int = 0, blob_port: int = 0) -> list[str]:
    script = str(Path(__file__).resolve())
    return [sys.executable, script, "_serve", kind, str(port), str(upstream_port), str(blob_port)]


def frontdesk_serve(
    workdir: Path, port: int, workers: int, pin: list[str]
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """``frontdesk serve`` itself (the fast path and all), from ``workdir/config.toml``, with the bench user added."""
    script = Path(sys.executable).with_name("frontdesk")
    cli = [str(script)] if script.exists() else [sys.executable, "-c", "from frontdesk.gateway.cli import main; main()"]
    config = str(workdir / "config.toml")
    if not (workdir / "frontdesk.db").exists():
        subprocess.run(
            [*cli, "users", "add", BENCH_USER, "--password-stdin", "--config", config],
            input=BENCH_PASSWORD.encode(),
            cwd=workdir,
            check=True,
            capture_output=True,
        )
    cmd = [*pin, *cli, "serve", "--config", config, "--host", "127.0.0.1", "--port", str(port)]
    return started([*cmd, "--workers", str(workers), "--log-level", "warning"], port, cwd=workdir)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's workers, nginx's worker), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def tree_cpu_seconds(pid: int, *, system_only: bool = False) -> float:
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(p, system_only=system_only)
    return total


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;  # like uvicorn: no cap on requests per client connection
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 2g;
    upstream demo {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /api/ {{
            proxy_pass http://demo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer {token}";
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_request_buffering off;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(port: int, upstream: int, pin: list[str] | None = None) -> Iterator[subprocess.Popen[bytes] | None]:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="fd-bench-nginx-") as tmp:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, upstream=upstream, token=access_token()))
        user = "" if os.geteuid() != 0 else "user root;\n"
        if user:
            conf.write_text(user + conf.read_text())
        with started([*(pin or []), binary, "-p", tmp, "-c", str(conf), "-e", f"{tmp}/error.log"], port) as proc:
            yield proc


# ---------------------------------------------------------------------------------------------------------
# load generation
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = 0.0  # the server's CPU time (user + system) per request, when measured
    sys_us: float = 0.0  # the system (kernel) part of it: the system calls, the loopback TCP


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(port: int, path: str, conns: int, duration: float, headers: dict[str, str], pin: list[str]) -> Result:
    cmd = [*pin, "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "10s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))

    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
        return float(value) * _UNITS[unit]

    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return Result(rps, ms(lat["50"]), ms(lat["99"]), errors)


async def _py_load(port: int, path: str, conns: int, duration: float, headers: dict[str, str]) -> Result:
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (head + "\r\n").encode()
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    writer.write(request)
                    status_line = await reader.readuntil(b"\r\n")
                    rest = await reader.readuntil(b"\r\n\r\n")
                    match = re.search(rb"(?i)content-length:\s*(\d+)", rest)
                    await reader.readexactly(int(match.group(1)) if match else 0)
                except (asyncio.IncompleteReadError, ConnectionError):
                    # the server closed the connection (as wrk does, reconnect and go on)
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                if b" 200 " not in status_line:
                    errors += 1
        finally:
            writer.close()

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    elapsed = time.perf_counter() - begin
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return Result(len(latencies) / elapsed, q[49] * 1000, q[98] * 1000, errors)


def run_load(
    port: int, path: str, conns: int, duration: float, headers: dict[str, str], use_wrk: bool, pin: list[str]
) -> Result:
    if use_wrk:
        return run_wrk(port, path, conns, duration, headers, pin)
    try:
        import uvloop

        return uvloop.run(_py_load(port, path, conns, duration, headers))
    except ImportError:
        return asyncio.run(_py_load(port, path, conns, duration, headers))


# ---------------------------------------------------------------------------------------------------------
# the streaming memory check
# ---------------------------------------------------------------------------------------------------------


def login(port: int) -> str:
    """Log the bench user in over HTTP; return the refresh cookie pair for the Cookie header."""
    import httpx

    response = httpx.post(
        f"http://127.0.0.1:{port}/auth/login",
        json={"username": BENCH_USER, "password": BENCH_PASSWORD},
        headers={"X-CSRF": "1"},
        timeout=30,
    )
    response.raise_for_status()
    return response.headers["set-cookie"].split(";", 1)[0]


def _median(results: list[Result]) -> Result:
    """The run with the median req/s (its own latencies and errors; errors are summed over all runs)."""
    ordered = sorted(results, key=lambda r: r.rps)
    mid = ordered[len(ordered) // 2]
    cpu = statistics.median(r.cpu_us for r in results)
    sys_us = statistics.median(r.sys_us for r in results)
    return Result(mid.rps, mid.p50_ms, mid.p99_ms, sum(r.errors for r in results), cpu, sys_us)


def cpu_seconds(pid: int, *, system_only: bool = False) -> float:
    """User + system CPU time of ``pid`` so far (Linux /proc); ``system_only``: the kernel's part alone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[12]) + (0 if system_only else int(fields[11]))) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _stream(port: int, pid: int, size: int, headers: dict[str, str]) -> dict[str, Any]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    samples: list[int] = []
    base = rss_kib(pid)

    async def sample() -> None:
        while True:
            samples.append(rss_kib(pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.ensure_future(sample())
    results: dict[str, Any] = {"rss_before_mib": base / 1024}
    try:
        # download
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        t0 = time.perf_counter()
        writer.write(f"GET /blob/big?n={size} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        got = 0
        while chunk := await reader.read(1 << 20):
            got += len(chunk)
        writer.close()
        results["download_bytes"] = got
        results["download_mib_s"] = got / (1 << 20) / (time.perf_counter() - t0)
        down_peak = max(samples)
        samples.clear()
        # upload (chunked)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        t0 = time.perf_counter()
        head = f"POST /blob/sink HTTP/1.1\r\nHost: x\r\n{extra}Transfer-Encoding: chunked\r\nConnection: close\r\n"
        writer.write(head.encode() + b"\r\n")
        block = b"u" * (1 << 20)
        framed = b"%x\r\n%b\r\n" % (len(block), block)
        for _ in range(size // len(block)):
            writer.write(framed)
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        reply = await reader.read()
        writer.close()
        results["upload_reply"] = reply.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")
        results["upload_mib_s"] = size / (1 << 20) / (time.perf_counter() - t0)
        up_peak = max(samples) if samples else base
    finally:
        sampler.cancel()
    results["rss_growth_download_mib"] = (down_peak - base) / 1024
    results["rss_growth_upload_mib"] = (up_peak - base) / 1024
    return results


# ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_serve":
        _serve(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run (default 5)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs per cell; the median is shown (default 3: the machine is noisy)"
    )
    parser.add_argument("--conns", default="1,16,64", help="connection counts (default 1,16,64)")
    parser.add_argument("--stream-mib", type=int, default=1024, help="MiB to stream down and up (0: skip)")
    parser.add_argument("--no-httpx", action="store_true", help="skip the httpx forwarder")
    parser.add_argument("--no-nginx", action="store_true")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure a bare Python forwarder (bare_forwarder.py: uvloop + httptools, callbacks only, no "
        "session, no hygiene): what forwarding alone costs in Python, the floor under any Python proxy",
    )
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even with wrk")
    parser.add_argument(
        "--pinned",
        action="store_true",
        help="servers (upstream, nginx, a real `frontdesk serve` with one worker) on CPU 0, the load generator on "
        "CPU 1: CPU cost per request rather than spare cores",
    )
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="record the gateway with py-spy (500 Hz, collapsed stacks to PATH) during the measured rounds and "
        "print its top frames",
    )
    parser.add_argument(
        "--workers-report",
        action="store_true",
        help="req/s of `frontdesk serve --workers 1` and `--workers 2` side by side (unpinned)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="run frontdesk with uvicorn's access log on (as `frontdesk serve --log-level info` does today)",
    )
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        help="run frontdesk with its own logging config in this format and the access log on (frontdesk serve "
        "--access-log with [log] format)",
    )
    parser.add_argument(
        "--no-edge",
        action="store_true",
        help="run the gateway without its edge layer (--engine real: no request ids, security headers or request "
        "counts), to measure what that layer costs",
    )
    parser.add_argument(
        "--engine",
        choices=("real", "fake"),
        default="real",
        help="real: the whole gateway from frontdesk.gateway.app.create_app (session engine, SQLite, a logged-in "
        "cookie); fake: ProxyApp alone with a stand-in engine that verifies the refresh JWT with pyjwt on "
        "every request (issue 3's comparison)",
    )
    parser.add_argument(
        "--upstream",
        choices=("demo", "raw"),
        default="demo",
        help="demo: the project's Starlette demo API (GET /api/me verifies the Bearer); "
        "raw: a bare ASGI function (GET /api/ping), the harshest case for any proxy",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="real engine only: record Prometheus metrics ([metrics] address set) in prometheus-client's "
        "multiprocess mode, as `frontdesk serve --workers N` does; default: metrics off (address = \"\")",
    )
    args = parser.parse_args(argv)

    import jwt

    os.environ["FRONTDESK_ACCESS_SECRET"] = ACCESS_SECRET
    os.environ["FRONTDESK_REFRESH_SECRET"] = SECRET
    access_token()
    workdir = Path(tempfile.mkdtemp(prefix="fd-proxy-bench-"))
    os.environ["FD_BENCH_WORKDIR"] = str(workdir)
    if args.access_log:
        os.environ["FD_BENCH_ACCESS_LOG"] = "1"
    if args.log_format:
        os.environ["FD_BENCH_LOG_FORMAT"] = args.log_format
    if args.no_edge:
        os.environ["FD_BENCH_NO_EDGE"] = "1"
    cookie = jwt.encode({"sub": "bench", "sid": "bench-sid"}, SECRET, algorithm="HS256")
    headers = {"Cookie": f"theme=dark; {COOKIE}={cookie}", "X-CSRF": "1", "Accept": "application/json"}
    use_wrk = shutil.which("wrk") is not None and not args.python_load
    conns = [int(c) for c in args.conns.split(",")]
    ports = {k: free_port() for k in ("raw", "demo", "frontdesk", "nginx", "httpx")}
    path = PATHS[args.upstream]
    up = ports[args.upstream]
    metrics = f"127.0.0.1:{free_port()}" if args.metrics else ""
    routes = BENCH_ROUTES.format(upstream=up, blob=ports["raw"], metrics=metrics)
    (workdir / "config.toml").write_text(BENCH_CONFIG + routes)

    pinned, serve = args.pinned, args.pinned or args.workers_report
    servers_pin = ["taskset", "-c", "0"] if pinned else []
    load_pin = ["taskset", "-c", "1"] if pinned else []
    if pinned:
        if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
            raise SystemExit("--pinned needs two CPUs and taskset (util-linux)")
        os.sched_setaffinity(0, {1})  # this script (and the Python load generator, if used) off the servers' CPU

    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(started([*servers_pin, *serve_cmd("raw", ports["raw"])], ports["raw"]))
        upstream_procs = {"raw": raw}
        if args.upstream == "demo":
            cmd = [*servers_pin, *serve_cmd("demo", ports["demo"])]
            upstream_procs["demo"] = stack.enter_context(started(cmd, ports["demo"]))
        stack.callback(shutil.rmtree, workdir, True)
        kind = "frontdesk-real" if args.engine == "real" else "frontdesk"
        if args.metrics:  # read by prometheus-client when it is first imported: in the frontdesk child only
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "metrics")
            (workdir / "metrics").mkdir(mode=0o700)
        # The gateways measured: name -> (port, process).
        gateways: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
        if args.workers_report:
            for n in (1, 2):
                port = ports["frontdesk"] if n == 1 else free_port()
                gateways[f"frontdesk-{n}w"] = (port, stack.enter_context(frontdesk_serve(workdir, port, n, [])))
        elif serve:
            gw_port = ports["frontdesk"]
            gateways["frontdesk"] = (gw_port, stack.enter_context(frontdesk_serve(workdir, gw_port, 1, servers_pin)))
        else:
            cmd = serve_cmd(kind, ports["frontdesk"], up, ports["raw"])
            gateways["frontdesk"] = (ports["frontdesk"], stack.enter_context(started(cmd, ports["frontdesk"])))
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        first_port, gw = next(iter(gateways.values()))
        if args.engine == "real" or serve:
            headers["Cookie"] = "theme=dark; " + login(first_port)
        targets = ["direct"]
        ports["direct"] = up
        procs: dict[str, subprocess.Popen[bytes]] = {"direct": upstream_procs[args.upstream]}
        if not args.no_nginx and not args.workers_report:
            proc = stack.enter_context(nginx(ports["nginx"], up, servers_pin))
            if proc is not None:
                targets.append("nginx")
                procs["nginx"] = proc
        for name, (port, proc) in gateways.items():
            targets.append(name)
            ports[name] = port
            procs[name] = proc
        if args.floor:  # a bare Python forwarder (bare_forwarder.py): the floor of any proxy written in Python
            ports["floor"] = free_port()
            script = str(Path(__file__).with_name("bare_forwarder.py"))
            floor_cmd = [*servers_pin, sys.executable, script, str(ports["floor"]), str(up), access_token()]
            proc = stack.enter_context(started(floor_cmd, ports["floor"]))
            targets.append("floor")
            procs["floor"] = proc
        if not args.no_httpx and not serve:
            proc = stack.enter_context(started(serve_cmd("httpx", ports["httpx"], up), ports["httpx"]))
            targets.append("httpx")
            procs["httpx"] = proc
        # direct gets the Bearer itself (what the proxies inject)
        direct_headers = {**headers, "Authorization": f"Bearer {access_token()}"}

        def load(target: str, c: int, seconds: float) -> Result:
            """One run against ``target``, with its server's CPU time (process tree, /proc) per request."""
            h = direct_headers if target == "direct" else headers
            pid = procs[target].pid
            cpu, kernel, began = tree_cpu_seconds(pid), tree_cpu_seconds(pid, system_only=True), time.perf_counter()
            result = run_load(ports[target], path, c, seconds, h, use_wrk, load_pin)
            served = result.rps * (time.perf_counter() - began)
            result.cpu_us = (tree_cpu_seconds(pid) - cpu) / served * 1e6 if served else 0.0
            result.sys_us = (tree_cpu_seconds(pid, system_only=True) - kernel) / served * 1e6 if served else 0.0
            return result

        generator = ("wrk -t1" if use_wrk else "python asyncio") + (" on CPU 1, servers on CPU 0" if pinned else "")
        gateway_kind = "frontdesk serve" if serve else f"{args.engine} engine under uvicorn"
        print(
            f"# proxy benchmark: GET {path} on the {args.upstream} upstream, {gateway_kind}"
            f"{', access log on' if args.access_log else ''}"
            f"{f', {args.log_format} log with access lines' if args.log_format else ''}"
            f"{', no edge layer' if args.no_edge else ''}"
            f"{', metrics on' if args.metrics else ''}, "
            f"median of {args.rounds} x {args.duration:g} s runs, load generator: {generator}, "
            f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        for target in targets:  # warm up every path (pools, caches, page faults)
            load(target, 4, 1.0)
        runs: dict[tuple[str, int], list[Result]] = {}
        spy = start_profile(args.profile, gw.pid) if args.profile else None
        for _ in range(args.rounds):
            for c in conns:
                for target in targets:  # interleaved, so the machine's noise spreads over all columns
                    runs.setdefault((target, c), []).append(load(target, c, args.duration))
        table = {key: _median(results) for key, results in runs.items()}
        print_table(table, targets, conns)
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(60)
            print_profile(Path(args.profile))
        print(f"# load average after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

        if args.stream_mib:
            size = args.stream_mib * (1 << 20)
            streamed = asyncio.run(_stream(first_port, gw.pid, size, headers))
            print(f"\nstreaming {args.stream_mib} MiB through frontdesk:")
            print(json.dumps(streamed, indent=2))


def start_profile(path: str, pid: int) -> subprocess.Popen[bytes]:
    """py-spy recording ``pid`` at 500 Hz (non-blocking, so the gateway is not paused per sample)."""
    cmd = ["py-spy", "record", "-r", "500", "--nonblocking", "--function", "--format", "raw", "-o", path]
    spy = subprocess.Popen([*cmd, "--pid", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # attached before the load starts
    return spy


def print_profile(path: Path, top: int = 15) -> None:
    """The profile's top frames: where samples were taken (self) and what they were under (inclusive)."""
    own: dict[str, int] = {}
    under: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.strip() for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            under[frame] = under.get(frame, 0) + n
    print(f"\npy-spy profile of the gateway ({total} samples, {path}):")
    for title, counts in (("self", own), ("inclusive", under)):
        print(f"  top frames, {title}:")
        for frame, n in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
            print(f"    {100 * n / max(total, 1):5.1f}%  {frame}")


def print_table(table: dict[tuple[str, int], Result], targets: list[str], conns: list[int]) -> None:
    """Per connection count and target: req/s, p50/p99, ratios to direct and to nginx, errors, CPU per request."""
    nginx_col = "nginx" in targets
    print()
    print(
        f"{'conns':>5}  {'target':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'÷direct':>7}"
        f"{' ÷nginx' if nginx_col else ''} {'errors':>6} {'CPU us/req':>10} {'of it sys':>9}"
    )
    for c in conns:
        direct = table[("direct", c)].rps
        for target in targets:
            r = table[(target, c)]
            vs_nginx = f" {r.rps / table[('nginx', c)].rps:>6.2f}" if nginx_col else ""
            print(
                f"{c:>5}  {target:<12} {r.rps:>9.0f} {r.p50_ms:>8.3f} {r.p99_ms:>8.3f} "
                f"{r.rps / direct:>7.2f}{vs_nginx} {r.errors:>6} {r.cpu_us:>10.0f} {r.sys_us:>9.0f}"
            )
    gateway = next((t for t in targets if t.startswith("frontdesk")), None)
    if 1 in conns and gateway is not None:
        for target in (gateway, "nginx"):
            if target in targets:
                added = table[(target, 1)].p50_ms - table[("direct", 1)].p50_ms
                print(f"p50 latency added by {target} at 1 connection: {added * 1000:.0f} us")


if __name__ == "__main__":
    main()
