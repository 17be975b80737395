"""Invalidation instead of polling: the revocation epoch (every backend), Redis announcements, and the engine
trusting its cached rows until invalidated, with a bounded staleness when announcements are lost.

The engine tests are two engines ("workers") over one store and a manual clock; they drive the epoch watch by
calling :meth:`Freshness.check` where the running loop would, so nothing here waits on time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import pytest
from redis.asyncio import Redis
from test_sessions import SETTINGS, cookie_of, make_engine
from test_store import NOW, record

from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import SessionRevoked, StoreError
from frontdesk.middleware.http import error_response
from frontdesk.middleware.invalidation import TRUST_BOUND, Freshness
from frontdesk.middleware.sessions import SessionEngine, SessionSettings
from frontdesk.middleware.store import MemoryStore, Store
from frontdesk.middleware.store.base import Change, CountsRevocations, SessionRecord
from frontdesk.middleware.store.redis import RedisStore
from tests.support.counting_store import CountingRedisStore

# --- the store: every backend keeps the epoch ---------------------------------------------------------------


async def test_every_revocation_raises_the_epoch_and_a_rotation_does_not(store: Store) -> None:
    assert isinstance(store, CountsRevocations)
    assert await store.revocation_epoch() == 0
    await store.create_session(record("a"))
    await store.create_session(record("b"))
    await store.create_session(record("c", user_id="u2"))
    assert await store.rotate("a", expected_jti="j1", new_jti="j2", now=NOW + 1, idle_expires_at=NOW + 600)
    assert await store.revocation_epoch() == 0
    await store.revoke_session("a", now=NOW + 2, reason="logout")
    after_logout = await store.revocation_epoch()
    assert after_logout > 0
    await store.revoke_user("u2", now=NOW + 3, reason="removed")
    assert await store.revocation_epoch() > after_logout


# --- Redis announcements --------------------------------------------------------------------------------


async def _following(store: RedisStore) -> tuple[list[Change], asyncio.Task[None]]:
    heard: list[Change] = []
    task = asyncio.create_task(store.follow_changes(heard.append))
    # Subscribed once a message published now arrives (announcements made before subscribing are not heard).
    for _ in range(200):
        await store.redis.publish(store.changes_channel, "- all -")
        await asyncio.sleep(0.02)
        if heard:
            break
    else:
        pytest.fail("the change feed never subscribed")
    await asyncio.sleep(0.1)  # the probes still in flight
    heard.clear()
    return heard, task


async def _stores(redis_url: str) -> tuple[RedisStore, RedisStore]:
    prefix = f"t{uuid.uuid4().hex}:"
    one, other = RedisStore(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix)
    await one.open()
    await other.open()
    return one, other


async def _until(condition: object, what: str) -> None:
    for _ in range(500):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize("server", ["redis_url", "redis_cluster_url"])
async def test_redis_announces_each_revocation_with_its_epoch_to_every_process(
    server: str, request: pytest.FixtureRequest
) -> None:
    follower, writer = await _stores(request.getfixturevalue(server))
    heard, task = await _following(follower)
    try:
        await writer.create_session(record("a"))
        await writer.create_session(record("b", user_id="u2"))
        await writer.revoke_session("a", now=NOW, reason="logout")
        await writer.revoke_user("u2", now=NOW, reason="removed")
        await _until(lambda: len(heard) >= 3, "three announcements")
        epoch = await writer.revocation_epoch()
        assert heard == [Change(1, sid="a"), Change(2, sid="b"), Change(3, user_id="u2")]
        assert epoch == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await follower.close()
        await writer.close()


async def test_redis_change_feed_resubscribes_after_its_connection_is_killed(redis_url: str) -> None:
    follower, writer = await _stores(redis_url)
    heard, task = await _following(follower)
    admin = Redis.from_url(redis_url, decode_responses=True)
    try:
        killed = await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # type: ignore[no-untyped-call]
        assert killed >= 1
        await writer.create_session(record("a"))

        async def delivered() -> bool:
            await writer.revoke_session("a", now=NOW, reason="logout")  # idempotent; announced each time
            await asyncio.sleep(0.05)
            return any(change.sid == "a" for change in heard)

        for _ in range(100):
            if await delivered():
                break
        else:
            pytest.fail("the change feed never came back after CLIENT KILL TYPE pubsub")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await admin.aclose()
        await follower.close()
        await writer.close()


# --- the engine: trusted until invalidated ------------------------------------------------------------------


class CountingStore(MemoryStore):
    """A memory store that counts session reads and can be made unreachable."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.down = False

    async def get_session(self, sid: str) -> SessionRecord | None:
        if self.down:
            raise StoreError("unreachable (test)")
        self.reads += 1
        return await super().get_session(sid)

    async def revocation_epoch(self) -> int:
        if self.down:
            raise StoreError("unreachable (test)")
        return await super().revocation_epoch()


def fresh(engine: SessionEngine) -> Freshness:
    assert engine.freshness is not None
    return engine.freshness


async def two_workers(
    settings: SessionSettings = SETTINGS,
) -> tuple[CountingStore, ManualClock, SessionEngine, SessionEngine, str]:
    store, clock = CountingStore(), ManualClock(NOW)
    a = make_engine(store, clock, settings)
    b = make_engine(store, clock, settings)
    for engine in (a, b):
        await fresh(engine).check()
    login = await a.login("alice", "correct horse")
    cookie = cookie_of(login.set_cookie)
    await b.grant(cookie)  # b caches the row and an access token
    return store, clock, a, b, cookie


async def test_a_trusted_row_costs_no_store_read_at_steady_state() -> None:
    store, clock, _, b, cookie = await two_workers()
    store.reads = 0
    for _ in range(200):
        clock.advance(0.05)  # 10 s of requests, 20 a second
        if clock() - fresh(b)._confirmed_at >= 0.2:
            await fresh(b).check()  # what the epoch watch does every EPOCH_INTERVAL
        await b.grant(cookie)
    # One read when the row's state_trust (10 s) ran out, none per request.
    assert store.reads <= 1, store.reads


async def test_the_row_of_a_login_is_trusted_when_the_login_is_the_first_call() -> None:
    store, clock = CountingStore(), ManualClock(NOW)
    engine = make_engine(store, clock)
    await fresh(engine).check()  # the watch has confirmed; nothing has been asked of the engine yet
    cookie = cookie_of((await engine.login("alice", "correct horse")).set_cookie)
    store.reads = 0
    for _ in range(10):
        clock.advance(0.2)
        await fresh(engine).check()
        await engine.grant(cookie)
    assert store.reads == 0  # not cached for state_ttl (0.5 s) and read again


async def test_without_the_epoch_watch_rows_are_read_again_every_state_ttl() -> None:
    store, clock = CountingStore(), ManualClock(NOW)
    engine = make_engine(store, clock)
    cookie = cookie_of((await engine.login("alice", "correct horse")).set_cookie)
    store.reads = 0
    for _ in range(20):
        clock.advance(0.5)
        await engine.grant(cookie)
    assert store.reads == 20  # today's contract for a library user who never starts the watch


async def test_an_announced_logout_is_refused_by_the_other_worker_at_once() -> None:
    store, _, a, b, cookie = await two_workers()
    sid = await a.logout(cookie)
    fresh(b).deliver(Change(await store.revocation_epoch(), sid=sid))  # what the change feed calls
    with pytest.raises(SessionRevoked):
        await b.grant(cookie)


async def test_an_unannounced_logout_is_refused_once_the_epoch_is_read() -> None:
    _, clock, a, b, cookie = await two_workers()
    await a.logout(cookie)
    await b.grant(cookie)  # no announcement, no epoch read yet: the trusted row still answers
    clock.advance(0.2)
    await fresh(b).check()  # the epoch moved and nobody told b: everything cached is dropped
    with pytest.raises(SessionRevoked):
        await b.grant(cookie)


async def test_a_stalled_epoch_watch_stops_the_trust_within_the_bound() -> None:
    _, clock, a, b, cookie = await two_workers()
    await b.grant(cookie)  # b has granted this cookie: its row is cached and the grant memoised
    await b.grant(cookie)
    await a.logout(cookie)
    clock.advance(TRUST_BOUND + 0.01)  # the watch never ran again (stalled loop, lost store)
    with pytest.raises(SessionRevoked):
        await b.grant(cookie)


async def test_store_outage_fails_closed_by_default() -> None:
    store, clock, _, b, cookie = await two_workers()
    store.down = True
    clock.advance(0.2)
    with pytest.raises(StoreError):
        await fresh(b).check()
    fresh(b).outage = True  # what the watch records
    clock.advance(TRUST_BOUND)
    with pytest.raises(StoreError):
        await b.grant(cookie)


async def test_store_outage_can_serve_the_access_tokens_already_minted() -> None:
    settings = dataclasses.replace(SETTINGS, serve_cached_on_outage=True)
    store, clock, _, b, cookie = await two_workers(settings)
    minted = await b.grant(cookie)
    store.down = True
    fresh(b).outage = True
    clock.advance(60)  # well past the trust bound and state_trust, within the access token's life
    assert (await b.grant(cookie)).access_token == minted.access_token
    clock.advance(SETTINGS.access_ttl)  # expired: a new one needs the store
    with pytest.raises(StoreError):
        await b.grant(cookie)


def test_a_store_outage_answers_503_with_retry_after() -> None:
    response = error_response(StoreError("redis down"))
    assert response.status == 503
    assert ("retry-after", "1") in response.headers
    assert b"store_unavailable" in response.body and b"redis" not in response.body


# --- the announcing worker keeps what it just made ---------------------------------------------------------


async def _redis_workers(redis_url: str) -> tuple[SessionEngine, SessionEngine, list[CountingRedisStore]]:
    """Two engines ("workers") on one real Redis, each following its change feed, subscribed before returning."""
    prefix = f"t{uuid.uuid4().hex}:"
    stores = [CountingRedisStore(redis_url, prefix=prefix), CountingRedisStore(redis_url, prefix=prefix)]
    clock = ManualClock(time.time())  # real expiries: Redis expires the session keys on them
    engines = []
    for store in stores:
        await store.open()
        engine = make_engine(store, clock)
        await engine.follow_invalidations()
        engines.append(engine)
    for engine in engines:
        # Subscribed once a probe published now arrives (announcements made before subscribing are not heard).
        for _ in range(200):
            await stores[0].redis.publish(stores[0].changes_channel, "- all -")
            await asyncio.sleep(0.02)
            if fresh(engine).stats["announcements"]:
                break
        else:
            pytest.fail("the change feed never subscribed")
    await asyncio.sleep(0.1)  # the probes still in flight
    return engines[0], engines[1], stores


async def test_a_rotation_announcement_costs_the_rotating_worker_no_second_mint(redis_url: str) -> None:
    a, b, stores = await _redis_workers(redis_url)
    try:
        cookie = cookie_of((await a.login("alice", "correct horse")).set_cookie)
        await b.grant(cookie)  # b caches the row (and an access token) as it was before the rotation
        assert b.cache_sizes()["session_states"] == 1
        heard_a, heard_b = fresh(a).stats["announcements"], fresh(b).stats["announcements"]

        rotated = await a.refresh(cookie)  # rotates, announced on the channel as "- sid X ..."
        await _until(lambda: fresh(a).stats["announcements"] > heard_a, "a to hear its own announcement")
        await _until(lambda: fresh(b).stats["announcements"] > heard_b, "b to hear the announcement")

        mints, reads = a.stats["mints"], stores[0].reads
        again = await a.grant(cookie_of(rotated.set_cookie))
        # The row it read and the token it minted with the rotation both survived its own announcement (which
        # arrives during that re-read or after the mint, depending on the network: it cost one or the other).
        assert (a.stats["mints"], stores[0].reads) == (mints, reads)
        assert again.access_token == rotated.access_token
        # Every other worker still drops the row it cached before the rotation (and its access tokens).
        assert b.cache_sizes() == {"session_states": 0, "access_tokens": 0, "grants": 0}
    finally:
        for engine in (a, b):
            await engine.stop_following()
        for store in stores:
            await store.close()
