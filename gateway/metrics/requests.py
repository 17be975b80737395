"""Requests counted and open streams gauged, from what the gateway's edge layer (``gateway/edge.py``) sees.

The edge layer watches what the gateway sends and tells a :class:`RequestMeter`; it looks at nothing the
client sent beyond the method and which configured route the path falls under: labels stay inside the fixed
vocabularies of ``definitions.py``. The proxy itself is not touched for this; only the upstream latency and
errors need the proxy's own hook (``proxy_meter.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..proxy.routes import Route, RouteTable
from .definitions import AUTH_ROUTE, INTERNAL_ROUTE, METHODS, OTHER, STATIC_ROUTE, GatewayMetrics

__all__ = ["RequestMeter", "NO_RESPONSE"]

NO_RESPONSE = "none"  # the client left before any answer was sent
_METHODS = frozenset(METHODS)
_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_EVENT_STREAM = b"text/event-stream"


def _is_event_stream(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.lower().startswith(_EVENT_STREAM)
    return False


class RequestMeter:
    """Counts every HTTP answer (route, method, status class) and gauges open WebSockets and server-sent-event
    streams.

    ``is_auth`` says whether a path belongs to ``/auth/*``; ``internal`` are the gateway's own fixed paths
    (health, JWKS). An event stream is counted from its first streamed chunk to its end.
    """

    def __init__(
        self,
        metrics: GatewayMetrics,
        *,
        routes: Iterable[Route],
        is_auth: Callable[[str], bool],
        internal: Iterable[str],
    ) -> None:
        self._metrics = metrics
        self._table = RouteTable(list(routes))
        self._is_auth = is_auth
        self._internal = frozenset(internal)
        self._counters: dict[tuple[str, str, int], Any] = {}

    def answered(self, path: str, method: str, status: int) -> None:
        """One HTTP request is over; ``status`` is 0 when no answer was sent."""
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

    def stream_started(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """An answer with these headers sent its first streamed chunk; True when it is an event stream, now
        gauged until :meth:`event_stream_ended`."""
        if _is_event_stream(headers):
            self._metrics.sse_open.inc()
            return True
        return False

    def event_stream_ended(self) -> None:
        self._metrics.sse_open.dec()

    def websocket_accepted(self) -> None:
        self._metrics.websockets_open.inc()

    def websocket_ended(self) -> None:
        self._metrics.websockets_open.dec()

    def _route(self, path: str) -> str:
        route = self._table.match(path)
        if route is not None:
            return route.prefix
        if self._is_auth(path):
            return AUTH_ROUTE
        if path in self._internal:
            return INTERNAL_ROUTE
        return STATIC_ROUTE
