"""Small bounded in-memory caches and per-key locks used by the session engine."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

__all__ = ["ExpiringCache", "KeyedLocks"]

K = TypeVar("K")
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """A dict whose entries die at their own deadline; past ``max_size`` the oldest is evicted.

    Deadlines are compared with a ``now`` the caller passes, so the cache has no clock of its own.
    """

    def __init__(self, max_size: int, *, sweep_every: float = 60.0) -> None:
        self.max_size = max_size
        self.sweep_every = sweep_every
        self._data: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._last_sweep = float("-inf")

    def get(self, key: K, now: float) -> V | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if now >= entry[1]:
            del self._data[key]
            return None
        return entry[0]

    def set(self, key: K, value: V, deadline: float, now: float) -> None:
        self._data[key] = (value, deadline)
        self._data.move_to_end(key)
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)
        if now - self._last_sweep >= self.sweep_every:
            self.sweep(now)

    def sweep(self, now: float) -> None:
        """Drop every dead entry; amortised by ``set`` to once per ``sweep_every`` seconds."""
        self._last_sweep = now
        for key in [k for k, (_, deadline) in self._data.items() if now >= deadline]:
            del self._data[key]

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def items(self) -> list[tuple[K, V]]:
        """A snapshot of every entry, dead or alive (the caller judges)."""
        return [(k, v) for k, (v, _) in self._data.items()]

    def __len__(self) -> int:
        return len(self._data)


class KeyedLocks(Generic[K]):
    """One asyncio.Lock per key, dropped when nobody holds or awaits it (so the map stays small)."""

    def __init__(self) -> None:
        self._locks: dict[K, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
