"""Redis backend, for several gateway machines sharing one session state.

Each session is a hash that expires by itself at the session's absolute expiry, so there is nothing to
purge. Rotation, revocation and attempt counting are Lua scripts: each runs atomically on the server,
which is what makes rotation a true compare-and-swap across machines.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..errors import StoreError, StoreNotReady
from ..events import Event
from .base import READY_TIMEOUT, SUPERSEDED_LIMIT, IdpTokenRecord, SessionRecord, window_bounds

__all__ = ["RedisStore"]

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIREAT', KEYS[1], ARGV[1])
-- The per-user index lets a removed user's sessions be found; it lives as long as its longest session.
redis.call('SADD', KEYS[2], ARGV[2])
if redis.call('EXPIRETIME', KEYS[2]) < tonumber(ARGV[1]) then redis.call('EXPIREAT', KEYS[2], ARGV[1]) end
return 1
"""
# The superseded list is JSON [[jti, "superseded_at"], ...] (times as strings: cjson would round them); the
# filtering and the cap mirror base.after_rotation.
_ROTATE = """
local cur = redis.call('HMGET', KEYS[1], 'current_jti', 'revoked_at', 'superseded', 'previous_jti', 'rotated_at')
if cur[1] ~= ARGV[1] or (cur[2] and cur[2] ~= '') then return 0 end
local old = {}
if cur[3] and cur[3] ~= '' then
  old = cjson.decode(cur[3])
elseif cur[4] and cur[4] ~= '' then
  old = {{cur[4], cur[5]}}  -- a session written before the list existed: its previous token
end
local now, keep = tonumber(ARGV[3]), tonumber(ARGV[5])
local list = {}
for _, entry in ipairs(old) do
  if now - tonumber(entry[2]) < keep then table.insert(list, entry) end
end
table.insert(list, {ARGV[1], ARGV[3]})
local limit = tonumber(ARGV[6])
while #list > limit do table.remove(list, 1) end
redis.call('HSET', KEYS[1], 'previous_jti', ARGV[1], 'current_jti', ARGV[2], 'rotated_at', ARGV[3],
           'last_seen', ARGV[3], 'idle_expires_at', ARGV[4], 'superseded', cjson.encode(list))
return 1
"""
_REVOKE = """
local expires = ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 1 then
  local revoked = redis.call('HGET', KEYS[1], 'revoked_at')
  if not revoked or revoked == '' then redis.call('HSET', KEYS[1], 'revoked_at', ARGV[1]) end
  expires = redis.call('HGET', KEYS[1], 'expires_at')
end
-- The value is the revocation's natural expiry, so purge can judge it against any clock.
if redis.call('SET', KEYS[2], expires, 'NX') then
  redis.call('EXPIREAT', KEYS[2], math.ceil(tonumber(expires)))
end
return 1
"""
# KEYS: the counters; ARGV: window start, window end (whole seconds), then one limit per key. Refused (the index
# of the first counter at its limit) before anything is written; otherwise every counter counts one.
_ATTEMPT = """
for i, key in ipairs(KEYS) do
  local data = redis.call('HMGET', key, 'start', 'count')
  if data[1] == ARGV[1] and tonumber(data[2]) >= tonumber(ARGV[2 + i]) then return i end
end
for _, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'start') == ARGV[1] then
    redis.call('HINCRBY', key, 'count', 1)
  else
    redis.call('HSET', key, 'start', ARGV[1], 'count', 1)
  end
  redis.call('EXPIREAT', key, ARGV[2])
end
return 0
"""
# An IdP token hash: compare-and-set on its sealed field; a successful write also ends the refresh lease.
_REPLACE_IDP = """
if redis.call('HGET', KEYS[1], 'sealed') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'sealed', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""
# A lease or a remembered jti: the value is "until" (then the holder), judged against the caller's clock as on
# the other backends; the key also expires by itself at "until".
_CLAIM_UNTIL = """
local held = redis.call('GET', KEYS[1])
if held and tonumber(string.match(held, '^[^ ]+')) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2] .. ' ' .. ARGV[3])
redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""
_RELEASE_LEASE = """
local held = redis.call('GET', KEYS[1])
if held and string.match(held, ' (.*)$') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisStore:
    def __init__(self, url: str, *, prefix: str = "frontdesk:") -> None:
        self.url = url
        self.prefix = prefix
        self._redis: Redis | None = None

    async def open(self) -> None:
        if self._redis is not None:
            return
        client = Redis.from_url(self.url, decode_responses=True)
        try:
            await client.ping()
        except RedisError as exc:
            await client.aclose()
            raise StoreError(f"cannot reach the session store at {_redacted(self.url)}: {exc}") from exc
        self._redis = client

    async def close(self) -> None:
        if self._redis is not None:
            client, self._redis = self._redis, None
            await client.aclose()

    async def check_ready(self) -> None:
        if self._redis is None:
            raise StoreNotReady("the session store is not open")
        try:
            await asyncio.wait_for(self._redis.ping(), READY_TIMEOUT)
        except TimeoutError:
            raise StoreNotReady(
                f"the Redis store did not answer within {READY_TIMEOUT:g} s", _redacted(self.url)
            ) from None
        except (RedisError, OSError) as exc:
            raise StoreNotReady("the Redis store does not answer", f"{_redacted(self.url)}: {exc}") from None

    async def server_time(self) -> float:
        """The Redis server's clock (``TIME``) in seconds: the one clock every instance sharing this store can
        compare its own with (``frontdesk doctor`` does)."""
        try:
            seconds, micros = await self.redis.time()
        except RedisError as exc:
            raise StoreError(f"session store command failed: {exc}") from exc
        return float(seconds) + float(micros) / 1e6

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise StoreError("the session store is not open")
        return self._redis

    def _session_key(self, sid: str) -> str:
        return f"{self.prefix}session:{sid}"

    def _revoked_key(self, sid: str) -> str:
        return f"{self.prefix}revoked:{sid}"

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}user:{user_id}"

    async def _eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.redis.eval(script, len(keys), *keys, *args)
        except RedisError as exc:
            raise StoreError(f"session store command failed: {exc}") from exc

    async def create_session(self, record: SessionRecord) -> None:
        fields: list[Any] = []
        for name, value in _to_hash(record).items():
            fields += [name, value]
        created = await self._eval(
            _CREATE,
            [self._session_key(record.sid), self._user_key(record.user_id)],
            [math.ceil(record.expires_at), record.sid, *fields],
        )
        if not created:
            raise ValueError("session id already exists")

    async def get_session(self, sid: str) -> SessionRecord | None:
        try:
            data = await self.redis.hgetall(self._session_key(sid))
        except RedisError as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        return _from_hash(sid, {str(k): str(v) for k, v in data.items()}) if data else None

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
        args = [expected_jti, new_jti, repr(now), repr(idle_expires_at), repr(remember_for), SUPERSEDED_LIMIT]
        return bool(await self._eval(_ROTATE, [self._session_key(sid)], args))

    async def revoke_session(self, sid: str, *, now: float, reason: str) -> None:
        await self._eval(
            _REVOKE, [self._session_key(sid), self._revoked_key(sid)], [repr(now), repr(now + 86400.0), reason]
        )
        await self._delete(self._idp_key(sid), self._idp_lease_key(sid))  # a revoked session needs no IdP tokens

    async def revoke_user(self, user_id: str, *, now: float, reason: str) -> int:
        try:
            sids = await self.redis.smembers(self._user_key(user_id))
        except RedisError as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        revoked = 0
        for sid in sids:
            record = await self.get_session(str(sid))
            if record is not None and record.revoked_at is None:
                await self.revoke_session(record.sid, now=now, reason=reason)
                revoked += 1
        return revoked

    async def is_revoked(self, sid: str) -> bool:
        try:
            return bool(await self.redis.exists(self._revoked_key(sid)))
        except RedisError as exc:
            raise StoreError(f"session store read failed: {exc}") from exc

    async def list_sessions(self, user_id: str, *, now: float) -> list[SessionRecord]:
        # The per-user index may still name sessions that expired (their hashes are gone): skipped here.
        try:
            sids = sorted(str(sid) for sid in await self.redis.smembers(self._user_key(user_id)))
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in sids:
                    pipe.hgetall(self._session_key(sid))
                hashes = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        found = [(sid, data) for sid, data in zip(sids, hashes, strict=True) if data]
        records = [_from_hash(sid, {str(k): str(v) for k, v in data.items()}) for sid, data in found]
        live = [r for r in records if r.user_id == user_id and r.is_usable(now)]
        return sorted(live, key=lambda r: (r.created_at, r.sid))

    async def attempt(self, limits: Sequence[tuple[str, int]], *, window: float, now: float) -> str | None:
        # Counters expire by themselves at their window's end: nothing else to bound.
        start, end = window_bounds(now, window)
        keys = [f"{self.prefix}attempts:{key}" for key, _ in limits]
        refused = int(await self._eval(_ATTEMPT, keys, [repr(start), math.ceil(end), *(n for _, n in limits)]))
        return limits[refused - 1][0] if refused else None

    async def reset(self, key: str) -> None:
        try:
            await self.redis.delete(f"{self.prefix}attempts:{key}")
        except RedisError as exc:
            raise StoreError(f"session store write failed: {exc}") from exc

    # The audit trail: one sorted set by time, and one per user for `frontdesk audit --user`.

    def _audit_key(self, user: str | None = None) -> str:
        return f"{self.prefix}audit" if user is None else f"{self.prefix}audit:user:{user}"

    async def record_audit(self, events: Sequence[Event]) -> None:
        if not events:
            return
        try:
            last = int(await self.redis.incrby(f"{self.prefix}audit:seq", len(events)))
            async with self.redis.pipeline(transaction=True) as pipe:
                for seq, event in enumerate(events, start=last - len(events) + 1):
                    member = _audit_member(seq, event)
                    pipe.zadd(self._audit_key(), {member: event.at})
                    if event.user is not None:
                        pipe.zadd(self._audit_key(event.user), {member: event.at})
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"session store write failed: {exc}") from exc

    async def audit(
        self, *, user: str | None = None, since: float | None = None, limit: int | None = None
    ) -> list[Event]:
        low = "-inf" if since is None else repr(since)
        try:
            members: list[Any]
            if limit is None:
                members = list(await self.redis.zrangebyscore(self._audit_key(user), low, "+inf"))
            else:
                newest = await self.redis.zrevrangebyscore(self._audit_key(user), "+inf", low, start=0, num=limit)
                members = list(reversed(newest))
        except RedisError as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        return [_audit_event(str(m)) for m in members]

    async def purge_audit(self, *, before: float) -> int:
        cut = f"({before!r}"  # exclusive: an event at exactly ``before`` stays, as on the other backends
        try:
            removed = int(await self.redis.zremrangebyscore(self._audit_key(), "-inf", cut))
            async for key in self.redis.scan_iter(match=f"{self.prefix}audit:user:*", count=500):
                await self.redis.zremrangebyscore(key, "-inf", cut)
        except RedisError as exc:
            raise StoreError(f"session store purge failed: {exc}") from exc
        return removed

    async def count_live_sessions(self, *, now: float) -> int:
        """A SCAN over the session hashes, read in pipelined batches: O(sessions), so the gateway samples it
        only every few seconds, never per request."""
        live = 0
        batch: list[Any] = []
        try:
            async for key in self.redis.scan_iter(match=f"{self.prefix}session:*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    live += await self._count_usable(batch, now)
                    batch = []
            if batch:
                live += await self._count_usable(batch, now)
        except RedisError as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        return live

    async def _count_usable(self, keys: list[Any], now: float) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, ["revoked_at", "expires_at", "idle_expires_at"])
            rows = await pipe.execute()
        return sum(
            1
            for revoked, expires, idle in rows
            if not revoked and expires is not None and idle is not None and min(float(expires), float(idle)) > now
        )

    async def purge(self, *, now: float) -> int:
        """Every key also carries a Redis expiry at its absolute end; this removes idle-expired sessions and
        revocations sooner, judged against ``now`` like the other backends."""
        removed = 0
        try:
            async for key in self.redis.scan_iter(match=f"{self.prefix}session:*", count=500):
                ends = await self.redis.hmget(key, ["expires_at", "idle_expires_at"])
                if all(e is None for e in ends) or min(float(e) for e in ends if e is not None) <= now:
                    removed += await self.redis.delete(key)
                    await self.redis.delete(self._idp_key(str(key).removeprefix(f"{self.prefix}session:")))
            async for key in self.redis.scan_iter(match=f"{self.prefix}revoked:*", count=500):
                value = await self.redis.get(key)
                if value is not None and float(value) <= now:
                    removed += await self.redis.delete(key)
        except RedisError as exc:
            raise StoreError(f"session store purge failed: {exc}") from exc
        return removed


    # --- an identity provider's tokens: a hash per session, and per-provider sets of sids by IdP session and
    # by subject (they may name ended sessions: every lookup checks the session itself) ---------------------

    def _idp_key(self, sid: str) -> str:
        return f"{self.prefix}idp:{sid}"

    def _idp_lease_key(self, sid: str) -> str:
        return f"{self.prefix}idp-lease:{sid}"

    def _idp_index_key(self, provider: str, kind: str, value: str) -> str:
        return f"{self.prefix}idp-{kind}:{len(provider)}:{provider}:{value}"  # the length keeps names apart

    async def _delete(self, *keys: str) -> None:
        try:
            await self.redis.delete(*keys)
        except RedisError as exc:
            raise StoreError(f"session store write failed: {exc}") from exc

    async def save_idp_tokens(self, record: IdpTokenRecord) -> None:
        expires = math.ceil(record.expires_at)
        indexes = [self._idp_index_key(record.provider, "sub", record.subject)]
        if record.idp_sid is not None:
            indexes.append(self._idp_index_key(record.provider, "sid", record.idp_sid))
        fields = {
            "provider": record.provider,
            "subject": record.subject,
            "idp_sid": record.idp_sid or "",
            "sealed": record.sealed,
            "expires_at": repr(record.expires_at),
        }
        try:
            # The indexes first: a lookup that finds a sid checks its hash, so a half-done save finds nothing.
            async with self.redis.pipeline(transaction=False) as pipe:
                for index in indexes:
                    pipe.sadd(index, record.sid)
                    pipe.expireat(index, expires, gt=True)
                    pipe.expireat(index, expires, nx=True)
                pipe.delete(self._idp_key(record.sid))
                pipe.hset(self._idp_key(record.sid), items=[part for pair in fields.items() for part in pair])
                pipe.expireat(self._idp_key(record.sid), expires)
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"session store write failed: {exc}") from exc

    async def get_idp_tokens(self, sid: str) -> IdpTokenRecord | None:
        try:
            data = await self.redis.hgetall(self._idp_key(sid))
        except RedisError as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        return _idp_from_hash(sid, {str(k): str(v) for k, v in data.items()}) if data else None

    async def replace_idp_tokens(self, sid: str, *, expected: str, sealed: str) -> bool:
        keys = [self._idp_key(sid), self._idp_lease_key(sid)]
        return bool(await self._eval(_REPLACE_IDP, keys, [expected, sealed]))

    async def lease_idp_refresh(self, sid: str, *, holder: str, now: float, until: float) -> bool:
        return bool(await self._eval(_CLAIM_UNTIL, [self._idp_lease_key(sid)], [repr(now), repr(until), holder]))

    async def release_idp_refresh(self, sid: str, *, holder: str) -> None:
        await self._eval(_RELEASE_LEASE, [self._idp_lease_key(sid)], [holder])

    async def find_idp_sessions(
        self, provider: str, *, now: float, idp_sid: str | None = None, subject: str | None = None
    ) -> list[str]:
        if idp_sid is None and subject is None:
            raise ValueError("find_idp_sessions needs an IdP session id or a subject")
        index = (
            self._idp_index_key(provider, "sid", idp_sid)
            if idp_sid is not None
            else self._idp_index_key(provider, "sub", str(subject))
        )
        try:
            candidates = sorted(str(sid) for sid in await self.redis.smembers(index))
        except RedisError as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        found = []
        for sid in candidates:
            tokens = await self.get_idp_tokens(sid)
            if tokens is None or tokens.provider != provider:
                continue
            if idp_sid is not None and tokens.idp_sid != idp_sid:
                continue
            if subject is not None and tokens.subject != subject:
                continue
            session = await self.get_session(sid)
            if session is not None and session.is_usable(now):
                found.append(sid)
        return found

    async def remember_logout_token(self, provider: str, jti: str, *, now: float, until: float) -> bool:
        key = f"{self.prefix}logout-jti:{len(provider)}:{provider}:{jti}"
        return bool(await self._eval(_CLAIM_UNTIL, [key], [repr(now), repr(until), "seen"]))


def _idp_from_hash(sid: str, data: dict[str, str]) -> IdpTokenRecord:
    return IdpTokenRecord(
        sid=sid,
        provider=data["provider"],
        subject=data["subject"],
        idp_sid=data["idp_sid"] or None,
        sealed=data["sealed"],
        expires_at=float(data["expires_at"]),
    )


def _audit_member(seq: int, event: Event) -> str:
    # The sequence number first: members of one score sort by it, so events of one instant keep their order,
    # and identical events stay distinct members.
    fields = [event.kind, repr(event.at), event.user, event.session, event.address, event.user_agent]
    return f"{seq:020d}" + json.dumps([*fields, event.reason, event.actor])


def _audit_event(member: str) -> Event:
    kind, at, user, session, address, agent, reason, actor = json.loads(member[20:])
    return Event(kind, float(at), user, session, address, agent, reason, actor)


def _to_hash(record: SessionRecord) -> dict[str, str]:
    return {
        "user_id": record.user_id,
        "username": record.username,
        "created_at": repr(record.created_at),
        "last_seen": repr(record.last_seen),
        "expires_at": repr(record.expires_at),
        "idle_expires_at": repr(record.idle_expires_at),
        "remember": "1" if record.remember else "0",
        "current_jti": record.current_jti,
        "previous_jti": record.previous_jti or "",
        "rotated_at": repr(record.rotated_at),
        "revoked_at": "" if record.revoked_at is None else repr(record.revoked_at),
        "superseded": json.dumps([[jti, repr(at)] for jti, at in record.superseded]),
        "client_address": record.client_address or "",
        "user_agent": record.user_agent or "",
    }


def _from_hash(sid: str, data: dict[str, str]) -> SessionRecord:
    return SessionRecord(
        sid=sid,
        user_id=data["user_id"],
        username=data["username"],
        created_at=float(data["created_at"]),
        last_seen=float(data["last_seen"]),
        expires_at=float(data["expires_at"]),
        idle_expires_at=float(data["idle_expires_at"]),
        remember=data["remember"] == "1",
        current_jti=data["current_jti"],
        previous_jti=data["previous_jti"] or None,
        rotated_at=float(data["rotated_at"]),
        revoked_at=float(data["revoked_at"]) if data.get("revoked_at") else None,
        superseded=_superseded(data),
        client_address=data.get("client_address") or None,  # absent in sessions written before "your devices"
        user_agent=data.get("user_agent") or None,
    )


def _superseded(data: dict[str, str]) -> tuple[tuple[str, float], ...]:
    raw = data.get("superseded")
    if not raw:  # written before the list existed (SessionRecord.superseded_at falls back to previous_jti)
        return ()
    entries = json.loads(raw)
    # cjson writes an empty Lua table as {}: an empty list either way.
    return tuple((str(jti), float(at)) for jti, at in entries) if isinstance(entries, list) else ()


def _redacted(url: str) -> str:
    """The URL without its password, for log lines."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{userinfo.split(':')[0]}:***@{host}" if at else url
