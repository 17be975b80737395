"""``ProxyApp``: the pure-ASGI front of the proxy. Routes, refuses, grants a token, forwards, streams back.

Everything per request is a lookup against objects built once in ``__init__``; all refusals are JSON
(``responses.send_error``). The order of checks is cheapest-first and nothing reaches an upstream before
path, method, framing, size, CSRF and session have all passed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from frontdesk.middleware.admission import session_grant
from frontdesk.middleware.csrf import check_request
from frontdesk.middleware.errors import FrontdeskError
from frontdesk.middleware.no_store import decorate_raw
from frontdesk.middleware.session_watch import STREAM_WATCH_DELAY, SessionWatch, Watching

from .body import ClientGone, RequestBody
from .contracts import GrantLike, TokenSource, TrustPolicy
from .errors import (
    BadFraming,
    BadPath,
    BrowserGone,
    HeadersTooLarge,
    MethodNotAllowed,
    PayloadTooLarge,
    ServerStopping,
    SessionEnded,
    UpstreamError,
)
from .exchange import open_exchange, watch_disconnect
from .headers import (
    filter_response_headers,
    render_request_head,
    replace_cookie,
    scan_request_headers,
)
from .origins import OriginPolicy
from .paths import resolve_route, upstream_target
from .pool import UpstreamPool
from .responses import send_error
from .routes import Route, RouteTable
from .settings import ProxySettings
from .upstream import UpstreamConnection
from .websocket import WebSocketDeps, proxy_websocket, refuse_websocket

__all__ = ["ProxyApp"]

log = logging.getLogger("frontdesk.proxy")
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_CHUNKED = b"transfer-encoding: chunked\r\n"


def _invalid_token(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"www-authenticate" and b"invalid_token" in value and value[:6].lower() == b"bearer":
            return True
    return False


class ProxyApp:
    def __init__(
        self,
        routes: Sequence[Route],
        engine: TokenSource,
        *,
        settings: ProxySettings,
        trusted: TrustPolicy,
        csrf_header: str = "x-csrf",
        fallback: ASGIApp,
    ) -> None:
        self._table = RouteTable(routes)
        self._engine = engine
        self._settings = settings
        self._trusted = trusted
        self._csrf = csrf_header.lower()
        self._csrf_b = self._csrf.encode("latin-1")
        self._fallback = fallback
        self._pool = UpstreamPool(settings)
        self._sessions = SessionWatch(engine)
        self._cookie_name = engine.cookie_name
        self._cookie_b = engine.cookie_name.encode("latin-1")
        self._public_host = settings.public_host.encode("ascii")
        self._origins = OriginPolicy(trusted, settings.allowed_origins)
        self._websocket = WebSocketDeps(
            engine=engine,
            settings=settings,
            trusted=trusted,
            origins=self._origins,
            sessions=self._sessions,
            tls=self._pool.ssl_context,
        )

    @property
    def pool(self) -> UpstreamPool:
        return self._pool

    def shut_down(self) -> None:
        """The server is stopping: end every event stream cleanly and close every WebSocket with 1001 (both
        would otherwise hold the stop until its timeout); other exchanges in flight are left to finish."""
        self._sessions.shut_down()

    async def aclose(self) -> None:
        await self._sessions.aclose()
        await self._pool.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self._fallback(scope, receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        try:
            route = resolve_route(self._table, raw_path)
        except BadPath as exc:
            if kind == "http":
                await send_error(send, exc)
            else:
                await receive()  # websocket.connect
                await refuse_websocket(send, exc, scope)
            return
        if route is None:
            await self._fallback(scope, receive, send)
        elif kind == "http":
            await self._http(scope, receive, send, route, raw_path)
        else:
            await proxy_websocket(self._websocket, scope, receive, send, route, raw_path)

    # -- HTTP ------------------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send, route: Route, raw_path: bytes) -> None:
        method: str = scope["method"]
        try:
            if method not in route.methods:
                raise MethodNotAllowed(f"{method} is not allowed here", allow=route.allow_header())
            scanned = scan_request_headers(scope["headers"], self._csrf_b)
            if scanned.size > self._settings.max_header_size:
                raise HeadersTooLarge(f"the request headers are larger than {self._settings.max_header_size} bytes")
            limit = route.max_body_size if route.max_body_size is not None else self._settings.max_body_size
            if scanned.length is not None and scanned.length > limit:
                raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
            target = upstream_target(route, raw_path, scope.get("query_string", b""))
            # The admission pipeline's rules (frontdesk.middleware.admission), with this route's decisions made
            # at start-up.
            origins = self._origins.own_origins(scope, scanned) if "origin" in scanned.lookup else frozenset()
            check_request(
                scanned.lookup, websocket=False, csrf_header=self._csrf if route.csrf else None, own_origins=origins
            )
            cookie = scanned.cookie.decode("latin-1") if scanned.cookie is not None else None
            grant = await session_grant(self._engine, cookie, auth=route.auth, audience=route.audience)
        except MethodNotAllowed as exc:
            await send_error(send, exc, extra=[(b"allow", exc.allow.encode("ascii"))])
            return
        except FrontdeskError as exc:
            # Framing we refused leaves the connection in doubt: close it. An unread body after a 413 is
            # fine to leave: uvicorn discards it and the browser gets to read our answer.
            await send_error(send, exc, close=isinstance(exc, BadFraming))
            return

        body = RequestBody(receive, limit) if (scanned.chunked or scanned.length) else None
        framing = _CHUNKED if scanned.chunked else None
        if scanned.length is not None:
            framing = b"content-length: %d\r\n" % scanned.length
        idempotent = method in _IDEMPOTENT
        method_b = method.encode("ascii")
        peer = scope.get("client")
        peer_host = peer[0] if peer else None
        scheme = scope.get("scheme", "http")

        def head_for(g: GrantLike | None) -> bytes:
            return render_request_head(
                scanned,
                method_b,
                target,
                route.upstream.host_header,
                bearer=g.access_token.encode("ascii") if g is not None else None,
                cookie_name=self._cookie_b,
                peer=peer_host,
                scheme=scheme,
                trusted=self._trusted,
                public_host=self._public_host,
                body=framing,
            )

        set_cookie = grant.set_cookie if grant is not None else None
        try:
            conn = await open_exchange(self._pool, route, head_for(grant), body, scanned.chunked, method, idempotent)
            if (
                conn.status == 401
                and grant is not None
                and idempotent
                and (body is None or body.replay is not None)
                and _invalid_token(conn.headers)
            ):
                # The upstream disagrees with our cached token (revoked key, clock skew): mint once, retry once.
                self._discard(conn)
                if grant.set_cookie:
                    cookie = replace_cookie(cookie, grant.set_cookie, self._cookie_name)
                grant = await self._engine.grant(cookie, audience=route.audience, force_new=True)
                set_cookie = grant.set_cookie or set_cookie
                conn = await open_exchange(
                    self._pool, route, head_for(grant), body, scanned.chunked, method, idempotent
                )
        except ClientGone:
            return
        except FrontdeskError as exc:
            # A refresh cookie rotated for this request must reach the browser even when the upstream
            # failed: the one it still holds was just retired, and presenting it again looks like theft.
            extra = [(b"set-cookie", set_cookie.encode("latin-1"))] if set_cookie else None
            await send_error(send, exc, extra=extra)
            return
        await self._respond(conn, receive, send, set_cookie, body, grant.sid if grant is not None else None)

    def _discard(self, conn: UpstreamConnection) -> None:
        if conn.complete:
            self._pool.release(conn)
        else:
            conn.close()

    async def _respond(
        self,
        conn: UpstreamConnection,
        receive: Receive,
        send: Send,
        set_cookie: str | None,
        body: RequestBody | None,
        sid: str | None,
    ) -> None:
        released = False
        watcher: asyncio.Task[None] | None = None
        watching: Watching | None = None
        try:
            headers, _ = filter_response_headers(conn.headers, self._cookie_b)
            cookie = set_cookie.encode("latin-1") if set_cookie else None
            headers = decorate_raw(headers, cookie, authenticated=sid is not None, lower_case=True)  # as session mode's
            await send({"type": "http.response.start", "status": conn.status, "headers": headers})
            if conn.complete:  # the common case: the whole response arrived with its head
                data = await conn.read_body()
                self._pool.release(conn)
                released = True
                await send({"type": "http.response.body", "body": data or b""})
                return
            # A stream: watch for the browser leaving, or an endless SSE stream would be read for nobody.
            watcher = asyncio.ensure_future(watch_disconnect(receive, conn, body, conn.uses))
            event_stream = _event_stream(headers)
            if sid is not None or event_stream:
                # ... for its session ending (logout, password change): the stream must not outlive it; and, for
                # an event stream, which never ends on its own, for the server stopping.
                stopping = ServerStopping("the gateway is stopping")
                watching = self._sessions.watch(
                    sid,
                    _cut(conn, conn.uses, SessionEnded("the session of this stream ended")),
                    delay=STREAM_WATCH_DELAY,
                    on_shutdown=_cut(conn, conn.uses, stopping) if event_stream else None,
                )
            while True:
                try:
                    chunk = await conn.read_body()
                except UpstreamError as exc:
                    # Too late for a JSON error: returning without finishing makes uvicorn close the browser
                    # connection, so a truncated body can never pass for a complete one.
                    if isinstance(exc, SessionEnded | ServerStopping) and event_stream:
                        # An event stream has no "complete": end it cleanly, so the browser's EventSource
                        # reconnects (meets the 401, or another gateway), without a network error logged.
                        await send({"type": "http.response.body", "body": b""})
                    elif not isinstance(exc, BrowserGone | SessionEnded | ServerStopping):
                        log.warning("upstream failed mid-response: %s", exc.detail)
                    return
                if chunk is None:
                    self._pool.release(conn)
                    released = True
                    await send({"type": "http.response.body", "body": b""})
                    return
                if conn.complete and conn.drained:  # the last piece: one send instead of two
                    self._pool.release(conn)
                    released = True
                    await send({"type": "http.response.body", "body": chunk})
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            if watcher is not None:
                watcher.cancel()
            if watching is not None:
                watching.close()
            if not released:
                conn.close()


def _event_stream(headers: list[tuple[bytes, bytes]]) -> bool:
    """A server-sent-events response without a declared length (a clean end cannot truncate it)."""
    sse = False
    for name, value in headers:
        if name.lower() == b"content-length":
            return False
        if name.lower() == b"content-type" and value.lower().startswith(b"text/event-stream"):
            sse = True
    return sse


def _cut(conn: UpstreamConnection, uses: int, why: UpstreamError) -> Callable[[], None]:
    """Abort the upstream exchange on ``conn`` with ``why`` (its session ended, the server is stopping); the
    response loop then ends the browser's side (cleanly for an event stream, mid-body for anything else)."""

    def cut() -> None:
        if conn.uses == uses and not conn.complete:  # still this exchange (not pooled and reused since)
            conn.abort(why)

    return cut
