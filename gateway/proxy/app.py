"""``ProxyApp``: the pure-ASGI front of the proxy. Routes, refuses, grants a token, forwards, streams back.

Everything shared is built once in ``__init__``; each HTTP request gets its own :class:`HttpCycle`
(``cycle.py``), each WebSocket its ``proxy_websocket`` call. All refusals are JSON (``responses.send_error``).
The order of checks is cheapest-first and nothing reaches an upstream before path, method, framing, size,
CSRF and session have all passed.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from frontdesk.middleware.session_watch import SessionWatch

from .client_side import AsgiClient, ClientSide
from .contracts import NO_METER, NO_REQUEST_ID, ProxyMeter, RequestIdSource, TokenSource, TrustPolicy
from .cycle import HttpCycle, HttpDeps
from .errors import BadPath
from .fast import FastPath
from .origins import OriginPolicy
from .paths import resolve_route
from .pool import UpstreamPool
from .responses import send_error
from .routes import Route, RouteTable
from .settings import ProxySettings
from .websocket import WebSocketDeps, proxy_websocket, refuse_websocket

__all__ = ["ProxyApp"]


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
        meter: ProxyMeter = NO_METER,
        request_id: RequestIdSource = NO_REQUEST_ID,
    ) -> None:
        self._table = RouteTable(routes)
        self._fallback = fallback
        self._pool = UpstreamPool(settings)
        self._sessions = SessionWatch(engine)
        origins = OriginPolicy(trusted, settings.allowed_origins)
        self._http = HttpDeps.build(
            engine,
            settings=settings,
            trusted=trusted,
            origins=origins,
            pool=self._pool,
            sessions=self._sessions,
            csrf_header=csrf_header,
            meter=meter,
            request_id=request_id,
        )
        self._websocket = WebSocketDeps(
            engine=engine,
            settings=settings,
            trusted=trusted,
            origins=origins,
            sessions=self._sessions,
            tls=self._pool.ssl_context,
            meter=meter,
            request_id=request_id,
        )

    @property
    def pool(self) -> UpstreamPool:
        return self._pool

    @property
    def fast_path(self) -> FastPath:
        """For ``frontdesk serve``'s protocol (``fast.py``): this proxy answering its routes without ASGI."""
        return FastPath(self)

    def fast_route(self, raw_path: bytes) -> Route | None:
        """The route of a path the fast path may take: None outside every route, and for a bad path (the
        ASGI side refuses it, as it refuses everything it handles)."""
        try:
            return resolve_route(self._table, raw_path)
        except BadPath:
            return None

    def cycle(self, scope: Scope, client: ClientSide, route: Route, raw_path: bytes) -> HttpCycle:
        """One HTTP request on ``route``, whichever side (ASGI or the fast path's protocol) talks to the browser."""
        # Everything about this one request lives on its cycle (see cycle.py), nothing on self.
        return HttpCycle(self._http, scope, client, route, raw_path)

    async def run_cycle(self, scope: Scope, client: ClientSide, route: Route, raw_path: bytes) -> None:
        await HttpCycle(self._http, scope, client, route, raw_path).run()

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
            await self.run_cycle(scope, AsgiClient(receive, send), route, raw_path)
        else:
            await proxy_websocket(self._websocket, scope, receive, send, route, raw_path)
