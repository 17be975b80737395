"""Real parts for the proxy tests: uvicorn servers on free ports, a recording upstream, a fake token source."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import jwt

from frontdesk.middleware.errors import NotAuthenticated, SessionRevoked
from tests.support import LiveServer, free_port

if TYPE_CHECKING:
    from frontdesk.gateway.proxy import ProxyApp

COOKIE = "__Host-frontdesk"
SECRET = "test-refresh-secret-that-is-long-enough-for-hs256"


class Servers:
    """Several uvicorn servers in this event loop (``tests.support.LiveServer``), stopped together."""

    def __init__(self) -> None:
        self._running: list[LiveServer] = []

    async def start(self, app: Any, **options: Any) -> int:
        """Serve ``app`` (``options``: ``uvicorn.Config`` keywords); returns the port."""
        server = await LiveServer(app, **options).start()
        self._running.append(server)
        return server.port

    async def stop(self) -> None:
        await asyncio.gather(*(server.stop() for server in self._running))
        self._running.clear()


# -- the fake token source --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FakeGrant:
    user_id: str
    username: str
    sid: str
    access_token: str
    access_expires_at: float
    set_cookie: str | None
    expires_at: float
    idle_expires_at: float


def refresh_cookie(sub: str, sid: str, gen: int = 0) -> str:
    token = jwt.encode({"sub": sub, "sid": sid, "gen": gen}, SECRET, algorithm="HS256")
    return f"{COOKIE}={token}"


class FakeEngine:
    """Verifies a refresh JWT from the cookie with pyjwt and hands out a cached bearer per session."""

    cookie_name = COOKIE

    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.tokens: dict[str, str] = {}
        self.minted = 0
        self.calls: list[dict[str, Any]] = []
        self.rotate_next = False  # the next grant rotates the refresh cookie
        self.stale_first = False  # the first token minted per session is one the upstream rejects
        self.liveness_checks = 0  # is_active calls (the session watch's polls)
        self._remembered: dict[tuple[str | None, str | None], FakeGrant] = {}

    async def grant(
        self, cookie_header: str | None, *, audience: str | None = None, force_new: bool = False
    ) -> FakeGrant:
        self.calls.append({"cookie": cookie_header, "audience": audience, "force_new": force_new})
        value = None
        for part in (cookie_header or "").split(";"):
            name, _, v = part.strip().partition("=")
            if name == COOKIE:
                value = v
        if value is None:
            raise NotAuthenticated("no session")
        try:
            claims = jwt.decode(value, SECRET, algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            raise NotAuthenticated("session cookie rejected") from exc
        sid, sub = claims["sid"], claims["sub"]
        if sid in self.revoked:
            raise SessionRevoked("session revoked")
        if force_new or sid not in self.tokens:
            self.minted += 1
            stale = self.stale_first and sid not in self.tokens
            self.tokens[sid] = f"{'stale' if stale else 'at'}.{sub}.{sid}.{audience}.{self.minted}"
        set_cookie = None
        if self.rotate_next:
            self.rotate_next = False
            set_cookie = refresh_cookie(sub, sid, claims["gen"] + 1) + "; Path=/; HttpOnly; Secure; SameSite=Strict"
        now = time.time()
        grant = FakeGrant(sub, sub, sid, self.tokens[sid], now + 60, set_cookie, now + 3600, now + 600)
        if set_cookie is None and not force_new:
            self._remembered[(cookie_header, audience)] = grant
        return grant

    def remembered(self, cookie_header: str | None, *, audience: str | None = None) -> FakeGrant | None:
        """A grant handed out before for this very cookie, while its token is still the session's (as the real
        engine's memo): the proxy's express lane answers without a task then."""
        grant = self._remembered.get((cookie_header, audience))
        if grant is None or grant.sid in self.revoked or self.tokens.get(grant.sid) != grant.access_token:
            return None
        if self.rotate_next or self.stale_first:
            return None  # the tests of those ask grant() every time
        self.calls.append({"cookie": cookie_header, "audience": audience, "force_new": False})
        return grant

    async def is_active(self, sid: str) -> bool:
        self.liveness_checks += 1
        return sid not in self.revoked


class Trust:
    def __init__(self, *hosts: str) -> None:
        self.hosts = set(hosts)

    def is_trusted(self, host: str | None) -> bool:
        return host in self.hosts


# -- the recording upstream ---------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    target: str  # raw path + query, as received
    headers: list[tuple[str, str]]
    client_port: int
    body_len: int = 0

    def header(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]


@dataclass
class Upstream:
    """A raw ASGI upstream that records every request it receives."""

    seen: list[Seen] = field(default_factory=list)
    sse_release: asyncio.Event = field(default_factory=asyncio.Event)
    sse_disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    ws_closed: asyncio.Event = field(default_factory=asyncio.Event)
    rejected: str | None = None

    async def __call__(self, scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        raw = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
        seen = Seen(
            scope["method"],
            raw.decode("latin-1"),
            [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]],
            scope["client"][1],
        )
        self.seen.append(seen)
        path = scope["path"]
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
        if path == "/api/upload" or path.startswith("/up/"):
            digest = hashlib.sha256()
            while True:
                msg = await receive()
                digest.update(msg.get("body", b""))
                seen.body_len += len(msg.get("body", b""))
                if not msg.get("more_body"):
                    break
            await _json(send, 200, {"length": seen.body_len, "sha256": digest.hexdigest()})
        elif path == "/api/big":
            size, chunk = int(query.get("n", "0")), b"x" * 65536
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"app/x")]})
            sent = 0
            while sent < size:
                part = chunk[: min(len(chunk), size - sent)]
                sent += len(part)
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/api/sse":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
            )
            await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
            waiter = asyncio.ensure_future(self.sse_release.wait())
            gone = asyncio.ensure_future(_until_disconnect(receive))
            done, _ = await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            gone.cancel()
            if gone in done:
                self.sse_disconnected.set()
                return
            await send({"type": "http.response.body", "body": b"data: last\n\n"})
        elif path == "/api/slow":
            await asyncio.sleep(float(query.get("s", "5")))
            await _json(send, 200, {"slept": True})
        elif path == "/api/reset":
            headers = [(b"content-length", b"1000000")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"y" * 1000, "more_body": True})
            raise RuntimeError("upstream crashes mid-response (expected in this test)")
        elif path == "/api/cookies":
            auth = seen.header("authorization")
            who = auth[0].split(".")[1] if auth else "anon"
            headers = [
                (b"set-cookie", f"upstream_user={who}; Path=/".encode()),
                (b"set-cookie", f"{COOKIE}=hijack; Path=/".encode()),
                (b"set-cookie", f"={COOKIE}=nameless; Path=/".encode()),  # sent back as "__Host-frontdesk=..."
                (b"set-cookie", f"{COOKIE}; Path=/".encode()),  # no "=": a nameless cookie too
            ]
            await _json(send, 200, {"cookie": seen.header("cookie")}, headers)
        elif path == "/api/hop":
            headers = [
                (b"connection", b"x-hop"),
                (b"x-hop", b"1"),
                (b"keep-alive", b"timeout=99"),
                (b"x-kept", b"yes"),
                (b"server", b"secret-upstream/1.0"),
                (b"cache-control", b"public, max-age=300"),
            ]
            await _json(send, 200, {}, headers)
        elif path == "/api/strict-once":
            # rejects the first token it ever sees (as after a key rotation), accepts any other
            auth = seen.header("authorization")
            if self.rejected is None or (auth and auth[0] == self.rejected):
                self.rejected = auth[0] if auth else ""
                h = [(b"www-authenticate", b'Bearer error="invalid_token"')]
                await _json(send, 401, {"error": "invalid_token"}, h)
            else:
                await _json(send, 200, {"authorization": auth})
        elif path == "/api/strict":
            auth = seen.header("authorization")
            if auth and auth[0].startswith("Bearer stale."):
                h = [(b"www-authenticate", b'Bearer error="invalid_token"')]
                await _json(send, 401, {"error": "invalid_token"}, h)
            else:
                await _json(send, 200, {"authorization": auth})
        else:
            body = b""
            if scope["method"] not in ("GET", "HEAD"):
                while True:
                    msg = await receive()
                    body += msg.get("body", b"")
                    if not msg.get("more_body"):
                        break
            seen.body_len = len(body)
            await _json(send, 200, {"method": scope["method"], "target": seen.target, "body": body.decode()})

    async def _websocket(self, scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        self.seen.append(
            Seen(
                "WS",
                scope["raw_path"].decode(),
                [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]],
                scope["client"][1],
            )
        )
        await receive()
        await send({"type": "websocket.accept", "subprotocol": (scope.get("subprotocols") or [None])[0]})
        try:
            while True:
                msg = await receive()
                if msg["type"] == "websocket.disconnect":
                    return
                if msg.get("text") is not None:
                    await send({"type": "websocket.send", "text": "echo:" + msg["text"]})
                else:
                    await send({"type": "websocket.send", "bytes": msg["bytes"]})
        finally:
            self.ws_closed.set()


async def _until_disconnect(receive: Callable[..., Any]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _json(send: Any, status: int, data: Any, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


async def spa(scope: Any, receive: Any, send: Any) -> None:
    """The fallback: stands in for the static SPA."""
    if scope["type"] != "http":
        return
    await _json(send, 200, {"spa": scope["path"]})


async def raw_request(port: int, data: bytes, *, read_timeout: float = 5.0) -> bytes:
    """Send raw bytes, return everything the server sends until it closes (or goes quiet)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    out = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), read_timeout)
            if not chunk:
                break
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    finally:
        writer.close()
    return out


@dataclass
class Gateway:
    port: int
    app: ProxyApp
    engine: FakeEngine
    upstream: Upstream
    upstream_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, user: str | None = "alice", sid: str | None = None, **kw: Any) -> httpx.AsyncClient:
        cookies = {}
        headers = {"x-csrf": "1"}
        if user is not None:
            name, _, value = refresh_cookie(user, sid or f"sid-{user}").partition("=")
            headers["cookie"] = f"theme=dark; {name}={value}; lang=en"
        headers.update(kw.pop("headers", {}))
        return httpx.AsyncClient(base_url=self.url, headers=headers, cookies=cookies, timeout=30, **kw)


def route_config(up: int) -> list[dict[str, Any]]:
    base = f"http://127.0.0.1:{up}"
    return [
        {"prefix": "/api/", "upstream": base, "audience": "orders-api"},
        {"prefix": "/open/", "upstream": f"{base}/api/", "auth": "none", "csrf": False},
        {"prefix": "/opt/", "upstream": f"{base}/api/", "auth": "optional", "csrf": False},
        {"prefix": "/slowapi/", "upstream": f"{base}/api/", "timeout": "300ms"},
        {"prefix": "/ws/", "upstream": f"{base}/api/", "websocket": True},
        {"prefix": "/dead/", "upstream": f"http://127.0.0.1:{free_port()}/"},
        {"prefix": "/bigup/", "upstream": f"{base}/up/", "max_body_size": "1GiB", "methods": ["POST", "PUT"]},
        {"prefix": "/ro/", "upstream": f"{base}/api/", "methods": ["GET"]},
    ]
