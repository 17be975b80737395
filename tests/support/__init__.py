"""What the whole suite shares, in one place each: free ports, waiting for a condition, real servers.

Import it as ``from tests.support import ...``; its fixtures (``live_server``, ``server_process``) come from
:mod:`tests.support.fixtures`, which ``tests/conftest.py`` loads with ``pytest_plugins``.

- :func:`free_port`: a free TCP port on 127.0.0.1.
- :func:`wait_until` / :func:`wait_until_async`: poll a condition until it is truthy, fail the test after a
  generous deadline (the async flavour sleeps without blocking the loop and accepts an async condition);
  :func:`answers`: whether a URL answers at all (or with a given status).
- :class:`LiveServer`: uvicorn serving an ASGI app in this process, from a thread (:func:`serve_in_thread`)
  or in the running event loop (:func:`serve_in_loop`).
- :data:`BOTH_LOOPS`: the mark of an async test that runs on asyncio and on uvloop (see :mod:`.loops`).
- :class:`ServerProcess`: a server in a subprocess of its own process group, output to a log file that every
  failure message quotes, stopped (SIGTERM, then SIGKILL) with all its workers reaped.
"""

from .live_server import LiveServer, serve_in_loop, serve_in_thread
from .loops import BOTH_LOOPS, loop_factories
from .ports import free_port
from .processes import ServerProcess, group_members
from .waiting import WAIT_TIMEOUT, answers, wait_until, wait_until_async

__all__ = [
    "BOTH_LOOPS",
    "WAIT_TIMEOUT",
    "LiveServer",
    "ServerProcess",
    "answers",
    "free_port",
    "group_members",
    "loop_factories",
    "serve_in_loop",
    "serve_in_thread",
    "wait_until",
    "wait_until_async",
]
