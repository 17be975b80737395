"""Waiting for a condition instead of sleeping for a guessed time: one deadline policy, a sync and an async
flavour of the same loop, and the "is anything listening at this URL?" probe most waits are about."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

__all__ = ["WAIT_TIMEOUT", "answers", "wait_until", "wait_until_async"]

T = TypeVar("T")

# Generous: a shared 2-core machine can take long to start Python + uvicorn. A deadline for something that
# hangs, never an assertion of speed.
WAIT_TIMEOUT = 30.0
INTERVAL = 0.05


def _polls(timeout: float, interval: float, what: str, condition: object) -> Iterator[float]:
    """The pauses between two looks at a condition; fails the test once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        yield interval
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what or condition}")


def wait_until(
    condition: Callable[[], T], *, timeout: float = WAIT_TIMEOUT, interval: float = INTERVAL, what: str = ""
) -> T:
    """Call ``condition`` until it returns something truthy, and return that; fail the test after ``timeout``."""
    for pause in _polls(timeout, interval, what, condition):
        value = condition()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError("unreachable")  # _polls never ends without failing


async def wait_until_async(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = WAIT_TIMEOUT,
    interval: float = INTERVAL,
    what: str = "",
) -> T:
    """:func:`wait_until` for a running event loop: sleeps without blocking it; ``condition`` may be async."""
    for pause in _polls(timeout, interval, what, condition):
        value: Any = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[no-any-return]
        await asyncio.sleep(pause)
    raise AssertionError("unreachable")


def answers(url: str, status: int | None = None) -> bool:
    """Whether a server answers ``url`` (with ``status``, or with anything): it has started listening."""
    try:
        response = httpx.get(url, timeout=2.0)
    except httpx.TransportError:
        return False
    return status is None or response.status_code == status
