"""Every metric the gateway exports, and the fixed vocabularies their labels take values from.

No label value ever comes from a request: routes are the configured prefixes (plus ``/auth/``, ``internal``
and ``static``), methods a fixed list plus ``other``, statuses a class (``2xx``), error kinds, login outcomes
and revocation reasons small fixed sets. A scan of random paths therefore cannot grow the exposition.

The metric objects are created per gateway (in a private registry) rather than at import, so several gateways
in one process (the tests) never collide in prometheus-client's global registry. Under ``frontdesk serve
--workers N`` the values live in prometheus-client's multiprocess files instead, and the parent process reads
those (see ``exposition.py``); gauges say there how the workers' values combine.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from frontdesk.middleware.errors import FrontdeskError

from ..proxy.errors import (
    BrowserGone,
    SessionEnded,
    UpstreamClosed,
    UpstreamConnectTimeout,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = [
    "AUTH_ROUTE",
    "CACHES",
    "GatewayMetrics",
    "INTERNAL_ROUTE",
    "LOGIN_OUTCOMES",
    "METHODS",
    "OTHER",
    "REVOCATION_REASONS",
    "STATIC_ROUTE",
    "STATUS_CLASSES",
    "UPSTREAM_ERRORS",
    "revocation_reason",
    "upstream_error_kind",
]

OTHER = "other"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
AUTH_ROUTE = "/auth/"  # the login API (label of every /auth/* request)
INTERNAL_ROUTE = "internal"  # /healthz, /readyz, the JWKS
STATIC_ROUTE = "static"  # everything else: the SPA and its files
UPSTREAM_ERRORS = ("connect", "timeout", "reset", "protocol")
LOGIN_OUTCOMES = ("ok", "bad_credentials", "rate_limited", "busy", "bad_request")
REVOCATION_REASONS = ("logout", "reuse", "replaced", "password_changed", "user_removed", OTHER)
CACHES = ("session_states", "access_tokens", "grants")

# Upstream answers: from a local service's milliseconds to a route's 30 s default timeout.
_UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Store calls: SQLite on a local disk answers in tens of microseconds; a busy lock waits up to busy_timeout.
_STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

# Revocation reasons are free text chosen by the caller ("refresh token reuse", "password changed", ...):
# the first keyword found names the label.
_REASON_KEYWORDS = (
    ("reuse", "reuse"),
    ("replaced", "replaced"),
    ("password", "password_changed"),
    ("removed", "user_removed"),
    ("logout", "logout"),
    ("log out", "logout"),
    ("everywhere", "logout"),
)


def revocation_reason(text: str | None) -> str:
    """The label for a revocation's reason text: one of :data:`REVOCATION_REASONS`."""
    lowered = (text or "").lower()
    for keyword, label in _REASON_KEYWORDS:
        if keyword in lowered:
            return label
    return OTHER


def upstream_error_kind(error: FrontdeskError) -> str | None:
    """``connect``, ``timeout``, ``reset`` or ``protocol``; None when the upstream is not at fault (the browser
    left, the session ended, or the request was refused before any upstream was involved)."""
    if isinstance(error, UpstreamUnavailable | UpstreamConnectTimeout):
        return "connect"
    if isinstance(error, UpstreamTimeout):
        return "timeout"
    if isinstance(error, BrowserGone | SessionEnded):
        return None
    if isinstance(error, UpstreamClosed):
        return "reset"
    if isinstance(error, UpstreamProtocolError):
        return "protocol"
    return None


class GatewayMetrics:
    """The metric objects of one gateway; ``routes`` are the configured route prefixes."""

    def __init__(self, routes: Iterable[str], registry: CollectorRegistry | None = None) -> None:
        self.routes = tuple(routes)
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "frontdesk_requests",
            "HTTP requests answered, by route prefix, method and status class",
            ["route", "method", "status"],
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "frontdesk_upstream_response_seconds",
            "Time from forwarding a request to the upstream's response head, by route prefix",
            ["route"],
            buckets=_UPSTREAM_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "frontdesk_upstream_errors",
            "Upstream failures by route prefix and kind (connect, timeout, reset, protocol)",
            ["route", "kind"],
            registry=r,
        )
        self.logins = Counter("frontdesk_logins", "Login attempts by outcome", ["outcome"], registry=r)
        self.access_minted = Counter("frontdesk_access_tokens_minted", "Access tokens minted", registry=r)
        self.rotations = Counter("frontdesk_refresh_rotations", "Refresh tokens rotated", registry=r)
        self.reuse = Counter(
            "frontdesk_refresh_reuse_detected", "Superseded refresh tokens presented again (theft)", registry=r
        )
        self.revocations = Counter(
            "frontdesk_sessions_revoked", "Session revocations by reason", ["reason"], registry=r
        )
        self.sessions_active = Gauge(
            "frontdesk_sessions_active",
            "Live sessions in the store (sampled every few seconds)",
            multiprocess_mode="livemostrecent",  # every worker samples the same store: the newest sample wins
            registry=r,
        )
        self.cache_entries = Gauge(
            "frontdesk_cache_entries",
            "Entries in the session engine's in-memory caches, summed over workers (sampled)",
            ["cache"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.store_seconds = Histogram(
            "frontdesk_store_operation_seconds",
            "Session store call latency by operation",
            ["operation"],
            buckets=_STORE_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "frontdesk_store_errors", "Session store calls that raised, by operation", ["operation"], registry=r
        )
        self.websockets_open = Gauge(
            "frontdesk_websockets_open", "Proxied WebSockets open now", multiprocess_mode="livesum", registry=r
        )
        self.sse_open = Gauge(
            "frontdesk_sse_streams_open",
            "Server-sent-event streams being proxied now",
            multiprocess_mode="livesum",
            registry=r,
        )
        # Series that exist from the start (at 0), so rate() and absent() work before the first event.
        for outcome in LOGIN_OUTCOMES:
            self.logins.labels(outcome)
        for reason in REVOCATION_REASONS:
            self.revocations.labels(reason)
        for route in self.routes:
            self.upstream_seconds.labels(route)
            for kind in UPSTREAM_ERRORS:
                self.upstream_errors.labels(route, kind)
