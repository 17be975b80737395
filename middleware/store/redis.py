"""Redis backend, for several gateway machines sharing one session state.

Each session is a hash that expires by itself at the session's absolute expiry, so there is nothing to
purge. Rotation, revocation and attempt counting are Lua scripts: each runs atomically on the server,
which is what makes rotation a true compare-and-swap across machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..errors import StoreError, StoreNotReady
from ..events import Event
from .base import READY_TIMEOUT, SUPERSEDED_LIMIT, Change, SessionRecord, window_bounds

__all__ = ["RedisStore", "CONNECT_TIMEOUT", "COMMAND_TIMEOUT"]

log = logging.getLogger("frontdesk.store")

# Redis unreachable must cost a request a fraction of a second, then a 503 (never a hang): small timeouts, and
# one immediate retry only (enough to replace a pooled connection that a Redis restart closed). redis-py's own
# default retries ten times with backoff, which turns an outage into seconds of waiting per request.
CONNECT_TIMEOUT = 0.5
COMMAND_TIMEOUT = 1.0
RESUBSCRIBE_BACKOFF = (0.05, 2.0)  # the change feed reconnects after this, doubling up to the cap

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
# Raise the revocation epoch and announce the change in one step, so no announced epoch is ever unread. One key
# (the epoch): a Cluster runs it on that key's node, and PUBLISH reaches every node's subscribers.
_ANNOUNCE = """
local epoch = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], epoch .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
return epoch
"""


class RedisStore:
    def __init__(self, url: str, *, prefix: str = "frontdesk:") -> None:
        self.url = url
        self.prefix = prefix
        self._redis: Redis | None = None

    async def open(self) -> None:
        if self._redis is not None:
            return
        client = Redis.from_url(
            self.url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            retry=Retry(NoBackoff(), 1),
        )
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

    @property
    def _epoch_key(self) -> str:
        return f"{self.prefix}revocation_epoch"

    @property
    def changes_channel(self) -> str:
        """The pub/sub channel every change is announced on (``<epoch or -> <sid|user|all> <id>``)."""
        return f"{self.prefix}changes"

    async def _announce(self, kind: str, ident: str) -> None:
        await self._eval(_ANNOUNCE, [self._epoch_key], [self.changes_channel, kind, ident])

    async def revocation_epoch(self) -> int:
        try:
            return int(await self.redis.get(self._epoch_key) or 0)
        except RedisError as exc:
            raise StoreError(f"session store read failed: {exc}") from exc

    async def follow_changes(self, deliver: Callable[[Change], None]) -> None:
        backoff = RESUBSCRIBE_BACKOFF[0]
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.changes_channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    backoff = RESUBSCRIBE_BACKOFF[0]  # a healthy read: the next drop starts over
                    if message is not None and message.get("type") == "message":
                        change = _parse_change(str(message["data"]))
                        if change is not None:
                            deliver(change)
            except (RedisError, OSError) as exc:
                log.warning("the session store's change feed dropped (%s); resubscribing in %.2f s", exc, backoff)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RESUBSCRIBE_BACKOFF[1])

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
        rotated = bool(await self._eval(_ROTATE, [self._session_key(sid)], args))
        if rotated:
            # Other workers drop their cached row now rather than at its trust deadline (no epoch: a rotation
            # revokes nothing, so a lost announcement costs only that delay).
            try:
                await self.redis.publish(self.changes_channel, f"- sid {sid}")
            except RedisError as exc:
                log.warning("could not announce a rotation: %s", exc)
        return rotated

    async def revoke_session(self, sid: str, *, now: float, reason: str) -> None:
        await self._eval(
            _REVOKE, [self._session_key(sid), self._revoked_key(sid)], [repr(now), repr(now + 86400.0), reason]
        )
        await self._announce("sid", sid)  # after the write: whoever reads the new epoch also reads the revocation

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
        await self._announce("user", user_id)
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
            async for key in self.redis.scan_iter(match=f"{self.prefix}revoked:*", count=500):
                value = await self.redis.get(key)
                if value is not None and float(value) <= now:
                    removed += await self.redis.delete(key)
        except RedisError as exc:
            raise StoreError(f"session store purge failed: {exc}") from exc
        return removed


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


def _parse_change(data: str) -> Change | None:
    """``"<epoch|-> <sid|user|all> <id>"`` as :data:`_ANNOUNCE` writes it; None for anything else."""
    epoch, _, rest = data.partition(" ")
    kind, _, ident = rest.partition(" ")
    number = int(epoch) if epoch.isdigit() else None
    if kind == "sid" and ident:
        return Change(number, sid=ident)
    if kind == "user" and ident:
        return Change(number, user_id=ident)
    if kind == "all":
        return Change(number)
    return None


def _redacted(url: str) -> str:
    """The URL without its password, for log lines."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{userinfo.split(':')[0]}:***@{host}" if at else url
