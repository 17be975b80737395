"""The live-gateway harness behind ``tests/gateway/conftest.py``: a real ``frontdesk serve`` in a subprocess,
and clients that carry the refresh cookie the way a browser would. Import it in tests as
``from live_gateway import ...`` (pytest puts this folder on ``sys.path``; the name is unique on purpose).
Ports, waits and the subprocess itself come from ``tests.support``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import http.cookiejar
import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontdesk.gateway.app import Gateway, create_app
from frontdesk.gateway.backends import users_for
from frontdesk.gateway.config import load_config
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.sessions import Authenticator, User
from tests.support import ServerProcess, free_port, group_members, wait_until

START_TIMEOUT = 60.0  # generous: a shared 2-core machine can be slow to start Python + uvicorn
JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

# Short but not racy lifetimes; tests override per table. access_ttl is long by default so that nothing
# rotates unless a test wants it to (tests that need expiry start their own server with a short one).
DEFAULT_TABLES: dict[str, dict[str, Any]] = {
    "tokens": {
        "access_ttl": "10m",
        "refresh_ttl": "30m",
        "remember_ttl": "1h",
        "max_session_age": "2h",
        "rotation_grace": "3s",
        "leeway": "1s",
        "refresh_margin": "1s",
    },
    "store": {"url": "sqlite:///frontdesk.db", "purge_interval": "1h"},
    "login": {"max_attempts_per_user": 50, "max_attempts_per_address": 1000, "window": "10m"},
    # Off unless a test turns it on at a free port: gateways running at once must not contend for 9464.
    "metrics": {"address": ""},
}


# --- small helpers -------------------------------------------------------------------------------


def make_secrets() -> dict[str, str]:
    """Two fresh, different secrets of 64 characters, as the gateway reads them from the environment."""
    return {
        "FRONTDESK_ACCESS_SECRET": secrets.token_urlsafe(48),
        "FRONTDESK_REFRESH_SECRET": secrets.token_urlsafe(48),
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_text(tables: Mapping[str, Any]) -> str:
    """A small TOML writer: ``{"tokens": {...}, "routes": [{...}, ...]}`` (tables and arrays of tables)."""
    lines: list[str] = []
    for name, body in tables.items():
        if isinstance(body, list):
            for item in body:
                lines.append(f"[[{name}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
                lines.append("")
        else:
            lines.append(f"[{name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in body.items()]
            lines.append("")
    return "\n".join(lines)


def write_config(path: Path, **tables: Mapping[str, Any] | list[Mapping[str, Any]]) -> Path:
    """Write a test ``config.toml``: :data:`DEFAULT_TABLES` with each given table's keys overriding."""
    merged: dict[str, Any] = {name: dict(body) for name, body in DEFAULT_TABLES.items()}
    for name, body in tables.items():
        if isinstance(body, list):
            merged[name] = [dict(item) for item in body]
        else:
            merged.setdefault(name, {}).update(body)
    path.write_text(toml_text(merged))
    return path


def run_in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` (which may call ``asyncio.run``) in a fresh thread, so no running loop is disturbed."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised below
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the tests only read ids out of tokens the server minted)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


# --- Set-Cookie ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetCookie:
    """One ``Set-Cookie`` header: name, value and attributes (names lower-cased; flags map to "")."""

    raw: str
    name: str
    value: str
    attrs: dict[str, str]

    @classmethod
    def parse(cls, raw: str) -> SetCookie:
        first, *rest = [part.strip() for part in raw.split(";")]
        name, _, value = first.partition("=")
        attrs: dict[str, str] = {}
        for part in rest:
            if not part:
                continue
            key, _, val = part.partition("=")
            attrs[key.strip().lower()] = val.strip()
        return cls(raw=raw, name=name, value=value, attrs=attrs)

    @property
    def max_age(self) -> int | None:
        return int(self.attrs["max-age"]) if "max-age" in self.attrs else None

    @property
    def clears(self) -> bool:
        return self.max_age is not None and self.max_age <= 0

    def claims(self) -> dict[str, Any]:
        return jwt_claims(self.value)


def local_port(response: httpx.Response) -> int:
    """The client-side port of the connection that carried ``response`` (still open while kept alive)."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def set_cookies(response: httpx.Response) -> list[SetCookie]:
    return [SetCookie.parse(v) for v in response.headers.get_list("set-cookie")]


def assert_no_token(response: httpx.Response) -> None:
    """No response body ever carries a token (access or refresh), nor any header but Set-Cookie."""
    where = f"{response.request.method} {response.request.url.path}"
    assert JWT_RE.search(response.content) is None, f"{where}: the body contains a token"
    for name, value in response.headers.multi_items():
        if name.lower() != "set-cookie":  # the refresh cookie is the one place a token may travel
            assert JWT_RE.search(value.encode("latin-1")) is None, f"{where}: header {name} contains a token"


# --- clients -------------------------------------------------------------------------------------


def _no_cookie_jar() -> http.cookiejar.CookieJar:
    # httpx would store the __Host- cookie but never send it over http; keep the jar out of the way.
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


_UNSET: Any = object()


class _CookieState:
    """The browser's view: one refresh cookie, replaced by each Set-Cookie and dropped by a clearing one."""

    cookie_name = "__Host-frontdesk"

    def __init__(self) -> None:
        self.cookie: str | None = None  # the refresh token value
        self.responses: list[httpx.Response] = []

    def headers(self, *, csrf: bool = True, cookie: str | None = _UNSET, extra: Mapping[str, str] | None = None):
        headers: dict[str, str] = {}
        if csrf:
            headers["X-CSRF"] = "1"
        token = self.cookie if cookie is _UNSET else cookie
        if token:
            headers["Cookie"] = f"{self.cookie_name}={token}"
        headers.update(extra or {})
        return headers

    def _observe(self, response: httpx.Response, *, follow: bool) -> httpx.Response:
        assert_no_token(response)
        self.responses.append(response)
        if follow:
            for sc in set_cookies(response):
                if sc.name == self.cookie_name:
                    self.cookie = None if sc.clears else sc.value
        return response

    def claims(self) -> dict[str, Any]:
        assert self.cookie, "no refresh cookie held"
        return jwt_claims(self.cookie)


class AuthClient(_CookieState):
    """A synchronous client for one "browser". ``request`` sends ``X-CSRF: 1`` and the held cookie unless
    told otherwise (``csrf=False``, ``cookie=None`` or another token) and follows Set-Cookie unless
    ``follow=False``. ``local_address`` picks the client's source address (any 127.x.y.z works on Linux),
    which is how tests get distinct per-address rate-limit buckets.
    """

    def __init__(
        self, base_url: str, *, local_address: str | None = None, pinned: bool = False, timeout: float = 30.0
    ) -> None:
        super().__init__()
        # pinned: one keep-alive connection for every request, so they all reach the same uvicorn worker.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1) if pinned else httpx.Limits()
        transport = httpx.HTTPTransport(local_address=local_address, limits=limits)
        self.http = httpx.Client(base_url=base_url, transport=transport, cookies=_no_cookie_jar(), timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        csrf: bool = True,
        cookie: str | None = _UNSET,
        headers: Mapping[str, str] | None = None,
        follow: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        response = self.http.request(
            method, path, headers=self.headers(csrf=csrf, cookie=cookie, extra=headers), **kwargs
        )
        return self._observe(response, follow=follow)

    def login(self, username: str, password: str, *, remember: bool | None = None, **kwargs: Any) -> httpx.Response:
        body: dict[str, Any] = {"username": username, "password": password}
        if remember is not None:
            body["remember"] = remember
        return self.request("POST", "/auth/login", json=body, **kwargs)

    def session(self, **kwargs: Any) -> httpx.Response:
        return self.request("GET", "/auth/session", **kwargs)

    def refresh(self, **kwargs: Any) -> httpx.Response:
        return self.request("POST", "/auth/refresh", **kwargs)

    def logout(self, **kwargs: Any) -> httpx.Response:
        return self.request("POST", "/auth/logout", **kwargs)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AuthClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncAuthClient(_CookieState):
    """The asyncio twin of :class:`AuthClient` (for many concurrent requests of one session)."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 100,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__()
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.http = httpx.AsyncClient(
            base_url=base_url, cookies=_no_cookie_jar(), timeout=timeout, limits=limits, transport=transport
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        csrf: bool = True,
        cookie: str | None = _UNSET,
        headers: Mapping[str, str] | None = None,
        follow: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        request_headers = self.headers(csrf=csrf, cookie=cookie, extra=headers)
        response = await self.http.request(method, path, headers=request_headers, **kwargs)
        return self._observe(response, follow=follow)

    async def login(self, username: str, password: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", "/auth/login", json={"username": username, "password": password}, **kwargs)

    async def session(self, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", "/auth/session", **kwargs)

    async def refresh(self, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", "/auth/refresh", **kwargs)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncAuthClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# --- the gateway's database ----------------------------------------------------------------------


class SqliteFile:
    """Reading a gateway's SQLite file directly (a separate connection: sees only committed data)."""

    @property
    def db_path(self) -> Path:
        raise NotImplementedError

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(self.db_path, timeout=10)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def session_row(self, sid: str) -> dict[str, Any] | None:
        db = sqlite3.connect(self.db_path, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            row = db.execute("SELECT * FROM sessions WHERE sid = ?", (sid,)).fetchone()
            return dict(row) if row else None
        finally:
            db.close()


# --- the same app in this process, on a manual clock ---------------------------------------------


@dataclass
class InProcessGateway(SqliteFile):
    """The real app (engine, SQLite file, argon2 users, routes) in this process, on a clock the test moves, driven
    through httpx's ASGI transport. Flows that wait for an expiry, a grace or a window cross it with
    ``clock.advance`` instead of sleeping; one real-server test per flow keeps the real clock honest."""

    app: Gateway
    clock: ManualClock
    workdir: Path

    @property
    def db_path(self) -> Path:
        return self.workdir / "frontdesk.db"

    def client(self, *, address: str = "127.0.0.1", **kwargs: Any) -> AsyncAuthClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return AsyncAuthClient("http://gateway.test", transport=transport, **kwargs)


def plain_authenticator(users: Mapping[str, str]) -> Authenticator:
    """Checks passwords against ``users`` in memory: for flows about sessions, where an argon2id hash per login
    would only cost seconds (the users table and its hashing are tested on their own)."""

    async def authenticate(username: str, password: str) -> User | None:
        expected = users.get(username)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        return User(id=f"id-{username}", username=username)

    return authenticate


@contextlib.asynccontextmanager
async def in_process_gateway(
    workdir: Path, *, users: Mapping[str, str], hashed: bool = False, **tables: Any
) -> AsyncIterator[InProcessGateway]:
    """Started (lifespan) with :func:`write_config`'s test config and ``tables``; the clock starts at the
    current time. ``users`` log in through :func:`plain_authenticator`, or through the real users table with
    argon2id hashes when ``hashed``."""
    config = load_config(write_config(workdir / "config.toml", **tables), env=make_secrets())
    clock = ManualClock(time.time())
    app = create_app(config, clock=clock, authenticator=None if hashed else plain_authenticator(users))
    await app.startup()
    try:
        if hashed:
            assert app.users is not None, "the built-in users table"
            for username, password in users.items():
                await app.users.add(username, password)
        yield InProcessGateway(app, clock, workdir)
    finally:
        await app.shutdown()


# --- the server process --------------------------------------------------------------------------


@dataclass
class GatewayProcess(SqliteFile):
    """``frontdesk serve`` on a free port, in its own process group, with its own temp dir."""

    workdir: Path
    config_path: Path
    env: dict[str, str]
    workers: int = 1
    log_level: str = "warning"  # frontdesk serve --log-level
    port: int = field(default_factory=free_port)
    server: ServerProcess | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.workdir / "frontdesk.db"

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.server.proc if self.server else None

    @property
    def log_path(self) -> Path:
        """The log of the latest start."""
        return self.workdir / f"server-{self.starts}.log"

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("server-*.log")))

    # lifecycle

    def start(self, *, wait: bool = True) -> GatewayProcess:
        assert not self.running, "already running"
        self.starts += 1
        args = [
            sys.executable, "-m", "frontdesk.gateway.cli", "serve", "--config", str(self.config_path),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
            "--log-level", self.log_level,
        ]  # fmt: skip
        self.server = ServerProcess(args, self.log_path, cwd=self.workdir, env=self.env, name="gateway").start()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until ``/healthz`` answers 200; fail with the server log if the process dies or never answers."""
        assert self.server is not None
        self.server.wait_answers(f"{self.url}/healthz", status=200, timeout=timeout)

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.running

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), escalating to SIGKILL if it hangs; every worker reaped."""
        if self.server is not None:
            self.server.stop()

    def kill(self) -> None:
        """``kill -9`` of the whole process group: no shutdown hooks, no flush, nothing."""
        if self.server is not None:
            self.server.kill()

    def restart(self, *, hard: bool = False) -> None:
        self.kill() if hard else self.stop()
        self.start()

    # looking inside

    def client(self, **kwargs: Any) -> AuthClient:
        return AuthClient(self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncAuthClient:
        return AsyncAuthClient(self.url, **kwargs)

    def add_user(self, username: str, password: str) -> None:
        """Add a user to the server's users table in-process (real argon2id); the CLI is tested on its own."""
        config = load_config(self.config_path, env=self.env, require_secrets=False)

        async def add() -> None:
            directory = users_for(config)
            await directory.open()
            try:
                await directory.add(username, password)
            finally:
                await directory.close()

        run_in_thread(lambda: asyncio.run(add()))

    def worker_pids(self) -> list[int]:
        """The processes serving requests: the uvicorn workers, or the server itself with one worker."""
        assert self.proc is not None
        if self.workers == 1:
            return [self.proc.pid]
        children = [pid for pid in group_members(self.proc.pid) if _parent(pid) == self.proc.pid]
        # uvicorn spawns its workers with multiprocessing; skip multiprocessing's resource tracker.
        workers = [pid for pid in children if "spawn_main" in _cmdline(pid)]
        return sorted(workers or children)

    def worker_of(self, response: httpx.Response) -> int | None:
        """The worker pid that answered ``response`` (its connection must still be open)."""
        return self.serving_pid(local_port(response))

    def clients_per_worker(self, per_worker: int = 1, *, timeout: float = 30.0) -> dict[int, list[AuthClient]]:
        """``per_worker`` pinned clients (one keep-alive connection each) for every uvicorn worker, found by
        opening fresh connections until each worker has accepted enough of them; extras are closed. Every
        kept connection has just answered, so none is near uvicorn's keep-alive timeout (5 s)."""
        wait_until(lambda: len(self.worker_pids()) == self.workers, timeout=timeout, what="every worker to spawn")
        pids = self.worker_pids()
        kept: list[AuthClient] = []
        deadline = time.monotonic() + timeout
        while True:
            # Touch every kept connection; one that was closed meanwhile may re-open to another worker.
            found: dict[int, list[AuthClient]] = {pid: [] for pid in pids}
            for client in kept:
                pid = self.worker_of(client.request("GET", "/healthz", csrf=False))
                if pid in found and len(found[pid]) < per_worker:
                    found[pid].append(client)
                else:
                    client.close()
            kept = [c for cs in found.values() for c in cs]
            if all(len(v) == per_worker for v in found.values()):
                return found
            if time.monotonic() > deadline:
                for c in kept:
                    c.close()
                pytest.fail(f"could not reach every worker: { {k: len(v) for k, v in found.items()} }")
            while True:
                client = AuthClient(self.url, pinned=True)
                pid = self.worker_of(client.request("GET", "/healthz", csrf=False))
                if pid in found and len(found[pid]) < per_worker:
                    found[pid].append(client)
                    kept.append(client)
                else:
                    client.close()
                if all(len(v) == per_worker for v in found.values()) or time.monotonic() > deadline:
                    break

    def serving_pid(self, local_port: int) -> int | None:
        """Which worker holds the server end of the connection from our ``local_port`` (Linux /proc)."""
        inode = _server_socket_inode(self.port, local_port)
        if inode is None:
            return None
        target = f"socket:[{inode}]"
        for pid in self.worker_pids():
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    try:
                        if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                            return pid
                    except OSError:
                        continue
            except OSError:
                continue
        return None


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _server_socket_inode(server_port: int, client_port: int) -> int | None:
    """The inode of the server-side TCP socket ``127.0.0.1:server_port <- :client_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            remote_port = int(parts[2].rsplit(":", 1)[1], 16)
            if local_port == server_port and remote_port == client_port and parts[9] != "0":
                return int(parts[9])
    return None
