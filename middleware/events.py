"""What happened, told once: the session engine, ``/auth/*`` and the CLI emit :class:`Event` objects; the audit
trail, the metrics and the log are sinks that listen.

One vocabulary keeps the three views in agreement (a login counted by the metrics is the login the audit trail
records). Emitting is synchronous and must stay cheap: a sink that needs I/O (the audit table) queues the event
and writes it in the background. A sink that raises is logged and skipped, never allowed to fail the request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

__all__ = ["Event", "EventSink", "Events", "Kind", "NO_EVENTS"]

log = logging.getLogger("frontdesk.events")


class Kind:
    """The event kinds. Values are stable: they are stored in the audit table and used as metric labels."""

    LOGIN_OK: Final = "login.ok"
    LOGIN_FAILED: Final = "login.failed"  # reason: bad_credentials | rate_limited | busy | bad_request
    LOGOUT: Final = "logout"  # reason: logout | everywhere
    ACCESS_MINTED: Final = "access.minted"
    REFRESH_ROTATED: Final = "refresh.rotated"
    REUSE_DETECTED: Final = "refresh.reuse_detected"
    SESSION_REVOKED: Final = "session.revoked"  # reason says why, actor says by whom
    RATE_LIMITED: Final = "rate_limited"
    USER_ADDED: Final = "user.added"
    USER_REMOVED: Final = "user.removed"
    PASSWORD_CHANGED: Final = "user.password_changed"  # noqa: S105 (an event name, not a password)
    KEY_ROTATED: Final = "key.rotated"

    ALL: Final = (
        LOGIN_OK,
        LOGIN_FAILED,
        LOGOUT,
        ACCESS_MINTED,
        REFRESH_ROTATED,
        REUSE_DETECTED,
        SESSION_REVOKED,
        RATE_LIMITED,
        USER_ADDED,
        USER_REMOVED,
        PASSWORD_CHANGED,
        KEY_ROTATED,
    )


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. Never carries a secret: no password, token, cookie value or key material."""

    kind: str
    at: float  # the engine's clock (Unix seconds)
    user: str | None = None  # the username, when known
    session: str | None = None  # the session id (sid), never the refresh token
    address: str | None = None  # the client address (after trusted-proxy resolution)
    user_agent: str | None = None
    reason: str | None = None  # a short reason class, e.g. "bad_credentials", "refresh token reuse"
    actor: str | None = None  # who caused it: "user", "admin", "system", or a username


@runtime_checkable
class EventSink(Protocol):
    def emit(self, event: Event) -> None:
        """Take note of ``event``. Called on the request path: must not block or do I/O inline."""


class Events:
    """Fan-out to every sink; a failing sink is logged and does not stop the others or the caller."""

    __slots__ = ("_sinks",)

    def __init__(self, sinks: Iterable[EventSink] = ()) -> None:
        self._sinks: tuple[EventSink, ...] = tuple(sinks)

    def add(self, sink: EventSink) -> None:
        self._sinks = (*self._sinks, sink)

    @property
    def sinks(self) -> tuple[EventSink, ...]:
        return self._sinks

    def emit(self, event: Event) -> None:
        for sink in self._sinks:
            try:
                sink.emit(event)
            except Exception:
                log.exception("event sink %s failed on %s", type(sink).__name__, event.kind)

    def __bool__(self) -> bool:
        return bool(self._sinks)


NO_EVENTS = Events()
"""Nobody listening: the default, so library users pay nothing."""
