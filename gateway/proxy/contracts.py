"""What the proxy needs from the session engine, the trusted-proxy list and the metrics, as small Protocols.

The engine's and the trust list's are the admission pipeline's own (``middleware.admission``,
``middleware.forwarded``): the proxy admits requests by the same rules as session mode. Writing against these
(rather than the concrete classes) keeps the proxy testable with fakes and keeps the dependency one-way: the
engine never learns that a proxy exists, and the proxy never learns which metrics library counts for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from frontdesk.middleware.admission import GrantLike, TokenSource
from frontdesk.middleware.errors import FrontdeskError
from frontdesk.middleware.forwarded import TrustPolicy

from .routes import Route

__all__ = ["GrantLike", "NO_METER", "NO_REQUEST_ID", "ProxyMeter", "RequestIdSource", "TokenSource", "TrustPolicy"]

RequestIdSource = Callable[[], str | None]
"""The id of the request being proxied (``frontdesk.gateway.request_ids.current_request_id``), written upstream
as its ``X-Request-ID``; None: none is sent. A request's own ``X-Request-ID`` is never passed on either way."""


class ProxyMeter(Protocol):
    """Told how each upstream exchange went (``frontdesk.gateway.metrics`` implements it)."""

    def answered(self, route: Route, started: float) -> None:
        """The upstream's response head arrived; ``started`` is the ``time.perf_counter()`` of forwarding."""

    def failed(self, route: Route, error: FrontdeskError) -> None:
        """The exchange (or WebSocket connect) ended with ``error``; the meter decides whether it counts."""


class _NoMeter:
    __slots__ = ()

    def answered(self, route: Route, started: float) -> None:
        return None

    def failed(self, route: Route, error: FrontdeskError) -> None:
        return None


NO_METER: ProxyMeter = _NoMeter()
"""Metrics off: two no-op calls per proxied request."""


def NO_REQUEST_ID() -> str | None:  # named like NO_METER: the default, not a step
    """No request ids (a ``ProxyApp`` on its own, without the gateway's edge layer)."""
    return None
