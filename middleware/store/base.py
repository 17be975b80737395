"""The store interface: sessions, revocations, login-attempt counters and the audit trail.

The session logic only talks to this protocol, so a backend (SQLite, memory, Redis) is a small class
that passes the one shared test suite in ``tests/middleware/store``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..events import Event

__all__ = [
    "AnnouncesChanges",
    "Change",
    "CountsRevocations",
    "CountsSessions",
    "IdpTokenRecord",
    "READY_TIMEOUT",
    "SessionRecord",
    "Store",
    "SUPERSEDED_LIMIT",
    "after_rotation",
    "window_bounds",
]

READY_TIMEOUT = 0.5
"""How long a readiness check waits for the store (its lock, its server): a store slower than this to answer
is not ready to serve logins, and a probe must answer well within a load balancer's own timeout."""

SUPERSEDED_LIMIT = 32
"""At most this many superseded refresh tokens are remembered per session (the newest; the older ones count as
reused). ``/auth/refresh`` rotates at most once a second and silent refresh at most every half access lifetime,
so this covers the default 30 s grace even for a client that refreshes non-stop."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    sid: str
    user_id: str
    username: str
    created_at: float
    last_seen: float
    expires_at: float  # absolute cap: created_at + max_session_age
    idle_expires_at: float  # slides forward on each rotation, never past expires_at
    remember: bool
    current_jti: str
    previous_jti: str | None
    rotated_at: float
    revoked_at: float | None = None
    # The session's recently superseded refresh tokens, oldest first: (jti, when it stopped being current).
    # A token superseded less than the rotation grace ago is still accepted (the reuse interval).
    superseded: tuple[tuple[str, float], ...] = ()
    # What the "your devices" list shows: the client's address at login (after trusted-proxy resolution) and a
    # short summary of its User-Agent ("Chrome 131 on Linux", see user_agents.py), never the raw header.
    client_address: str | None = None
    user_agent: str | None = None

    def is_usable(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires_at and now < self.idle_expires_at

    def superseded_at(self, jti: str) -> float | None:
        """When ``jti`` stopped being this session's current token, if it is one of the remembered ones."""
        for old, at in reversed(self.superseded):
            if old == jti:
                return at
        if not self.superseded and jti == self.previous_jti:
            return self.rotated_at  # a record from a store that keeps only the previous token
        return None


@dataclass(frozen=True, slots=True)
class IdpTokenRecord:
    """An identity provider's tokens for one frontdesk session, as the store keeps them: sealed (see
    ``frontdesk.middleware.idp_tokens``), with the few identifiers back-channel logout looks sessions up by."""

    sid: str  # the frontdesk session these tokens belong to; they end with it
    provider: str  # the ``[[oidc]]`` name
    subject: str  # the IdP's ``sub``
    idp_sid: str | None  # the IdP's session id (the ID token's ``sid``), when it sends one
    sealed: str  # the encrypted tokens
    expires_at: float  # the frontdesk session's absolute expiry: the row is gone by then at the latest


def after_rotation(
    superseded: tuple[tuple[str, float], ...], jti: str, now: float, remember_for: float
) -> tuple[tuple[str, float], ...]:
    """``superseded`` once ``jti`` is superseded at ``now``: entries older than ``remember_for`` dropped,
    at most :data:`SUPERSEDED_LIMIT` kept (the newest). The Redis backend's Lua script does the same."""
    kept = tuple((old, at) for old, at in superseded if now - at < remember_for)
    return (*kept, (jti, now))[-SUPERSEDED_LIMIT:]


def window_bounds(now: float, window: float) -> tuple[float, float]:
    """The fixed counting window containing ``now``: (start, end). Every backend and the engine agree on it."""
    start = now - (now % window)
    return start, start + window


@runtime_checkable
class Store(Protocol):
    async def open(self) -> None:
        """Connect and migrate; idempotent."""

    async def close(self) -> None: ...

    async def check_ready(self) -> None:
        """Raise :class:`~frontdesk.middleware.errors.StoreNotReady` saying why when the open store cannot serve
        requests now (unreachable, locked, not migrated to this version's schema). Cheap: ``/readyz`` calls it."""

    async def create_session(self, record: SessionRecord) -> None: ...

    async def get_session(self, sid: str) -> SessionRecord | None: ...

    async def rotate(
        self,
        sid: str,
        *,
        expected_jti: str,
        new_jti: str,
        now: float,
        idle_expires_at: float,
        remember_for: float = 0.0,
    ) -> bool:
        """Compare-and-swap: make ``new_jti`` current only if ``expected_jti`` still is and the session is not
        revoked; the old current becomes previous and joins ``superseded`` (superseded at ``now``), which keeps
        the entries younger than ``remember_for`` seconds, at most :data:`SUPERSEDED_LIMIT`, and always the
        one just superseded. True when this call did the rotation."""

    async def revoke_session(self, sid: str, *, now: float, reason: str) -> None:
        """Mark the session revoked and record the revocation until the session's natural expiry."""

    async def revoke_user(self, user_id: str, *, now: float, reason: str) -> int:
        """Revoke every live session of a user (removed, or password changed); return how many."""

    async def is_revoked(self, sid: str) -> bool: ...

    async def list_sessions(self, user_id: str, *, now: float) -> list[SessionRecord]:
        """The user's live sessions at ``now`` (not revoked, neither expiry passed), oldest first."""

    async def attempt(self, limits: Sequence[tuple[str, int]], *, window: float, now: float) -> str | None:
        """Count one attempt against every key of ``limits`` in the fixed window containing ``now``, unless one
        of them has already reached its limit there: then nothing at all is written and that key (the first
        such, in order) is returned. Atomic across processes. Counters of ended windows are deleted as new ones
        are written, so the counters never outgrow the attempts accepted in one window."""

    async def reset(self, key: str) -> None:
        """Forget the attempts counted for ``key``."""

    async def purge(self, *, now: float) -> int:
        """Delete what has expired anyway; return the number of rows removed. The audit trail is not touched:
        it has its own retention (:meth:`purge_audit`)."""

    async def record_audit(self, events: Sequence[Event]) -> None:
        """Append ``events`` to the audit trail (security events only; see ``frontdesk.middleware.audit``).
        Identical events are all kept: two failed logins in one instant are two attempts."""

    async def audit(
        self, *, user: str | None = None, since: float | None = None, limit: int | None = None
    ) -> list[Event]:
        """The audit trail, oldest first: only ``user``'s events, only those at or after ``since``; with
        ``limit``, the newest ``limit`` of them."""

    async def purge_audit(self, *, before: float) -> int:
        """Delete the audit events older than ``before``; return how many."""

    # --- an identity provider's tokens, kept with the session (OpenID Connect login) ------------------
    # Revoking a session (or its user's sessions) deletes its IdP tokens; purge deletes those of sessions
    # that ended otherwise.

    async def save_idp_tokens(self, record: IdpTokenRecord) -> None:
        """Keep ``record`` with its session, replacing what the session had."""

    async def get_idp_tokens(self, sid: str) -> IdpTokenRecord | None: ...

    async def replace_idp_tokens(self, sid: str, *, expected: str, sealed: str) -> bool:
        """Compare-and-set: store ``sealed`` only if the session's sealed tokens are still ``expected`` (so a
        refresh done by another worker meanwhile is never overwritten); also ends any refresh lease. True when
        this call wrote."""

    async def lease_idp_refresh(self, sid: str, *, holder: str, now: float, until: float) -> bool:
        """Take the session's IdP-refresh lease for ``holder`` until ``until`` unless someone else holds it at
        ``now``: the one worker that refreshes at the IdP while the others wait (single flight). True if taken."""

    async def release_idp_refresh(self, sid: str, *, holder: str) -> None:
        """Give the lease back early (the refresh failed) if ``holder`` still holds it."""

    async def find_idp_sessions(
        self, provider: str, *, now: float, idp_sid: str | None = None, subject: str | None = None
    ) -> list[str]:
        """The usable frontdesk sessions (neither revoked nor past either expiry at ``now``) logged in through
        ``provider`` whose IdP session is ``idp_sid`` and whose IdP subject is ``subject`` (each when given;
        at least one must be), sorted."""

    async def remember_logout_token(self, provider: str, jti: str, *, now: float, until: float) -> bool:
        """Record a back-channel logout token's ``jti`` until ``until``; False (nothing written) when it was
        recorded before and has not expired at ``now``: a replay."""


@runtime_checkable
class CountsSessions(Protocol):
    """An optional extra of a store (every built-in backend has it): the gateway's live-session gauge reads it.

    Kept out of :class:`Store` so a store written for the library before it existed is still a ``Store``."""

    async def count_live_sessions(self, *, now: float) -> int:
        """How many sessions are usable at ``now``: neither revoked, nor past their idle or absolute end."""


@runtime_checkable
class CountsRevocations(Protocol):
    """An optional extra of a store (every built-in backend has it): the revocation epoch.

    A counter that every revocation (a session, all of a user's) raises *after* the revocation is written, in
    the same transaction where the backend has one. A worker that reads the same epoch as before knows nothing
    it cached was revoked meanwhile, so it may keep trusting its cached session rows: one cheap read per
    worker every fraction of a second replaces one read per active session (see ``middleware/invalidation``).
    """

    async def revocation_epoch(self) -> int:
        """The current value of the counter (0 before the first revocation)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One invalidation message: what a worker must drop from its caches.

    ``epoch`` is the revocation epoch the change raised (None for a rotation, which raises none); ``sid``
    names one session, ``user_id`` every session of a user; neither means "drop everything" (a key rotation).
    ``jti`` is set for a rotation: the session's new current refresh-token id, so the worker that rotated (and
    any that already read the rotated row) can tell it has nothing to drop.
    """

    epoch: int | None
    sid: str | None = None
    user_id: str | None = None
    jti: str | None = None


@runtime_checkable
class AnnouncesChanges(Protocol):
    """An optional extra of a shared store (Redis): it announces each change to every process at once.

    A message may be lost (a dropped connection): the revocation epoch is what bounds the staleness, the
    announcements only make the common case immediate and precise."""

    async def follow_changes(self, deliver: Callable[[Change], None]) -> None:
        """Call ``deliver`` for every change announced from now on, by any process; run until cancelled,
        reconnecting with backoff when the connection drops (never raises for a store outage)."""
