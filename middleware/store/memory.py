"""An in-process store: for tests, single-process apps and embedding. Nothing survives a restart."""

from __future__ import annotations

import dataclasses

from .base import SessionRecord, after_rotation

__all__ = ["MemoryStore"]


class MemoryStore:
    def __init__(self) -> None:
        self._sessions: dict[str, SessionRecord] = {}
        self._revoked: dict[str, float] = {}
        self._hits: dict[str, tuple[float, int]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create_session(self, record: SessionRecord) -> None:
        if record.sid in self._sessions:
            raise ValueError("session id already exists")
        self._sessions[record.sid] = record

    async def get_session(self, sid: str) -> SessionRecord | None:
        return self._sessions.get(sid)

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
        record = self._sessions.get(sid)
        if record is None or record.revoked_at is not None or record.current_jti != expected_jti:
            return False
        self._sessions[sid] = dataclasses.replace(
            record,
            current_jti=new_jti,
            previous_jti=expected_jti,
            superseded=after_rotation(record.superseded, expected_jti, now, remember_for),
            rotated_at=now,
            last_seen=now,
            idle_expires_at=idle_expires_at,
        )
        return True

    async def revoke_session(self, sid: str, *, now: float, reason: str) -> None:
        record = self._sessions.get(sid)
        if record is not None and record.revoked_at is None:
            self._sessions[sid] = dataclasses.replace(record, revoked_at=now)
        expiry = record.expires_at if record is not None else now + 86400
        self._revoked[sid] = max(expiry, self._revoked.get(sid, 0.0))

    async def revoke_user(self, user_id: str, *, now: float, reason: str) -> int:
        live = [r.sid for r in self._sessions.values() if r.user_id == user_id and r.revoked_at is None]
        for sid in live:
            await self.revoke_session(sid, now=now, reason=reason)
        return len(live)

    async def is_revoked(self, sid: str) -> bool:
        return sid in self._revoked

    async def hit(self, key: str, *, window: float, now: float) -> tuple[int, float]:
        start = now - (now % window)
        prev_start, count = self._hits.get(key, (start, 0))
        count = count + 1 if prev_start == start else 1
        self._hits[key] = (start, count)
        return count, start + window

    async def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    async def purge(self, *, now: float) -> int:
        dead = [s for s, r in self._sessions.items() if r.expires_at <= now or r.idle_expires_at <= now]
        for sid in dead:
            del self._sessions[sid]
        gone = [s for s, exp in self._revoked.items() if exp <= now]
        for sid in gone:
            del self._revoked[sid]
        return len(dead) + len(gone)
