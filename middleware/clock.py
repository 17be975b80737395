"""The clock is injected everywhere time matters, so the core stays pure and tests can move time."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "system_clock", "ManualClock"]

Clock = Callable[[], float]
"""A zero-argument callable returning seconds since the epoch."""


system_clock: Clock = time.time
"""The real clock: ``time.time`` itself, not a function around it (it is read on every request)."""


class ManualClock:
    """A clock that only moves when told to; for tests and simulations."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
