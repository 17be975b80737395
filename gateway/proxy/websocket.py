"""WebSocket routes: origin-checked upgrade, Bearer token upstream, closed when the session ends.

A WebSocket cannot carry the X-CSRF header, so the upgrade must come with our own ``Origin`` (browsers
always send one). The upstream side uses the ``websockets`` client: WebSocket traffic is long-lived and
message-framed, so the lean HTTP client's per-request savings would buy nothing here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from middleware.csrf import check_same_origin
from middleware.errors import FrontdeskError, NotAuthenticated

from .contracts import GrantLike
from .errors import BadFraming, HeadersTooLarge, UpstreamTimeout, UpstreamUnavailable, WebSocketRefused
from .headers import render_request_head, scan_request_headers
from .paths import upstream_target
from .responses import error_body
from .routes import Route

if TYPE_CHECKING:
    from .app import ProxyApp

__all__ = ["proxy_websocket", "refuse_websocket", "SESSION_POLL_INTERVAL", "SESSION_ENDED"]

SESSION_POLL_INTERVAL = 0.5
SESSION_ENDED = 1008  # policy violation: the session behind this socket was logged out or revoked
_MAX_MESSAGE = 16 * 1024 * 1024  # uvicorn's default ws_max_size, so both sides agree


async def refuse_websocket(
    send: Send, exc: FrontdeskError, scope: Scope | None = None, set_cookie: str | None = None
) -> None:
    """Refuse an upgrade with a JSON answer when the server supports it, else a plain 403."""
    extensions = (scope or {}).get("extensions") or {}
    if "websocket.http.response" in extensions:
        body = error_body(exc)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        if set_cookie:  # a refresh cookie rotated for this upgrade must still reach the browser
            headers.append((b"set-cookie", set_cookie.encode("latin-1")))
        await send({"type": "websocket.http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


def _upstream_headers(head: bytes) -> list[tuple[str, str]]:
    """The rendered HTTP head (same hygiene as plain requests) as a header list for the websockets client."""
    out: list[tuple[str, str]] = []
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b": ")
        if not sep or name == b"host" or name.startswith(b"sec-websocket-") or name == b"origin":
            continue
        out.append((name.decode("latin-1"), value.decode("latin-1")))
    return out


async def proxy_websocket(
    app: ProxyApp, scope: Scope, receive: Receive, send: Send, route: Route, raw_path: bytes
) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    engine = app.engine
    grant: GrantLike | None = None
    try:
        if not route.websocket:
            raise WebSocketRefused("this route does not accept WebSockets")
        scanned = scan_request_headers(scope["headers"], b"")
        if scanned.size > app.settings.max_header_size:
            raise HeadersTooLarge("the request headers are too large")
        origin = scanned.lookup.get("origin")
        if origin is None:
            raise WebSocketRefused("a WebSocket upgrade must carry an Origin header")
        check_same_origin(scanned.lookup, own_origins=app.own_origins(scope, scanned))
        target = upstream_target(route, raw_path, scope.get("query_string", b""))
        if route.auth != "none":
            cookie = scanned.cookie.decode("latin-1") if scanned.cookie is not None else None
            try:
                grant = await engine.grant(cookie, audience=route.audience)
            except NotAuthenticated:
                if route.auth == "required":
                    raise
        peer = scope.get("client")
        head = render_request_head(
            scanned,
            b"GET",
            target,
            route.upstream.host_header,
            bearer=grant.access_token.encode("ascii") if grant is not None else None,
            cookie_name=engine.cookie_name.encode("latin-1"),
            peer=peer[0] if peer else None,
            scheme=scope.get("scheme", "ws").replace("ws", "http"),
            trusted=app.trusted,
            public_host=app.settings.public_host.encode("ascii"),
        )
        ws_scheme = "wss" if route.upstream.scheme == "https" else "ws"
        uri = f"{ws_scheme}://{route.upstream.host_header.decode('ascii')}{target.decode('ascii')}"
        subprotocols: list[Any] = [p.strip() for p in scope.get("subprotocols", []) if p.strip()]
        try:
            upstream = await connect(
                uri,
                additional_headers=_upstream_headers(head),
                subprotocols=subprotocols or None,
                origin=None,
                compression=None,
                user_agent_header=None,
                proxy=None,
                open_timeout=route.timeout,
                close_timeout=2,  # a silent upstream must not hold a finished socket for long
                max_size=_MAX_MESSAGE,
                ssl=app.pool.ssl_context() if ws_scheme == "wss" else None,
            )
        except InvalidStatus as exc:
            raise UpstreamUnavailable(f"the upstream refused the WebSocket ({exc.response.status_code})") from None
        except TimeoutError:
            raise UpstreamTimeout(f"the upstream did not answer within {route.timeout:g} s") from None
        except (OSError, InvalidHandshake) as exc:
            raise UpstreamUnavailable(f"could not open the upstream WebSocket ({type(exc).__name__})") from None
    except BadFraming:
        await refuse_websocket(send, WebSocketRefused("bad upgrade request"), scope)
        return
    except FrontdeskError as exc:
        await refuse_websocket(send, exc, scope, grant.set_cookie if grant is not None else None)
        return

    accept: dict[str, Any] = {"type": "websocket.accept", "subprotocol": upstream.subprotocol}
    if grant is not None and grant.set_cookie:
        accept["headers"] = [(b"set-cookie", grant.set_cookie.encode("latin-1"))]
    try:
        await send(accept)
        await _pump(upstream, receive, send, app, grant.sid if grant is not None else None)
    finally:
        with contextlib.suppress(Exception):
            await upstream.close()  # a no-op when _pump already closed it


async def _pump(upstream: ClientConnection, receive: Receive, send: Send, app: ProxyApp, sid: str | None) -> None:
    client_closed = False

    async def from_client() -> None:
        nonlocal client_closed
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                client_closed = True
                return
            if message["type"] == "websocket.receive":
                text = message.get("text")
                await upstream.send(text if text is not None else message.get("bytes") or b"")

    async def from_upstream() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for data in upstream:
                key = "text" if isinstance(data, str) else "bytes"
                await send({"type": "websocket.send", key: data})

    async def watch_session() -> None:
        if sid is None:
            await asyncio.Event().wait()  # nothing to watch: an anonymous socket
        assert sid is not None
        # Polling is the engine's contract (it honours other workers within a second); there is no event.
        while True:
            if not await app.engine.is_active(sid):
                return
            await asyncio.sleep(SESSION_POLL_INTERVAL)

    tasks = {
        asyncio.ensure_future(from_client()): "client",
        asyncio.ensure_future(from_upstream()): "upstream",
        asyncio.ensure_future(watch_session()): "session",
    }
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        first = tasks[next(iter(done))]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if first == "session":
        code, reason = SESSION_ENDED, "session ended"
    elif first == "upstream":
        code, reason = upstream.close_code or 1000, upstream.close_reason or ""
    else:
        code, reason = 1000, ""
    with contextlib.suppress(Exception):
        await upstream.close(code=code if first != "client" else 1000, reason=reason)
    if not client_closed:
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code, "reason": reason})
