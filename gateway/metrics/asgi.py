"""The one ASGI layer that counts requests and open streams, wrapped around the whole gateway.

It watches what the gateway sends, never what the client sent beyond the method and which configured route
the path falls under: labels stay inside the fixed vocabularies of ``definitions.py``. The proxy itself is not
touched for this; only the upstream latency and errors need the proxy's own hook (``proxy_meter.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from frontdesk.middleware.asgi_io import ASGIApp, Message, Receive, Scope, Send

from ..proxy.routes import Route, RouteTable
from .definitions import AUTH_ROUTE, INTERNAL_ROUTE, METHODS, OTHER, STATIC_ROUTE, GatewayMetrics

__all__ = ["MeteredApp", "NO_RESPONSE"]

NO_RESPONSE = "none"  # the client left before any answer was sent
_METHODS = frozenset(METHODS)
_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_EVENT_STREAM = b"text/event-stream"


def _is_event_stream(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.lower().startswith(_EVENT_STREAM)
    return False


class MeteredApp:
    """``app`` with every HTTP answer counted (route, method, status class) and open WebSockets and
    server-sent-event streams gauged.

    ``is_auth`` says whether a path belongs to ``/auth/*``; ``internal`` are the gateway's own fixed paths
    (health, JWKS). An event stream is counted from its first streamed chunk to its end.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: GatewayMetrics,
        *,
        routes: Iterable[Route],
        is_auth: Callable[[str], bool],
        internal: Iterable[str],
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._table = RouteTable(list(routes))
        self._is_auth = is_auth
        self._internal = frozenset(internal)
        self._counters: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 0
        headers: Iterable[tuple[bytes, bytes]] = ()
        streaming = event_stream = False

        async def watched(message: Message) -> None:
            nonlocal status, headers, streaming, event_stream
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", ())
            elif not streaming and message.get("more_body"):
                streaming = True  # looked at once per streamed response, never for a plain one
                if _is_event_stream(headers):
                    event_stream = True
                    self._metrics.sse_open.inc()
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except BaseException:
            status = status or 500  # uvicorn answers 500 for an app that raised before answering
            raise
        finally:
            if event_stream:
                self._metrics.sse_open.dec()
            self._count(scope["path"], scope["method"], status)

    def _count(self, path: str, method: str, status: int) -> None:
        route = self._route(path)
        if method not in _METHODS:
            method = OTHER
        key = (route, method, status // 100)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self._metrics.requests.labels(
                route, method, _CLASSES.get(key[2], NO_RESPONSE)
            )
        counter.inc()

    def _route(self, path: str) -> str:
        route = self._table.match(path)
        if route is not None:
            return route.prefix
        if self._is_auth(path):
            return AUTH_ROUTE
        if path in self._internal:
            return INTERNAL_ROUTE
        return STATIC_ROUTE

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        accepted = False

        async def watched(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                self._metrics.websockets_open.inc()
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            if accepted:
                self._metrics.websockets_open.dec()
