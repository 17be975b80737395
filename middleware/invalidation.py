"""Invalidation instead of polling: how long a worker may trust the session rows it cached.

Without this, the engine trusts a cached session row for ``state_ttl`` (0.5 s) and then reads it again, which is
how a logout written by another worker is seen: every worker re-reads every active session twice a second. With
a store that keeps a *revocation epoch* (:class:`~frontdesk.middleware.store.base.CountsRevocations`), one
read per worker replaces all of those: :class:`Freshness` reads the epoch every :data:`EPOCH_INTERVAL`, and
while it keeps confirming that nothing it did not hear about was revoked, cached rows stay trusted (up to
``state_trust``). When the epoch moved and not every step of it was announced to this worker (a lost message, a
dropped subscription, a store without announcements such as SQLite), everything cached is dropped at once.

The bound: a row is trusted only while the last confirmed epoch read *started* at most :data:`TRUST_BOUND` ago.
A revocation raises the epoch before it is acknowledged, so a read started after that sees it; a logout is thus
refused by every worker within ``TRUST_BOUND`` plus one read, whatever happens to the announcements. When the
reads stop confirming (the store unreachable, this loop stalled), the engine falls back to ``state_ttl`` and
reads rows again, which fails closed: a 503, not a stale "yes", unless ``serve_cached`` was chosen.

Announcements (:class:`~frontdesk.middleware.store.base.AnnouncesChanges`, Redis pub/sub) make the common case
immediate and precise: the named session (or user) is dropped as the message arrives, and the epoch step it
carries is marked as heard, so the next epoch read does not drop everything else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .clock import Clock
from .errors import StoreError
from .store.base import AnnouncesChanges, Change, CountsRevocations

__all__ = ["EPOCH_INTERVAL", "TRUST_BOUND", "Freshness"]

log = logging.getLogger("frontdesk.sessions")

EPOCH_INTERVAL = 0.2
TRUST_BOUND = 0.7  # < 1 s minus one epoch read: the README's promise for a logout seen by every worker


class Freshness:
    """The epoch watch of one worker. ``forget_all``/``forget_sid``/``forget_user``/``forget_rotated`` drop the
    engine's caches."""

    def __init__(
        self,
        epochs: CountsRevocations,
        *,
        clock: Clock,
        forget_all: Callable[[], None],
        forget_sid: Callable[[str], None],
        forget_user: Callable[[str], None],
        forget_rotated: Callable[[str, str], None] | None = None,
        serve_cached: bool = False,
        interval: float = EPOCH_INTERVAL,
        bound: float = TRUST_BOUND,
    ) -> None:
        self._epochs = epochs
        self._clock = clock
        self._forget_all = forget_all
        self._forget_sid = forget_sid
        self._forget_user = forget_user
        self._forget_rotated = forget_rotated  # (sid, new jti): a rotation, which the rotating worker survives
        self.serve_cached = serve_cached  # keep trusting cached rows while the store is unreachable
        self.interval = interval
        self.bound = bound
        self._known: int | None = None
        self._heard: set[int] = set()  # epochs announced to this worker beyond _known
        self._confirmed_at = float("-inf")
        self.outage = False  # the last epoch read failed
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = {"epoch_reads": 0, "dropped_all": 0, "announcements": 0}

    def trusted(self, now: float) -> bool:
        """May cached rows be used without reading them again? (One comparison: the hot path asks it.)"""
        return now - self._confirmed_at <= self.bound or (self.outage and self.serve_cached)

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._tasks)

    def start(self) -> None:
        """Start the epoch watch (and the announcement feed, if the store has one) on the running loop."""
        if self.running:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watch_epoch(), name="frontdesk-epoch-watch")]
        if isinstance(self._epochs, AnnouncesChanges):
            feed = self._epochs.follow_changes(self.deliver)
            self._tasks.append(loop.create_task(feed, name="frontdesk-change-feed"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._confirmed_at = float("-inf")

    def deliver(self, change: Change) -> None:
        """One announcement: drop what it names now, and note its epoch step as heard."""
        self.stats["announcements"] += 1
        if change.sid is not None and change.jti is not None and self._forget_rotated is not None:
            self._forget_rotated(change.sid, change.jti)
        elif change.sid is not None:
            self._forget_sid(change.sid)
        elif change.user_id is not None:
            self._forget_user(change.user_id)
        else:
            self._forget_all()
        if change.epoch is not None and (self._known is None or change.epoch > self._known):
            self._heard.add(change.epoch)

    async def check(self) -> None:
        """Read the epoch once; drop everything cached unless every step since the last read was announced.
        Raises :class:`StoreError` when the store cannot answer."""
        started = self._clock()
        epoch = await self._epochs.revocation_epoch()
        self.stats["epoch_reads"] += 1
        known, self._known = self._known, epoch
        if known is None or epoch < known or self.outage:
            # The first read, a store that lost its data, or a gap in which announcements may have been lost.
            unheard = True
        else:
            unheard = epoch - known > sum(1 for e in self._heard if known < e <= epoch)
        self._heard = {e for e in self._heard if e > epoch}
        if unheard and known is not None:
            self.stats["dropped_all"] += 1
            self._forget_all()
        self.outage = False
        self._confirmed_at = started

    async def _watch_epoch(self) -> None:
        while True:
            try:
                await self.check()
            except StoreError as exc:
                if not self.outage:
                    log.warning("cannot read the revocation epoch; cached sessions are no longer trusted: %s", exc)
                self.outage = True
            await asyncio.sleep(self.interval)
