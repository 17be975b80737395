from __future__ import annotations

import asyncio

from frontdesk.middleware.caches import ExpiringCache, KeyedLocks


def test_entries_die_at_their_deadline_and_the_oldest_is_evicted() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache(max_size=2)
    cache.set("a", 1, deadline=10, now=0)
    cache.set("b", 2, deadline=20, now=0)
    assert cache.get("a", now=9) == 1 and cache.get("a", now=10) is None
    cache.set("c", 3, deadline=30, now=0)
    cache.set("d", 4, deadline=30, now=0)
    assert cache.get("b", now=0) is None and len(cache) == 2


def test_sweep_drops_dead_entries_nobody_reads() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache(max_size=100, sweep_every=60)
    for i in range(10):
        cache.set(f"k{i}", i, deadline=5, now=0)
    cache.set("live", 1, deadline=1000, now=61)
    assert len(cache) == 1


async def test_keyed_locks_serialise_one_key_and_forget_idle_keys() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    order: list[str] = []

    async def worker(name: str) -> None:
        async with locks.hold("s"):
            order.append(f"{name}+")
            await asyncio.sleep(0)
            order.append(f"{name}-")

    await asyncio.gather(worker("a"), worker("b"))
    assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])
    assert len(locks) == 0
