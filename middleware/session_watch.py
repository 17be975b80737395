"""One watch per process over the sessions that hold long-lived exchanges: streamed responses and WebSockets.

Used by the gateway's proxy (streams and WebSockets) and by session mode's ASGI adapter (WebSockets), so both
end what a session holds open the same way.

A logout, a password change or a reuse revocation ends a session, but a stream opened before it would keep
flowing on the access token it started with. The watch polls :meth:`Liveness.is_active` for every session
that has something open, once per tick however many streams that session holds, and calls each one's
``on_end`` when the session is gone. ``is_active`` answers from the engine's cached row, which a revocation
anywhere drops (announced at once on Redis, or through the revocation epoch within 0.7 s; see
``invalidation.py``), or, without the epoch watch, re-reads the store at most every 0.5 s: asking costs no
store read while nothing is revoked. A stream is cut within ``POLL_INTERVAL`` + that bound of its session
ending anywhere, about the 1 s the README promises.

Nothing runs while nothing is watched (the poll task exits when the last watch closes), and a short response
never registers at all: streams are watched only once they have lasted ``STREAM_WATCH_DELAY``.

The watch also counts each session's open WebSockets (the gateway caps them per session), and it is how a
server that is stopping reaches what it holds open: :meth:`SessionWatch.shut_down` calls the ``on_shutdown`` of
every exchange that gave one (event streams and WebSockets, which never end on their own and would hold the
stop until its timeout), now and for any registered later. Exchanges without a session (``sid=None``) can be
watched for that alone; they are never polled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from .errors import FrontdeskError

__all__ = ["SessionWatch", "Watching", "Liveness", "POLL_INTERVAL", "STREAM_WATCH_DELAY"]

log = logging.getLogger("frontdesk.sessions")

POLL_INTERVAL = 0.25
STREAM_WATCH_DELAY = 0.25  # a streamed response that ends sooner is never watched (the hot path stays free)


class Liveness(Protocol):
    """What the watch needs: :meth:`SessionEngine.is_active` (honours other workers within 0.7 s)."""

    async def is_active(self, sid: str) -> bool: ...


class Watching:
    """One open exchange of one session. ``close()`` when the exchange ends, whichever way (idempotent)."""

    __slots__ = ("_registered", "_timer", "_watch", "on_end", "on_shutdown", "sid", "socket")

    def __init__(
        self,
        watch: SessionWatch,
        sid: str | None,
        on_end: Callable[[], None],
        socket: bool,
        on_shutdown: Callable[[], None] | None,
    ) -> None:
        self._watch = watch
        self.sid = sid
        self.on_end = on_end
        self.on_shutdown = on_shutdown
        self.socket = socket
        self._timer: asyncio.TimerHandle | None = None
        self._registered = False

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._registered:
            self._registered = False
            self._watch._remove(self)

    def _register(self) -> None:
        self._timer = None
        self._registered = True
        self._watch._add(self)


class SessionWatch:
    def __init__(self, engine: Liveness, *, interval: float = POLL_INTERVAL) -> None:
        self._engine = engine
        self._interval = interval
        self._open: dict[str, set[Watching]] = {}
        self._sessionless: set[Watching] = set()  # watched for shutdown only
        self._task: asyncio.Task[None] | None = None
        self._shutting_down = False

    def watch(
        self,
        sid: str | None,
        on_end: Callable[[], None],
        *,
        delay: float = 0.0,
        socket: bool = False,
        on_shutdown: Callable[[], None] | None = None,
    ) -> Watching:
        """Call ``on_end`` (once) when session ``sid`` ends, and ``on_shutdown`` (once) when the server stops;
        start watching after ``delay`` seconds. ``sid=None``: no session to watch, only the stop."""
        watching = Watching(self, sid, on_end, socket, on_shutdown)
        if delay > 0:
            watching._timer = asyncio.get_running_loop().call_later(delay, watching._register)
        else:
            watching._register()
        return watching

    def open_sockets(self, sid: str) -> int:
        """The WebSockets of session ``sid`` that are open (or being opened) in this process."""
        return sum(1 for w in self._open.get(sid, ()) if w.socket)

    def shut_down(self) -> None:
        """The server is stopping: call every ``on_shutdown``, now and for whatever registers from here on."""
        self._shutting_down = True
        for watching in [*self._sessionless, *(w for held in self._open.values() for w in held)]:
            _stop(watching)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _add(self, watching: Watching) -> None:
        if watching.sid is None:
            self._sessionless.add(watching)
        else:
            self._open.setdefault(watching.sid, set()).add(watching)
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._poll(), name="frontdesk-session-watch")
        if self._shutting_down:
            _stop(watching)

    def _remove(self, watching: Watching) -> None:
        if watching.sid is None:
            self._sessionless.discard(watching)
            return
        held = self._open.get(watching.sid)
        if held is not None:
            held.discard(watching)
            if not held:
                del self._open[watching.sid]

    async def _poll(self) -> None:
        while self._open:
            await asyncio.sleep(self._interval)
            for sid in list(self._open):
                try:
                    active = await self._engine.is_active(sid)
                except FrontdeskError as exc:
                    # The store is unreachable: keep the streams (cutting every stream of every user at a
                    # store blip would be an outage of its own) and ask again next tick.
                    log.warning("could not check session liveness for open streams: %s", exc.detail)
                    continue
                if active:
                    continue
                for watching in self._open.pop(sid, ()):
                    watching._registered = False
                    try:
                        watching.on_end()
                    except Exception:  # one broken callback must not stop the watch for everyone else
                        log.exception("ending a stream of an ended session failed")


def _stop(watching: Watching) -> None:
    stop, watching.on_shutdown = watching.on_shutdown, None  # once
    if stop is not None:
        try:
            stop()
        except Exception:  # one broken callback must not keep the others open
            log.exception("ending an open stream at shutdown failed")
