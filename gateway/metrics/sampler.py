"""Gauges of state rather than events (cache sizes, live sessions), sampled every few seconds by each worker.

A worker cannot be asked at scrape time (the listener runs in another process), so each worker writes its
own values on a timer; the exposition combines them (caches summed over the live workers, the session count
the newest sample, since every worker reads the same store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .definitions import GatewayMetrics

__all__ = ["SAMPLE_INTERVAL", "Sampler"]

SAMPLE_INTERVAL = 5.0  # seconds; Prometheus scrapes every 15-60 s, so each scrape sees a fresh sample
log = logging.getLogger("frontdesk.metrics")


class Sampler:
    """Sets the state gauges now and then; ``start`` and ``stop`` run with the gateway's lifespan."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        cache_sizes: Callable[[], Mapping[str, int]],
        live_sessions: Callable[[], Awaitable[int | None]] | None = None,
        *,
        interval: float = SAMPLE_INTERVAL,
    ) -> None:
        self._metrics = metrics
        self._cache_sizes = cache_sizes
        self._live_sessions = live_sessions
        self._interval = interval
        self._caches: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> None:
        for cache, size in self._cache_sizes().items():
            gauge = self._caches.get(cache)
            if gauge is None:
                gauge = self._caches[cache] = self._metrics.cache_entries.labels(cache)
            gauge.set(size)
        if self._live_sessions is not None:
            count = await self._live_sessions()
            if count is not None:
                self._metrics.sessions_active.set(count)

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception:  # a store hiccup must not end the sampling for good
                log.warning("sampling the metrics failed", exc_info=True)
            await asyncio.sleep(self._interval)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
