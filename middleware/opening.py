"""Open a store once, lazily, on the event loop that first needs it.

The adapters cannot rely on ASGI lifespan (WSGI has none, and a wrapped app may not forward it), so the
first request opens the store; the lock keeps two concurrent first requests from opening it twice.
"""

from __future__ import annotations

import asyncio

from .store.base import Store

__all__ = ["OpenOnce"]


class OpenOnce:
    def __init__(self, store: Store | None) -> None:
        self.store = store
        self.done = store is None
        self._lock: asyncio.Lock | None = None

    async def ensure(self) -> None:
        if self.done:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self.done and self.store is not None:
                await self.store.open()
                self.done = True
