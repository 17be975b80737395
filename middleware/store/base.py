"""The store interface: sessions, revocations and login-attempt counters.

The session logic only talks to this protocol, so a backend (SQLite, memory, Redis) is a small class
that passes the one shared test suite in ``tests/middleware/store``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["SessionRecord", "Store"]


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

    def is_usable(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires_at and now < self.idle_expires_at


@runtime_checkable
class Store(Protocol):
    async def open(self) -> None:
        """Connect and migrate; idempotent."""

    async def close(self) -> None: ...

    async def create_session(self, record: SessionRecord) -> None: ...

    async def get_session(self, sid: str) -> SessionRecord | None: ...

    async def rotate(self, sid: str, *, expected_jti: str, new_jti: str, now: float, idle_expires_at: float) -> bool:
        """Compare-and-swap: make ``new_jti`` current only if ``expected_jti`` still is and the session is not
        revoked; the old current becomes previous. True when this call did the rotation."""

    async def revoke_session(self, sid: str, *, now: float, reason: str) -> None:
        """Mark the session revoked and record the revocation until the session's natural expiry."""

    async def revoke_user(self, user_id: str, *, now: float, reason: str) -> int:
        """Revoke every live session of a user (removed, or password changed); return how many."""

    async def is_revoked(self, sid: str) -> bool: ...

    async def hit(self, key: str, *, window: float, now: float) -> tuple[int, float]:
        """Count one attempt for ``key`` in the fixed window containing ``now``; return (count, window end)."""

    async def reset(self, key: str) -> None:
        """Forget the attempts counted for ``key``."""

    async def purge(self, *, now: float) -> int:
        """Delete what has expired anyway; return the number of rows removed."""
