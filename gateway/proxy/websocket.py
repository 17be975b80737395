"""WebSocket routes: origin-checked upgrade, Bearer token upstream, closed when the session ends, capped per
session and per message.

A WebSocket cannot carry the X-CSRF header, so the upgrade must come with our own ``Origin`` (browsers
always send one). The upstream side uses the ``websockets`` client: WebSocket traffic is long-lived and
message-framed, so the lean HTTP client's per-request savings would buy nothing here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from frontdesk.middleware.admission import session_grant
from frontdesk.middleware.asgi_io import send_refusal
from frontdesk.middleware.csrf import check_request
from frontdesk.middleware.errors import FrontdeskError
from frontdesk.middleware.http import error_response
from frontdesk.middleware.no_store import decorate_accept
from frontdesk.middleware.session_watch import SessionWatch, Watching

from .contracts import NO_METER, NO_REQUEST_ID, GrantLike, ProxyMeter, RequestIdSource, TokenSource, TrustPolicy
from .errors import BadFraming, HeadersTooLarge, UpstreamTimeout, UpstreamUnavailable, WebSocketRefused
from .headers import render_request_head, scan_request_headers
from .origins import OriginPolicy
from .paths import upstream_target
from .routes import Route
from .settings import ProxySettings

__all__ = ["WebSocketDeps", "proxy_websocket", "refuse_websocket", "GOING_AWAY", "SESSION_ENDED", "MESSAGE_TOO_BIG"]

GOING_AWAY = 1001  # the gateway is shutting down: both sides are told, and a client may reconnect elsewhere
SESSION_ENDED = 1008  # policy violation: the session behind this socket was logged out or revoked
MESSAGE_TOO_BIG = 1009  # a message above proxy.max_websocket_message_size, in either direction


@dataclass(frozen=True, slots=True)
class WebSocketDeps:
    """What a proxied WebSocket needs from the proxy around it (built once by ``ProxyApp``), and no more."""

    engine: TokenSource
    settings: ProxySettings
    trusted: TrustPolicy
    origins: OriginPolicy
    sessions: SessionWatch  # counts open sockets per session and closes them when it ends
    tls: Callable[[], ssl.SSLContext]  # the pool's context: wss upstreams trust what https ones do
    meter: ProxyMeter = NO_METER  # told when the upstream cannot be reached
    request_id: RequestIdSource = NO_REQUEST_ID  # the id written upstream as X-Request-ID


async def refuse_websocket(
    send: Send, exc: FrontdeskError, scope: Scope | None = None, set_cookie: str | None = None
) -> None:
    """Refuse an upgrade with the JSON error answer when the server supports it, else a plain 403."""
    headers = [("cache-control", "no-store")]
    if set_cookie:  # a refresh cookie rotated for this upgrade must still reach the browser
        headers.append(("set-cookie", set_cookie))
    await send_refusal(scope or {"type": "websocket"}, send, error_response(exc, headers))


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
    deps: WebSocketDeps, scope: Scope, receive: Receive, send: Send, route: Route, raw_path: bytes
) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    ended = asyncio.Event()  # set by the session watch when the session behind this socket ends
    stopping = asyncio.Event()  # ... and this one when the server starts to stop
    watching: Watching | None = None
    try:
        grant, upstream, watching = await _open(deps, scope, route, raw_path, ended, stopping)
    except BadFraming:
        await refuse_websocket(send, WebSocketRefused("bad upgrade request"), scope)
        return
    except _Refused as refused:
        deps.meter.failed(route, refused.error)
        await refuse_websocket(send, refused.error, scope, refused.set_cookie)
        return

    set_cookie = grant.set_cookie.encode("latin-1") if grant is not None and grant.set_cookie else None
    accept = decorate_accept({"type": "websocket.accept", "subprotocol": upstream.subprotocol}, set_cookie)
    try:
        await send(accept)
        await _pump(upstream, receive, send, ended, stopping, deps.settings.max_websocket_message_size)
    finally:
        if watching is not None:
            watching.close()
        with contextlib.suppress(Exception):
            await upstream.close()  # a no-op when _pump already closed it


class _Refused(Exception):
    """An upgrade refused with ``error``; ``set_cookie`` is a refresh cookie rotated meanwhile, still owed."""

    def __init__(self, error: FrontdeskError, set_cookie: str | None) -> None:
        self.error = error
        self.set_cookie = set_cookie


async def _open(
    deps: WebSocketDeps, scope: Scope, route: Route, raw_path: bytes, ended: asyncio.Event, stopping: asyncio.Event
) -> tuple[GrantLike | None, ClientConnection, Watching | None]:
    """Check the upgrade, count it against its session's cap and connect upstream; raises :class:`_Refused`."""
    engine = deps.engine
    settings = deps.settings
    grant: GrantLike | None = None
    watching: Watching | None = None
    try:
        if not route.websocket:
            raise WebSocketRefused("this route does not accept WebSockets")
        scanned = scan_request_headers(scope["headers"], b"")
        if scanned.size > settings.max_header_size:
            raise HeadersTooLarge("the request headers are too large")
        # The admission pipeline's rules (middleware.admission), as for plain requests and session mode.
        own = deps.origins.own_origins(scope, scanned) if "origin" in scanned.lookup else frozenset()
        check_request(scanned.lookup, websocket=True, csrf_header=None, own_origins=own)
        target = upstream_target(route, raw_path, scope.get("query_string", b""))
        cookie = scanned.cookie.decode("latin-1") if scanned.cookie is not None else None
        grant = await session_grant(engine, cookie, auth=route.auth, audience=route.audience)
        if grant is not None:
            cap = settings.max_websockets_per_session
            if deps.sessions.open_sockets(grant.sid) >= cap:
                raise WebSocketRefused(
                    f"this session already has {cap} open WebSockets (the limit is proxy.max_websockets_per_session)"
                )
        # Counted from here on (before the upstream connect awaits), so concurrent upgrades cannot all pass; a
        # socket without a session is watched too, for the server stopping.
        watching = deps.sessions.watch(
            grant.sid if grant is not None else None, ended.set, socket=True, on_shutdown=stopping.set
        )
        peer = scope.get("client")
        rid = deps.request_id()
        head = render_request_head(
            scanned,
            b"GET",
            target,
            route.upstream.host_header,
            bearer=grant.access_token.encode("ascii") if grant is not None else None,
            cookie_name=engine.cookie_name.encode("latin-1"),
            peer=peer[0] if peer else None,
            scheme=scope.get("scheme", "ws").replace("ws", "http"),
            trusted=deps.trusted,
            public_host=settings.public_host.encode("ascii"),
            request_id=rid.encode("ascii") if rid is not None else None,
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
                max_size=settings.max_websocket_message_size,
                ssl=deps.tls() if ws_scheme == "wss" else None,
            )
        except InvalidStatus as exc:
            raise UpstreamUnavailable(f"the upstream refused the WebSocket ({exc.response.status_code})") from None
        except TimeoutError:
            raise UpstreamTimeout(f"the upstream did not answer within {route.timeout:g} s") from None
        except (OSError, InvalidHandshake) as exc:
            raise UpstreamUnavailable(f"could not open the upstream WebSocket ({type(exc).__name__})") from None
    except BaseException as exc:
        if watching is not None:
            watching.close()
        if isinstance(exc, FrontdeskError) and not isinstance(exc, BadFraming):
            raise _Refused(exc, grant.set_cookie if grant is not None else None) from None
        raise
    return grant, upstream, watching


def _too_big(message: Message, limit: int) -> bool:
    text = message.get("text")
    if text is not None:
        # A str of n characters is n to 4n bytes of UTF-8: encode only when the length alone cannot decide.
        return len(text) > limit or (len(text) * 4 > limit and len(text.encode("utf-8")) > limit)
    return len(message.get("bytes") or b"") > limit


async def _pump(
    upstream: ClientConnection,
    receive: Receive,
    send: Send,
    ended: asyncio.Event,
    stopping: asyncio.Event,
    limit: int,
) -> None:
    client_closed = False
    too_big = False

    async def from_client() -> None:
        nonlocal client_closed, too_big
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                client_closed = True
                return
            if message["type"] == "websocket.receive":
                if _too_big(message, limit):
                    too_big = True
                    return
                text = message.get("text")
                await upstream.send(text if text is not None else message.get("bytes") or b"")

    async def from_upstream() -> None:
        nonlocal too_big
        try:
            async for data in upstream:
                key = "text" if isinstance(data, str) else "bytes"
                await send({"type": "websocket.send", key: data})
        except ConnectionClosed as exc:
            # websockets closed it for us with 1009 when the upstream's message was over max_size
            too_big = exc.sent is not None and exc.sent.code == MESSAGE_TOO_BIG

    tasks = {
        asyncio.ensure_future(from_client()): "client",
        asyncio.ensure_future(from_upstream()): "upstream",
        asyncio.ensure_future(ended.wait()): "session",
        asyncio.ensure_future(stopping.wait()): "shutdown",
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
    elif first == "shutdown":
        code, reason = GOING_AWAY, "the server is shutting down"
    elif too_big:
        code, reason = MESSAGE_TOO_BIG, "message too big"
    elif first == "upstream":
        code, reason = upstream.close_code or 1000, upstream.close_reason or ""
    else:
        code, reason = 1000, ""
    with contextlib.suppress(Exception):
        await upstream.close(code=code if first != "client" or too_big else 1000, reason=reason)
    if not client_closed:
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code, "reason": reason})
