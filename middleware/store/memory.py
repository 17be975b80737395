"""An in-process store: for tests, single-process apps and embedding. Nothing survives a restart."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..events import Event
from .base import IdpTokenRecord, SessionRecord, after_rotation, window_bounds

__all__ = ["MemoryStore"]


class MemoryStore:
    def __init__(self) -> None:
        self._sessions: dict[str, SessionRecord] = {}
        self._revoked: dict[str, float] = {}
        self._hits: dict[str, tuple[float, int]] = {}  # key -> (window start, count)
        self._hits_end: dict[str, float] = {}  # key -> window end, for dropping ended windows
        self._next_sweep = float("inf")
        self._audit: list[Event] = []  # in time order (events are appended as they happen)
        self._epoch = 0  # raised by every revocation (base.CountsRevocations)
        self._idp: dict[str, IdpTokenRecord] = {}
        self._idp_leases: dict[str, tuple[str, float]] = {}  # sid -> (holder, until)
        self._logout_jtis: dict[tuple[str, str], float] = {}  # (provider, jti) -> until

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def count_live_sessions(self, *, now: float) -> int:
        return sum(1 for record in self._sessions.values() if record.is_usable(now))

    async def check_ready(self) -> None:
        return None  # in this process's memory: ready whenever the process answers

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
        self._drop_idp(sid)
        expiry = record.expires_at if record is not None else now + 86400
        self._revoked[sid] = max(expiry, self._revoked.get(sid, 0.0))
        self._epoch += 1

    async def revocation_epoch(self) -> int:
        return self._epoch

    async def revoke_user(self, user_id: str, *, now: float, reason: str) -> int:
        live = [r.sid for r in self._sessions.values() if r.user_id == user_id and r.revoked_at is None]
        for sid in live:
            await self.revoke_session(sid, now=now, reason=reason)
        return len(live)

    async def is_revoked(self, sid: str) -> bool:
        return sid in self._revoked

    async def list_sessions(self, user_id: str, *, now: float) -> list[SessionRecord]:
        live = [r for r in self._sessions.values() if r.user_id == user_id and r.is_usable(now)]
        return sorted(live, key=lambda r: (r.created_at, r.sid))

    async def attempt(self, limits: Sequence[tuple[str, int]], *, window: float, now: float) -> str | None:
        start, end = window_bounds(now, window)
        counts = [(key, self._hits.get(key, (start, 0))) for key, _ in limits]
        current = [count if prev_start == start else 0 for _, (prev_start, count) in counts]
        for (key, limit), count in zip(limits, current, strict=True):
            if count >= limit:
                return key
        self._sweep(now)
        for (key, _), count in zip(limits, current, strict=True):
            self._count(key, start, end, count + 1)
        return None

    def _count(self, key: str, start: float, end: float, count: int) -> None:
        self._hits[key] = (start, count)
        self._hits_end[key] = end
        self._next_sweep = min(self._next_sweep, end)

    def _sweep(self, now: float) -> None:
        """Drop the counters of ended windows (at most once per window end, not on every write)."""
        if now < self._next_sweep:
            return
        for key in [k for k, end in self._hits_end.items() if end <= now]:
            del self._hits[key], self._hits_end[key]
        self._next_sweep = min(self._hits_end.values(), default=float("inf"))

    async def reset(self, key: str) -> None:
        self._hits.pop(key, None)
        self._hits_end.pop(key, None)

    async def purge(self, *, now: float) -> int:
        dead = [s for s, r in self._sessions.items() if r.expires_at <= now or r.idle_expires_at <= now]
        for sid in dead:
            del self._sessions[sid]
        for sid in [s for s in self._idp if s not in self._sessions]:
            self._drop_idp(sid)
        for key in [k for k, until in self._logout_jtis.items() if until <= now]:
            del self._logout_jtis[key]
        gone = [s for s, exp in self._revoked.items() if exp <= now]
        for sid in gone:
            del self._revoked[sid]
        counters = len(self._hits)
        self._next_sweep = now
        self._sweep(now)
        return len(dead) + len(gone) + counters - len(self._hits)

    async def record_audit(self, events: Sequence[Event]) -> None:
        self._audit.extend(events)
        self._audit.sort(key=lambda e: e.at)  # stable: a batch keeps its order; late writers land in place

    async def audit(
        self, *, user: str | None = None, since: float | None = None, limit: int | None = None
    ) -> list[Event]:
        found = [e for e in self._audit if (user is None or e.user == user) and (since is None or e.at >= since)]
        return found[max(len(found) - limit, 0) :] if limit is not None else found

    async def purge_audit(self, *, before: float) -> int:
        kept = [e for e in self._audit if e.at >= before]
        removed, self._audit = len(self._audit) - len(kept), kept
        return removed

    # --- an identity provider's tokens ---------------------------------------------------------------

    def _drop_idp(self, sid: str) -> None:
        self._idp.pop(sid, None)
        self._idp_leases.pop(sid, None)

    async def save_idp_tokens(self, record: IdpTokenRecord) -> None:
        self._idp[record.sid] = record

    async def get_idp_tokens(self, sid: str) -> IdpTokenRecord | None:
        return self._idp.get(sid)

    async def replace_idp_tokens(self, sid: str, *, expected: str, sealed: str) -> bool:
        current = self._idp.get(sid)
        if current is None or current.sealed != expected:
            return False
        self._idp[sid] = dataclasses.replace(current, sealed=sealed)
        self._idp_leases.pop(sid, None)
        return True

    async def lease_idp_refresh(self, sid: str, *, holder: str, now: float, until: float) -> bool:
        lease = self._idp_leases.get(sid)
        if lease is not None and lease[1] > now:
            return False
        self._idp_leases[sid] = (holder, until)
        return True

    async def release_idp_refresh(self, sid: str, *, holder: str) -> None:
        lease = self._idp_leases.get(sid)
        if lease is not None and lease[0] == holder:
            del self._idp_leases[sid]

    async def find_idp_sessions(
        self, provider: str, *, now: float, idp_sid: str | None = None, subject: str | None = None
    ) -> list[str]:
        if idp_sid is None and subject is None:
            raise ValueError("find_idp_sessions needs an IdP session id or a subject")
        found = []
        for sid, tokens in self._idp.items():
            session = self._sessions.get(sid)
            if (
                tokens.provider == provider
                and (idp_sid is None or tokens.idp_sid == idp_sid)
                and (subject is None or tokens.subject == subject)
                and session is not None
                and session.is_usable(now)
            ):
                found.append(sid)
        return sorted(found)

    async def remember_logout_token(self, provider: str, jti: str, *, now: float, until: float) -> bool:
        seen = self._logout_jtis.get((provider, jti))
        if seen is not None and seen > now:
            return False
        self._logout_jtis[(provider, jti)] = until
        return True
