"""A bounded thread pool for password hashing: a fixed number of hashing threads and a bounded wait queue.

Why not ``asyncio.to_thread``: Python's default pool queues without limit, so a burst of logins piles up
hundreds of hashes in front of a legitimate one (seconds of wait) and every running argon2id hash holds its
64 MiB. Here at most ``workers`` hashes run at once (memory: ``workers`` x the KDF's memory cost) and at
most ``queue`` more wait; anything beyond that is refused at once with :class:`Overloaded` (503 +
``Retry-After``) instead of waiting behind the burst.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from frontdesk.middleware.errors import Overloaded

__all__ = ["HashPool", "default_hash_workers", "DEFAULT_HASH_QUEUE"]

T = TypeVar("T")
DEFAULT_HASH_QUEUE = 16


def default_hash_workers() -> int:
    """The CPU cores this process may run on (a container's limit, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


class HashPool:
    """Run blocking hash functions on ``workers`` threads, with at most ``queue`` calls waiting.

    The admission count is taken under a lock and released when the thread's work really ends (not when the
    awaiting coroutine gives up), so a client that disconnects mid-hash cannot let extra work in behind it.
    The executor starts on first use and :meth:`close` stops it; a closed pool starts afresh if used again.
    """

    def __init__(self, workers: int | None = None, queue: int = DEFAULT_HASH_QUEUE) -> None:
        self.workers = default_hash_workers() if workers is None else workers
        if self.workers < 1 or queue < 0:
            raise ValueError("a hash pool needs at least one worker and a queue of zero or more")
        self.queue = queue
        self._admitted = 0
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._seconds_per_hash = 0.5  # a first guess for Retry-After, replaced by measurements

    @property
    def capacity(self) -> int:
        return self.workers + self.queue

    @property
    def admitted(self) -> int:
        """Calls running or waiting right now."""
        return self._admitted

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on a hashing thread; :class:`Overloaded` at once when every slot is taken."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise Overloaded(retry_after=self._retry_after())
            self._admitted += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="frontdesk-hash")
            executor = self._executor
        try:
            future = executor.submit(self._timed, fn, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _timed(self, fn: Callable[..., T], *args: object) -> T:
        started = time.monotonic()
        try:
            return fn(*args)
        finally:
            elapsed = time.monotonic() - started
            self._seconds_per_hash = 0.8 * self._seconds_per_hash + 0.2 * elapsed  # smoothed; races are harmless

    def _release(self, _: object) -> None:
        with self._lock:
            self._admitted -= 1

    def _retry_after(self) -> int:
        """Whole seconds until the queue has drained once (at least 1)."""
        return max(1, math.ceil(self.capacity / self.workers * self._seconds_per_hash))
