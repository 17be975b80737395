"""The event loops an async test runs on, through pytest-asyncio's ``pytest_asyncio_loop_factories`` hook.

Every async test runs on asyncio's default loop. A test where the loop matters (the proxy's transports: uvloop's
differ from asyncio's, and ``frontdesk serve`` runs on uvloop) is marked :data:`BOTH_LOOPS` and runs once on
each, with the loop in its id (``test_x[asyncio]``, ``test_x[uvloop]``). A folder opts in by implementing the
hook in its conftest as ``return loop_factories(item)``; the hook is path-scoped, so other folders are untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop

__all__ = ["BOTH_LOOPS", "LOOP_FACTORIES", "loop_factories"]

LOOP_FACTORIES: Mapping[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}

BOTH_LOOPS = pytest.mark.asyncio(loop_factories=list(LOOP_FACTORIES))


def loop_factories(item: pytest.Item) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The loops ``item`` may run on: all of them if its asyncio mark names them, else asyncio's alone (a single
    factory leaves the test's id unchanged)."""
    marker = item.get_closest_marker("asyncio")
    wanted = marker.kwargs.get("loop_factories") if marker is not None else None
    if wanted:
        return {name: LOOP_FACTORIES[name] for name in wanted}
    return {"asyncio": LOOP_FACTORIES["asyncio"]}
