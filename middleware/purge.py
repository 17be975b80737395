"""The one purge scheduler: expired session rows (and audit rows past their retention, through ``also``) are
removed at most once per interval, on the engine's clock.

The gateway runs it as a lifespan task (:meth:`Purger.run`); session mode has no lifespan (a WSGI app has
none at all), so its requests nudge it (:meth:`Purger.poke`), which starts a background purge when one is
due and none is running. Either way the same clock decides, the same log lines report, and a failing purge
is retried after the next interval rather than taking a request down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from .clock import Clock
from .errors import FrontdeskError

__all__ = ["Purgeable", "Purger"]

log = logging.getLogger("frontdesk.purge")


class Purgeable(Protocol):
    async def purge(self) -> int: ...


class Purger:
    def __init__(self, engine: Purgeable, interval: float, clock: Clock, *, also: Sequence[Purgeable] = ()) -> None:
        """``also``: more to purge on the same schedule (the audit trail's retention)."""
        if interval <= 0:
            raise ValueError(f"the purge interval must be positive, got {interval!r}")
        self.engine = engine
        self.also = tuple(also)
        self.interval = interval
        self.clock = clock
        self._last = clock()
        self.task: asyncio.Task[None] | None = None  # the purge in flight (poke) or the loop (run)

    def due(self) -> bool:
        return self.clock() - self._last >= self.interval and (self.task is None or self.task.done())

    def poke(self) -> None:
        """Start a purge in the background when one is due; cheap enough to call on every request."""
        if self.due():
            self._last = self.clock()
            self.task = asyncio.create_task(self.purge_once(), name="frontdesk-purge")

    async def purge_once(self) -> None:
        removed = 0
        for job in (self.engine, *self.also):  # one failing does not keep the others from running
            try:
                removed += await job.purge()
            except FrontdeskError:
                log.exception("purge failed; will retry after the next interval")
        log.info("purged %d expired rows", removed)

    def start(self) -> None:
        """Purge every ``interval`` seconds until :meth:`stop` (the gateway's lifespan)."""
        self.task = asyncio.create_task(self._run(), name="frontdesk-purge")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._last = self.clock()
            await self.purge_once()

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
