"""The one purge scheduler (``middleware.purge.Purger``) on the engine's clock: session mode's requests nudge
it, the gateway's lifespan runs it; either way at most one purge per interval and a failure is retried."""

from __future__ import annotations

import asyncio
import logging

import pytest

from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import StoreError
from frontdesk.middleware.purge import Purger


class Engine:
    def __init__(self) -> None:
        self.purges = 0
        self.fail_next = False
        self.purged = asyncio.Event()

    async def purge(self) -> int:
        self.purges += 1
        self.purged.set()
        if self.fail_next:
            self.fail_next = False
            raise StoreError("database is locked")
        return 3


async def test_requests_purge_at_most_once_per_interval_on_the_clock() -> None:
    clock = ManualClock(start=1000.0)
    engine = Engine()
    purger = Purger(engine, 60, clock)
    purger.poke()
    assert purger.task is None and engine.purges == 0  # not due yet
    clock.advance(59.9)
    purger.poke()
    assert purger.task is None
    clock.advance(0.1)
    purger.poke()
    purger.poke()  # a second request while the purge runs starts nothing
    assert purger.task is not None
    await purger.task
    assert engine.purges == 1
    purger.poke()  # done, but the interval starts again from the purge
    assert engine.purges == 1 and not purger.due()
    clock.advance(60)
    assert purger.due()


async def test_a_failed_purge_is_logged_and_retried_after_the_next_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(start=0.0)
    engine = Engine()
    engine.fail_next = True
    purger = Purger(engine, 10, clock)
    clock.advance(10)
    purger.poke()
    assert purger.task is not None
    with caplog.at_level(logging.ERROR, logger="frontdesk.purge"):
        await purger.task  # the error is the purger's to log, never the request's
    assert "purge failed" in caplog.text
    clock.advance(10)
    purger.poke()
    assert purger.task is not None
    await purger.task
    assert engine.purges == 2


async def test_the_gateway_runs_it_until_stopped() -> None:
    engine = Engine()
    purger = Purger(engine, 0.01, ManualClock(start=0.0))
    purger.start()
    await asyncio.wait_for(engine.purged.wait(), 10)
    await purger.stop()
    assert purger.task is None
    count = engine.purges
    await asyncio.sleep(0.05)
    assert engine.purges == count  # stopped means stopped


def test_a_non_positive_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="purge interval"):
        Purger(Engine(), 0, ManualClock(start=0.0))
