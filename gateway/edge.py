"""The gateway's edge: the one ASGI layer every request passes on its way in and every answer on its way out.

Per request it assigns the request id (``request_ids.py``). On the answer's start it writes the id and the
security headers (``security_headers.py``) in one pass over the headers; with metrics on, it also counts the
answer and gauges open WebSockets and event streams (``metrics/requests.py``).

One layer rather than three because it runs for every proxied request: one ``send`` wrapper, one pass over
the response headers, one copy of the start message (never of a body message, never of the scope: the
request goes on exactly as the server built it; the proxy writes the request id upstream itself).
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

from frontdesk.middleware.asgi_io import ASGIApp, Message, Receive, Scope, Send

from .metrics.requests import RequestMeter
from .request_ids import HEADER, RequestIds
from .security_headers import NAMES, SecurityHeaders

__all__ = ["EdgePassage", "GatewayEdge"]

Headers = Iterable[tuple[bytes, bytes]]

_LOOKED_AT = NAMES | {HEADER}  # a response with none of these (the common case) is decorated without a loop
_name = itemgetter(0)


class GatewayEdge:
    """``app`` with a request id for every request, and the id and the security headers on every answer
    (the HTTP ones, a refused WebSocket's, a WebSocket accept: the id only); ``meter`` counts the answers."""

    def __init__(
        self, app: ASGIApp, *, ids: RequestIds, security: SecurityHeaders, meter: RequestMeter | None = None
    ) -> None:
        self.app = app
        self._ids = ids
        self._security = security
        self._meter = meter
        self._http = self._plain_http if meter is None else self._metered_http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def decorate(self, headers: Headers, rid: bytes) -> list[tuple[bytes, bytes]]:
        """A new list: ``headers`` (lower-case names, as ASGI requires) with the request id ``rid`` instead of
        any of their own, and every security header they lack."""
        out = list(headers)
        tag = (HEADER, rid)
        if _LOOKED_AT.isdisjoint(map(_name, out)):  # in C: no Python-level loop for the common answer
            out.append(tag)
            out += self._security.defaults
            return out
        out = [pair for pair in out if pair[0] != HEADER]
        out.append(tag)
        return self._security.secure(out)

    def enter(self, scope: Scope) -> EdgePassage:
        """One HTTP request's passage through the edge: its id assigned now, its answer decorated and counted
        through the passage. The ASGI wrapper below and ``frontdesk serve``'s fast path (``proxy/fast.py``)
        both use it, so an answer is decorated and counted the same whichever way it went out."""
        return EdgePassage(self, scope, self._ids.assign(scope))

    async def _plain_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = self._ids.assign(scope)
        decorate = self.decorate

        async def send_decorated(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": decorate(message.get("headers", ()), rid)}
            await send(message)

        await self.app(scope, receive, send_decorated)

    async def _metered_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        passage = self.enter(scope)

        async def send_metered(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": passage.start(message["status"], message.get("headers", ()))}
            elif message.get("more_body"):
                passage.more()
            await send(message)

        raised = True
        try:
            await self.app(scope, receive, send_metered)
            raised = False
        finally:
            passage.end(raised)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = self._ids.assign(scope)
        decorate = self.decorate
        meter = self._meter
        accepted = False

        async def send_decorated(message: Message) -> None:
            nonlocal accepted
            kind = message["type"]
            if kind == "websocket.http.response.start":
                message = {**message, "headers": decorate(message.get("headers", ()), rid)}
            elif kind == "websocket.accept":
                # Not an HTTP answer the browser reads as a page: the id only, no security headers.
                kept = [pair for pair in message.get("headers", ()) if pair[0].lower() != HEADER]
                kept.append((HEADER, rid))
                message = {**message, "headers": kept}
                if meter is not None and not accepted:
                    accepted = True
                    meter.websocket_accepted()
            await send(message)

        try:
            await self.app(scope, receive, send_decorated)
        finally:
            if accepted and meter is not None:
                meter.websocket_ended()


class EdgePassage:
    """One HTTP request through the edge (:meth:`GatewayEdge.enter`): decorates its answer's head, and with
    metrics on counts the answer and gauges an event stream while it lasts."""

    __slots__ = ("_edge", "_meter", "event_stream", "headers", "rid", "scope", "status", "streaming")

    def __init__(self, edge: GatewayEdge, scope: Scope, rid: bytes) -> None:
        self._edge = edge
        self._meter = edge._meter
        self.scope = scope
        self.rid = rid
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.streaming = self.event_stream = False

    def start(self, status: int, headers: Headers) -> list[tuple[bytes, bytes]]:
        """The answer's head is going out: its headers as sent (request id, security headers)."""
        self.status = status
        self.headers = out = self._edge.decorate(headers, self.rid)
        return out

    def more(self) -> None:
        """A body piece with more to come went out: the answer streams."""
        meter = self._meter
        if meter is not None and not self.streaming:
            self.streaming = True  # looked at once per streamed response, never for a plain one
            self.event_stream = meter.stream_started(self.headers)

    def end(self, raised: bool) -> None:
        """The request is over; ``raised``: the app raised (the server answers 500 if nothing was sent)."""
        meter = self._meter
        if meter is None:
            return
        if raised:
            self.status = self.status or 500
        if self.event_stream:
            meter.event_stream_ended()
        meter.answered(self.scope["path"], self.scope["method"], self.status)
