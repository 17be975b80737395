"""One request id per request: in every log line written while handling it, sent upstream, returned to the client.

The id is the ``X-Request-ID`` the request came with only when the direct peer is a trusted proxy
(``[server] trusted_proxies``, the same rule as ``X-Forwarded-For``) and the value is sane: 1 to 128 characters
from ``A-Z a-z 0-9 . _ : + / = -`` (what UUIDs, ULIDs, nginx's ``$request_id`` and base64 ids are made of;
nothing that could break a log line or a header). Otherwise a fresh one is made: 32 hex digits, a random
prefix per process and a counter.

The layer rewrites the request's own ``X-Request-ID`` header to the chosen id, so every app behind it sees one
value and the proxy passes it upstream like any other header: the proxy's hot path needs no hook of its own.
A client's forged id never reaches an upstream. Every response start (HTTP, a refused WebSocket, a WebSocket
accept) carries the id; an upstream's own ``X-Request-ID`` is replaced, so the client sees exactly one.

The id lives in a context variable (:func:`current_request_id`), which the log filter in ``logs.py`` reads. It
is set and never reset: uvicorn runs each request in its own task, whose context dies with it, and resetting
would hide the id from the lines the server writes after the app returns (its access line and its
"Exception in ASGI application" traceback).
"""

from __future__ import annotations

import contextvars
import itertools
import os
import re

from frontdesk.middleware.asgi_io import ASGIApp, Message, Receive, Scope, Send
from frontdesk.middleware.forwarded import TrustPolicy

__all__ = ["HEADER", "RequestIds", "current_request_id", "is_sane"]

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:+/=-]{1,128}")
_STARTS = frozenset({"http.response.start", "websocket.http.response.start", "websocket.accept"})

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("frontdesk_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this code runs for, or None outside any request."""
    return _request_id.get()


def is_sane(value: bytes) -> bool:
    return _SANE.fullmatch(value) is not None


class RequestIds:
    """ASGI middleware: choose the request id, put it in the context, the request and every response start."""

    def __init__(self, app: ASGIApp, *, trusted: TrustPolicy) -> None:
        self.app = app
        self._trusted = trusted
        # A random prefix per process and a counter: unique across workers and restarts without a system call
        # per request (an id names a request; it is not a secret, so it need not be unpredictable).
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def _fresh(self) -> bytes:
        return b"%s%016x" % (self._prefix.encode("ascii"), next(self._counter))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        given: bytes | None = None
        headers: list[tuple[bytes, bytes]] = []
        for pair in scope["headers"]:  # one pass: the request keeps every header but its X-Request-ID
            if pair[0] == HEADER:
                given = pair[1] if given is None else given
            else:
                headers.append(pair)
        rid = given if given is not None and self._believed(scope, given) else self._fresh()
        tag = (HEADER, rid)
        headers.append(tag)
        _request_id.set(rid.decode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] in _STARTS:
                kept = [pair for pair in message.get("headers", ()) if pair[0].lower() != HEADER]
                kept.append(tag)
                message = {**message, "headers": kept}
            await send(message)

        await self.app({**scope, "headers": headers}, receive, send_with_id)

    def _believed(self, scope: Scope, value: bytes) -> bool:
        client = scope.get("client")
        return is_sane(value) and self._trusted.is_trusted(client[0] if client else None)
