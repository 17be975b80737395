"""Redis backend, for several gateway machines sharing one session state (one server, Sentinel or Cluster).

Each session is a hash that expires by itself at the session's absolute expiry, so there is nothing to
purge. Rotation, revocation and attempt counting are Lua scripts: each runs atomically on the server,
which is what makes rotation a true compare-and-swap across machines.

Key layout (``P`` is the prefix, ``frontdesk:`` by default). Every script and every transaction touches keys
of ONE hash tag (the part in braces), so each runs on one slot and the same code works on a Redis Cluster:

==========================================  ===================================================================
``P session:{SID}``                         hash: the session row; expires at the session's absolute end
``P revoked:{SID}``                         string: the revocation (value: the session's natural expiry)
``P user:{USER_ID}``                        set: the user's session ids (to revoke or list them); its own slot,
                                            written before the session, so every session is in its user's set
``{P attempts}:KEY``                        hash {start, count}: a login-attempt counter (all in one slot: one
                                            script counts a user's and an address's attempts together)
``{P audit}:seq``, ``{P audit}:all``,       the audit trail: a counter and sorted sets by time (all in one
``{P audit}:user:NAME``                     slot: one script appends an event to both sets)
``{P users}:rows``, ``{P users}:hashes``    the gateway's users (``frontdesk.gateway.redis_users``)
``{P revocations}:epoch``                   counter: raised by every revocation, after it is written, by the
                                            script that also announces it on the channel ``P changes``
                                            (``middleware/invalidation.py``)
``P idp:{SID}``, ``P idp-lease:{SID}``      hash: a session's sealed IdP tokens; string: the one worker's
                                            refresh lease (the session's slot: replaced and released together)
``P idp-sub:{N:PROVIDER:SUB}``,             sets of session ids by IdP subject / IdP session (each its own
``P idp-sid:{N:PROVIDER:SID}``              slot, written before the tokens; lookups re-check the tokens)
``P logout-jti:{N:PROVIDER:JTI}``           string: a back-channel logout token already used (replay refusal)
==========================================  ===================================================================

Cross-session work (revoke or list a user's sessions) reads the user's set, then runs one single-slot script
or read per session: no script spans slots. Versions before the hash tags wrote ``P session:SID`` and friends;
:meth:`RedisStore.open` renames such keys once, on a single server (a cluster never ran those versions).
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
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from ..errors import StoreError, StoreNotReady
from ..events import Event
from .base import READY_TIMEOUT, SUPERSEDED_LIMIT, Change, IdpTokenRecord, SessionRecord, window_bounds
from .redis_connection import connect_redis
from .redis_urls import RedisOptions, parse_redis_url, redacted

__all__ = ["RedisStore"]

log = logging.getLogger("frontdesk.store")

RESUBSCRIBE_BACKOFF = (0.05, 2.0)  # the change feed reconnects after this, doubling up to the cap

_LAYOUT = "hash-tags"  # the value of the key ``P layout`` once the keys have today's names

# The per-user index lets a removed user's sessions be found; it lives as long as its longest session. It has
# a slot of its own, so it is written first (by itself): a session is never missing from its user's index.
_INDEX = """
redis.call('SADD', KEYS[1], ARGV[2])
if redis.call('EXPIRETIME', KEYS[1]) < tonumber(ARGV[1]) then redis.call('EXPIREAT', KEYS[1], ARGV[1]) end
return 1
"""
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIREAT', KEYS[1], ARGV[1])
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
# KEYS: the sequence counter, the whole trail, then one user's trail per event that names a user.
# ARGV: per event, its time, its payload and the index in KEYS of its user's trail (0: none). The sequence
# number heads each member: members of one score sort by it, and identical events stay distinct.
_AUDIT = """
local n = #ARGV / 3
local seq = redis.call('INCRBY', KEYS[1], n) - n
for i = 0, n - 1 do
  local member = string.format('%020d', seq + i + 1) .. ARGV[i * 3 + 2]
  redis.call('ZADD', KEYS[2], ARGV[i * 3 + 1], member)
  local user = tonumber(ARGV[i * 3 + 3])
  if user > 0 then redis.call('ZADD', KEYS[user], ARGV[i * 3 + 1], member) end
end
return n
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
    def __init__(self, url: str, *, prefix: str = "frontdesk:", options: RedisOptions | None = None) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("a Redis key prefix must not contain { or }: they would change the keys' hash slot")
        parse_redis_url(url)  # a bad URL is refused here, with the reason, not at the first command
        self.url = url
        self.prefix = prefix
        self.options = options
        self._redis: Redis | RedisCluster | None = None
        self._scripts: dict[str, AsyncScript] = {}  # by body, bound to the client that registered them

    async def open(self) -> None:
        if self._redis is not None:
            return
        client = connect_redis(self.url, self.options)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreError(f"cannot reach the session store at {redacted(self.url)}: {exc}") from exc
        self._redis = client
        if not isinstance(client, RedisCluster):
            await self._adopt_untagged_keys()

    async def _adopt_untagged_keys(self) -> None:
        """Rename the keys a version without hash tags wrote (``P session:SID``) to today's names, once (a
        marker key says it is done): the sessions, revocations and audit trail carry over an upgrade. Workers
        starting together may each try; RENAMENX lets the first one win."""
        p = self.prefix
        marker = f"{p}layout"
        moves: list[tuple[str, Callable[[str], str]]] = [(f"{p}session:", self._session_key)]
        moves += [(f"{p}revoked:", self._revoked_key)]
        moves += [(f"{p}user:", self._user_key), (f"{p}audit:user:", self._audit_key)]
        try:
            if await self.redis.get(marker) == _LAYOUT:
                return
            for old_name, new_name in ((f"{p}audit", self._audit_key()), (f"{p}audit:seq", self._audit_seq_key)):
                await self._rename(old_name, new_name)
            for head, name in moves:
                async for key in self.redis.scan_iter(match=f"{head}*", count=500):
                    if "{" not in str(key):
                        await self._rename(str(key), name(str(key)[len(head) :]))
            await self.redis.set(marker, _LAYOUT)
        except RedisError as exc:
            raise StoreError(f"session store migration failed: {exc}") from exc

    async def _rename(self, old: str, new: str) -> None:
        with contextlib.suppress(ResponseError):  # gone: another worker renamed it first (or it never was)
            await self.redis.renamenx(old, new)

    async def close(self) -> None:
        if self._redis is not None:
            client, self._redis = self._redis, None
            self._scripts.clear()
            await client.aclose()

    async def check_ready(self) -> None:
        if self._redis is None:
            raise StoreNotReady("the session store is not open")
        try:
            await asyncio.wait_for(self._redis.ping(), READY_TIMEOUT)
        except TimeoutError:
            raise StoreNotReady(
                f"the Redis store did not answer within {READY_TIMEOUT:g} s", redacted(self.url)
            ) from None
        except (RedisError, OSError) as exc:
            raise StoreNotReady("the Redis store does not answer", f"{redacted(self.url)}: {exc}") from None

    async def server_time(self) -> float:
        """The Redis server's clock (``TIME``) in seconds: the one clock every instance sharing this store can
        compare its own with (``frontdesk doctor`` does)."""
        try:
            seconds, micros = await self.redis.time()
        except RedisError as exc:
            raise StoreError(f"session store command failed: {exc}") from exc
        return float(seconds) + float(micros) / 1e6

    @property
    def redis(self) -> Redis | RedisCluster:
        if self._redis is None:
            raise StoreError("the session store is not open")
        return self._redis

    # The key layout (see the module docstring): braces mark the hash tag, the part Redis Cluster hashes.

    def _session_key(self, sid: str) -> str:
        return f"{self.prefix}session:{{{sid}}}"

    def _revoked_key(self, sid: str) -> str:
        return f"{self.prefix}revoked:{{{sid}}}"

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}user:{{{user_id}}}"

    @property
    def _epoch_key(self) -> str:
        return f"{{{self.prefix}revocations}}:epoch"

    @property
    def changes_channel(self) -> str:
        """The pub/sub channel every change is announced on (``<epoch or -> <sid|user|all> <id>``, and
        ``- sid <sid> <new jti>`` for a rotation)."""
        return f"{self.prefix}changes"

    async def _announce(self, kind: str, ident: str) -> None:
        await self.run_script(_ANNOUNCE, [self._epoch_key], [self.changes_channel, kind, ident])

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

    def _attempts_key(self, key: str) -> str:
        return f"{{{self.prefix}attempts}}:{key}"

    def _audit_key(self, user: str | None = None) -> str:
        return f"{{{self.prefix}audit}}:all" if user is None else f"{{{self.prefix}audit}}:user:{user}"

    @property
    def _audit_seq_key(self) -> str:
        return f"{{{self.prefix}audit}}:seq"

    async def run_script(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script atomically on the server (every key must share one hash tag: one slot). The
        gateway keeps its users in this store this way.

        Sent as EVALSHA (the script's body only the first time each server sees it, then its digest): a login
        runs five scripts, and their bodies would otherwise cross the network and be hashed on every call."""
        runner = self._scripts.get(script)
        if runner is None:
            runner = self._scripts[script] = self.redis.register_script(script)
        try:
            return await runner(keys=keys, args=args)
        except RedisError as exc:
            raise StoreError(f"session store command failed: {exc}") from exc

    async def create_session(self, record: SessionRecord) -> None:
        fields: list[Any] = []
        for name, value in _to_hash(record).items():
            fields += [name, value]
        expires = math.ceil(record.expires_at)
        await self.run_script(_INDEX, [self._user_key(record.user_id)], [expires, record.sid])
        created = await self.run_script(_CREATE, [self._session_key(record.sid)], [expires, *fields])
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
        rotated = bool(await self.run_script(_ROTATE, [self._session_key(sid)], args))
        if rotated:
            # Other workers drop their cached row now rather than at its trust deadline (no epoch: a rotation
            # revokes nothing, so a lost announcement costs only that delay). The new jti lets the worker that
            # rotated keep the row and token it has just made.
            try:
                await self.redis.publish(self.changes_channel, f"- sid {sid} {new_jti}")
            except RedisError as exc:
                log.warning("could not announce a rotation: %s", exc)
        return rotated

    async def revoke_session(self, sid: str, *, now: float, reason: str) -> None:
        await self.run_script(
            _REVOKE, [self._session_key(sid), self._revoked_key(sid)], [repr(now), repr(now + 86400.0), reason]
        )
        await self._delete(self._idp_key(sid), self._idp_lease_key(sid))  # a revoked session needs no IdP tokens
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
        keys = [self._attempts_key(key) for key, _ in limits]
        refused = int(await self.run_script(_ATTEMPT, keys, [repr(start), math.ceil(end), *(n for _, n in limits)]))
        return limits[refused - 1][0] if refused else None

    async def reset(self, key: str) -> None:
        try:
            await self.redis.delete(self._attempts_key(key))
        except RedisError as exc:
            raise StoreError(f"session store write failed: {exc}") from exc

    # The audit trail: one sorted set by time, and one per user for `frontdesk audit --user`.

    async def record_audit(self, events: Sequence[Event]) -> None:
        if not events:
            return
        keys = [self._audit_seq_key, self._audit_key()]
        args: list[Any] = []
        for event in events:
            user = 0
            if event.user is not None:
                keys.append(self._audit_key(event.user))
                user = len(keys)
            args += [repr(event.at), _audit_payload(event), user]
        await self.run_script(_AUDIT, keys, args)

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
            async for key in self.redis.scan_iter(match=self._audit_key("*"), count=500):
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
                    sid = str(key).removeprefix(f"{self.prefix}session:").removeprefix("{").removesuffix("}")
                    await self._delete(self._idp_key(sid), self._idp_lease_key(sid))  # one slot: the session's tag
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
        return f"{self.prefix}idp:{{{sid}}}"

    def _idp_lease_key(self, sid: str) -> str:
        return f"{self.prefix}idp-lease:{{{sid}}}"

    def _idp_index_key(self, provider: str, kind: str, value: str) -> str:
        return f"{self.prefix}idp-{kind}:{{{len(provider)}:{provider}:{value}}}"  # the length keeps names apart

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
        return bool(await self.run_script(_REPLACE_IDP, keys, [expected, sealed]))

    async def lease_idp_refresh(self, sid: str, *, holder: str, now: float, until: float) -> bool:
        return bool(await self.run_script(_CLAIM_UNTIL, [self._idp_lease_key(sid)], [repr(now), repr(until), holder]))

    async def release_idp_refresh(self, sid: str, *, holder: str) -> None:
        await self.run_script(_RELEASE_LEASE, [self._idp_lease_key(sid)], [holder])

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
        key = f"{self.prefix}logout-jti:{{{len(provider)}:{provider}:{jti}}}"
        return bool(await self.run_script(_CLAIM_UNTIL, [key], [repr(now), repr(until), "seen"]))


def _idp_from_hash(sid: str, data: dict[str, str]) -> IdpTokenRecord:
    return IdpTokenRecord(
        sid=sid,
        provider=data["provider"],
        subject=data["subject"],
        idp_sid=data["idp_sid"] or None,
        sealed=data["sealed"],
        expires_at=float(data["expires_at"]),
    )


def _audit_payload(event: Event) -> str:
    # The script puts the sequence number first (see _AUDIT).
    fields = [event.kind, repr(event.at), event.user, event.session, event.address, event.user_agent]
    return json.dumps([*fields, event.reason, event.actor])


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
    """``"<epoch|-> <sid|user|all> <id>"`` as :data:`_ANNOUNCE` writes it, or ``"- sid <sid> <new jti>"`` for a
    rotation (:meth:`RedisStore.rotate`); None for anything else."""
    epoch, _, rest = data.partition(" ")
    kind, _, ident = rest.partition(" ")
    number = int(epoch) if epoch.isdigit() else None
    if kind == "sid" and ident:
        sid, _, jti = ident.partition(" ")  # session ids and jtis are URL-safe base64: never a space
        return Change(number, sid=sid, jti=jti or None)
    if kind == "user" and ident:
        return Change(number, user_id=ident)
    if kind == "all":
        return Change(number)
    return None

