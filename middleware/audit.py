"""The audit trail: a sink on the events (``events.py``) that keeps who logged in, failed, logged out, was cut off
or changed, with when, from where and with which browser.

Only the security events are kept (:data:`AUDITED`): access-token mints and refresh rotations happen every few
minutes per session and say nothing an auditor needs, so they stay with the metrics.

Each event is logged at once (logger ``frontdesk.audit``, the event's fields under the record's ``audit``
attribute, so the JSON log carries them as an object) and queued for the store's ``audit`` table; a background
task (:meth:`AuditTrail.start`) writes the queue in batches, off the request path. The queue is bounded
(``queue_size``): when the store falls that far behind, new rows are dropped rather than letting a flood of
failed logins grow the gateway's memory without limit. A dropped row is still in the log line written above,
and the drops are counted (:attr:`AuditTrail.dropped`) and reported in a WARNING. A batch the store refuses
(it is down) is likewise logged and dropped: the log stays the complete record.

Rate-limit refusals (``rate_limited``, and ``login.failed`` for that reason) are kept once per client address and
minute (:data:`REFUSAL_QUIET`): a refused login costs its sender nothing, and 90 days of them would fill the disk.
Every one of them is still in the log.

The trail is itself purgeable: the one purge scheduler (``purge.Purger``, ``also=``) removes rows older than
``retention`` on the engine's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Final

from .clock import Clock
from .errors import FrontdeskError
from .events import Event, Kind
from .store import Store

__all__ = ["AUDITED", "AuditTrail", "FIELD_LIMIT", "REFUSAL_QUIET", "event_fields"]

log = logging.getLogger("frontdesk.audit")

AUDITED: Final = frozenset(
    {
        Kind.LOGIN_OK,
        Kind.LOGIN_FAILED,
        Kind.LOGOUT,
        Kind.REUSE_DETECTED,
        Kind.SESSION_REVOKED,
        Kind.RATE_LIMITED,
        Kind.USER_ADDED,
        Kind.USER_REMOVED,
        Kind.PASSWORD_CHANGED,
        Kind.KEY_ROTATED,
    }
)
FIELD_LIMIT: Final = 256
"""The longest value kept per field: a user agent is whatever the client sends, and 90 days of them add up."""

REFUSAL_QUIET: Final = 60.0
"""Rate-limit refusals from one address are recorded in the table at most once per this many seconds."""
_REFUSALS_REMEMBERED = 10_000
_BATCH = 256


def event_fields(event: Event) -> dict[str, object]:
    """The event as a flat dict (the JSON log's ``audit`` object and ``frontdesk audit --json``), time as-is."""
    return dataclasses.asdict(event)


def _bounded(event: Event) -> Event:
    long = {
        name: value[:FIELD_LIMIT]
        for name in ("user", "session", "address", "user_agent", "reason", "actor")
        if isinstance(value := getattr(event, name), str) and len(value) > FIELD_LIMIT
    }
    return dataclasses.replace(event, **long) if long else event  # type: ignore[arg-type]


def _describe(event: Event) -> str:
    # repr() for what a client chose (user name, user agent): a newline in it cannot forge a second text log line.
    parts = [event.kind]
    for name in ("user", "session", "address", "reason", "actor", "user_agent"):
        value = getattr(event, name)
        if value is not None:
            parts.append(f"{name}={value!r}")
    return " ".join(parts)


class AuditTrail:
    """The audit sink. ``emit`` is synchronous and cheap (a log line and a queue put); start the writer with
    :meth:`start` inside the event loop, end it with :meth:`stop` (which writes what is still queued)."""

    def __init__(self, store: Store, *, retention: float, clock: Clock, queue_size: int = 10_000) -> None:
        if retention <= 0:
            raise ValueError(f"the audit retention must be positive, got {retention!r}")
        self.store = store
        self.retention = retention
        self.clock = clock
        self.dropped = 0  # rows lost to a full queue or a failed write since start (each one is in the log)
        self._reported = 0
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._refusals: dict[tuple[str, str | None], float] = {}  # (kind, address) -> when last recorded

    def emit(self, event: Event) -> None:
        if event.kind not in AUDITED:
            return
        event = _bounded(event)
        log.info("%s", _describe(event), extra={"audit": event_fields(event)})
        if self._repeated_refusal(event):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def _repeated_refusal(self, event: Event) -> bool:
        """Whether ``event`` is a rate-limit refusal like one already recorded for its address less than
        :data:`REFUSAL_QUIET` ago. A refused login costs the sender nothing (no hash), so each one kept would
        let anyone fill the disk for the whole retention; the first per address and minute is kept, and every
        one is in the log."""
        if event.kind != Kind.RATE_LIMITED and event.reason != "rate_limited":
            return False
        key = (event.kind, event.address)
        last = self._refusals.get(key)
        if last is not None and event.at - last < REFUSAL_QUIET:
            return True
        if len(self._refusals) >= _REFUSALS_REMEMBERED:  # many addresses: forget the quiet ones, or all
            recent = {k: t for k, t in self._refusals.items() if event.at - t < REFUSAL_QUIET}
            self._refusals = recent if len(recent) < _REFUSALS_REMEMBERED else {}
        self._refusals[key] = event.at
        return False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="frontdesk-audit")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def flush(self) -> None:
        """Write everything queued now (the CLI, which has no background task, and shutdown)."""
        while not self._queue.empty():
            await self._write(self._take())

    async def purge(self) -> int:
        """Delete the rows older than the retention (called by the purge scheduler)."""
        return await self.store.purge_audit(before=self.clock() - self.retention)

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            await self._write([first, *self._take()])

    def _take(self) -> list[Event]:
        batch: list[Event] = []
        while len(batch) < _BATCH and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _write(self, batch: list[Event]) -> None:
        try:
            await self.store.record_audit(batch)
        except (FrontdeskError, ValueError):
            self.dropped += len(batch)
            log.exception("could not write %d audit row(s) to the store; they are in the log above", len(batch))
        if self.dropped > self._reported:
            log.warning(
                "dropped %d audit row(s) so far (queue full or store failing); each one is in the log",
                self.dropped,
            )
            self._reported = self.dropped
