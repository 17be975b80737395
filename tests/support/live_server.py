"""A real uvicorn server for an ASGI app on a free loopback port, in this process: either in a thread with its
own event loop (for synchronous tests and clients) or as a task of the running loop (for async tests that look
inside the app while it serves, and that parametrise the loop it runs on)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn

from .ports import free_port
from .waiting import WAIT_TIMEOUT, wait_until, wait_until_async

__all__ = ["LiveServer", "serve_in_loop", "serve_in_thread"]


class LiveServer:
    """uvicorn (httptools, no lifespan, quiet, no proxy headers: frontdesk applies its own trusted-proxy rule)
    unless ``options`` say otherwise; ``options`` are ``uvicorn.Config`` keywords."""

    def __init__(self, app: Any, *, port: int | None = None, **options: Any) -> None:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port or free_port(),
            "http": "httptools",
            "lifespan": "off",
            "log_level": "error",
            "proxy_headers": False,
            **options,
        }
        self.server = uvicorn.Server(uvicorn.Config(app, **settings))
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.server.config.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _started(self, runner_alive: bool, crashed: BaseException | None = None) -> bool:
        if crashed is not None:
            raise crashed
        assert runner_alive or self.server.started, "uvicorn exited before it started (see the captured log)"
        return self.server.started

    # -- in a thread of its own --

    def start_thread(self) -> LiveServer:
        thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread = thread
        thread.start()
        wait_until(lambda: self._started(thread.is_alive()), what=f"uvicorn on {self.url}")
        return self

    def stop_thread(self) -> None:
        assert self._thread is not None
        self.server.should_exit = True
        self._thread.join(timeout=WAIT_TIMEOUT)
        assert not self._thread.is_alive(), f"uvicorn on {self.url} did not stop"

    # -- in the running event loop --

    async def start(self) -> LiveServer:
        task = asyncio.create_task(self.server.serve())
        self._task = task

        def started() -> bool:
            crashed = task.exception() if task.done() and not task.cancelled() else None
            return self._started(not task.done(), crashed)

        await wait_until_async(started, interval=0.005, what=f"uvicorn on {self.url}")
        return self

    async def stop(self) -> None:
        assert self._task is not None
        self.server.should_exit = True
        # Skip the graceful wait for open connections, unless that would cut a lifespan shutdown short.
        self.server.force_exit = self.server.config.lifespan == "off"
        await self._task


@contextlib.contextmanager
def serve_in_thread(app: Any, **options: Any) -> Iterator[str]:
    """Serve ``app`` from a thread until the block ends; yields the base URL."""
    server = LiveServer(app, **options).start_thread()
    try:
        yield server.url
    finally:
        server.stop_thread()


@contextlib.asynccontextmanager
async def serve_in_loop(app: Any, **options: Any) -> AsyncIterator[LiveServer]:
    """Serve ``app`` in the running event loop until the block ends; yields the server (``.port``, ``.url``)."""
    server = await LiveServer(app, **options).start()
    try:
        yield server
    finally:
        await server.stop()
