"""One request id per request: in every log line written while handling it, sent upstream, returned to the client.

The id is the ``X-Request-ID`` the request came with only when the direct peer is a trusted proxy
(``[server] trusted_proxies``, the same rule as ``X-Forwarded-For``) and the value is sane: 1 to 128 characters
from ``A-Z a-z 0-9 . _ : + / = -`` (what UUIDs, ULIDs, nginx's ``$request_id`` and base64 ids are made of;
nothing that could break a log line or a header). Otherwise a fresh one is made: 32 hex digits, a random
prefix per process and a counter.

The chosen id reaches the upstream through the proxy, which drops every ``X-Request-ID`` a request came
with (as it drops a client's ``X-Forwarded-For``) and writes the chosen one (``proxy/headers.py``), so a
client's forged id never reaches an upstream and the request's own headers are never copied to rewrite them.
Every response start (HTTP, a refused WebSocket, a WebSocket accept) carries the id, added by the gateway's
edge layer (``edge.py``); an upstream's own ``X-Request-ID`` is replaced, so the client sees exactly one.

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

from frontdesk.middleware.asgi_io import Scope
from frontdesk.middleware.forwarded import TrustPolicy

__all__ = ["HEADER", "RequestIds", "current_request_id", "is_sane"]

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:+/=-]{1,128}")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("frontdesk_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this code runs for, or None outside any request."""
    return _request_id.get()


def is_sane(value: bytes) -> bool:
    return _SANE.fullmatch(value) is not None


class RequestIds:
    """Chooses each request's id (:meth:`assign`); the gateway's edge layer calls it once per request."""

    def __init__(self, *, trusted: TrustPolicy) -> None:
        self._trusted = trusted
        # A random prefix per process and a counter: unique across workers and restarts without a system call
        # per request (an id names a request; it is not a secret, so it need not be unpredictable).
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def assign(self, scope: Scope) -> bytes:
        """The id of the request of ``scope`` (HTTP or WebSocket), now also :func:`current_request_id`."""
        rid = None
        client = scope.get("client")
        # Only a trusted proxy's id is ever believed: for anyone else the headers are not even looked at.
        if client and self._trusted.is_trusted(client[0]):
            for name, value in scope["headers"]:
                if name == HEADER:  # the first one decides
                    rid = value.decode("ascii") if is_sane(value) else None
                    break
        if rid is None:
            rid = f"{self._prefix}{next(self._counter):016x}"
        _request_id.set(rid)
        return rid.encode("ascii")
