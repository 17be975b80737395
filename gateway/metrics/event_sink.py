"""Logins, mints, rotations, reuse and revocations, counted from the session engine's events.

The metrics listen to the same :mod:`frontdesk.middleware.events` the audit trail and the log do, so a login
the dashboard counts is the login the audit trail records; nothing here counts them a second way.
"""

from __future__ import annotations

from typing import Any

from frontdesk.middleware.events import Event, Kind

from .definitions import LOGIN_OUTCOMES, OTHER, REVOCATION_REASONS, GatewayMetrics, revocation_reason

__all__ = ["EventMetrics"]


class EventMetrics:
    """An :class:`~frontdesk.middleware.events.EventSink`: one dict lookup and one increment per event."""

    __slots__ = ("_logins", "_revocations", "_simple")

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._simple: dict[str, Any] = {
            Kind.ACCESS_MINTED: metrics.access_minted,
            Kind.REFRESH_ROTATED: metrics.rotations,
            Kind.REUSE_DETECTED: metrics.reuse,
            Kind.LOGIN_OK: metrics.logins.labels("ok"),
        }
        self._logins = {outcome: metrics.logins.labels(outcome) for outcome in (*LOGIN_OUTCOMES, OTHER)}
        self._revocations = {reason: metrics.revocations.labels(reason) for reason in REVOCATION_REASONS}

    def emit(self, event: Event) -> None:
        counter = self._simple.get(event.kind)
        if counter is not None:
            counter.inc()
        elif event.kind == Kind.LOGIN_FAILED:
            self._logins.get(event.reason or OTHER, self._logins[OTHER]).inc()
        elif event.kind == Kind.SESSION_REVOKED:
            self._revocations[revocation_reason(event.reason)].inc()
