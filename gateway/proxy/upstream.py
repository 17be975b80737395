"""The upstream side: one HTTP/1.1 connection on asyncio + httptools (``pool.py`` keeps them alive).

Why not httpx here: measured on this machine a shared ``httpx.AsyncClient`` forwarder reaches a few percent
of direct throughput and collapses at 64 connections, while a Protocol that feeds bytes straight into
httptools' C parser costs a few microseconds per exchange (numbers: ``tests/bench/proxy_bench.py``).
Everything else in frontdesk still uses httpx.

One connection carries one exchange at a time (no pipelining). Bodies stream both ways with backpressure:
the request body waits on ``pause_writing``; the response stops being read from the socket once
``_HIGH_WATER`` bytes wait for the browser. The client keeps no cookie jar and no state between
exchanges beyond the idle socket, so nothing one user's upstream says can reach another user.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import cast

import httptools

from .errors import UpstreamClosed, UpstreamError, UpstreamProtocolError, UpstreamTimeout

__all__ = ["UpstreamConnection"]

# Response bytes buffered for a slow browser before the upstream socket stops being read.
_HIGH_WATER = 256 * 1024
# A response head announcing a body up to this size is handed over only with its body: servers (uvicorn
# among them) write head and body separately, and waiting for the body turns one small answer into one
# ASGI send instead of a stream of three (nginx's proxy_buffering does the same for small bodies).
_HOLD_LIMIT = 64 * 1024
_SENDING, _WAITING, _STREAMING = 0, 1, 2


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection; ``begin`` starts an exchange, then write / wait_head / read_body.

    It knows nothing of the pool that keeps it: its limits come in as numbers and ``on_close`` is told once
    the socket is gone (the pool forgets it then), so the dependency runs one way, pool to connection.
    """

    def __init__(
        self,
        key: tuple[str, str, int],
        *,
        read_timeout: float,
        max_head: int,
        on_close: Callable[[UpstreamConnection], None],
    ) -> None:
        self._read_timeout = read_timeout
        self._max_head = max_head
        self._on_close = on_close
        self._loop = asyncio.get_running_loop()
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.uses = 0
        self.idle_since = 0.0
        self._parser: httptools.HttpResponseParser | None = None
        self._idle = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._reading_paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when ``_timer`` fires
        self._due = 0.0  # when the current phase's time is up (``_arm``)
        # Told instead of a waiting task when the exchange moves on (head ready, failure): the fast path's
        # express lane (``cycle.py``) runs without a task until it needs one.
        self.listener: Callable[[], None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.listener = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.head_ready = False
        self.complete = False
        self.reusable = False
        self.got_bytes = False
        self.sent_all = False
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._head_size = 0
        self._exc: UpstreamError | None = None
        self._interim = False
        self._head_request = False
        self._until_eof = False
        self._phase = _SENDING
        self._timeout = 0.0
        self._progress = 0.0

    # -- exchange API ---------------------------------------------------------------------------------

    def begin(self, *, head_request: bool, timeout: float, has_body: bool) -> None:
        self._reset()
        self.uses += 1
        self._head_request = head_request
        self._timeout = timeout
        self._idle = False
        # A reused socket ended its last message cleanly, so llhttp is back at a message start.
        if self._parser is None:
            self._parser = httptools.HttpResponseParser(self)
        if self.closed:
            self._exc = UpstreamClosed("the upstream closed the connection")
            return
        if has_body:  # without a body, end_send follows at once and arms the route timeout
            self._progress = self._loop.time()
            self._arm(self._read_timeout)

    def park(self) -> None:
        """Idle in the pool from now on: bytes arriving before the next ``begin`` close the socket."""
        self._idle = True
        self.idle_since = time.monotonic()

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    @property
    def drained(self) -> bool:
        """Nothing buffered for the browser right now."""
        return not self._chunks

    @property
    def failed(self) -> bool:
        return self._exc is not None

    async def drain(self) -> None:
        while self._write_paused and not self.closed:
            self._drain_waiter = self._loop.create_future()
            await self._drain_waiter

    def end_send(self) -> None:
        """The request is fully written: from now on the route timeout runs until the response head."""
        self.sent_all = True
        if not self.headers_done and self._exc is None:
            self._phase = _WAITING
            self._arm(self._timeout)

    async def wait_head(self) -> None:
        while not self.head_ready:
            if self._exc is not None:
                raise self._exc
            self._waiter = self._loop.create_future()
            await self._waiter

    def take_body(self) -> bytes:
        """The whole body of a complete response, at once (``read_body`` without the wait)."""
        chunks = self._chunks
        if len(chunks) == 1:
            data = chunks.pop()
        else:
            data = b"".join(chunks)
            chunks.clear()
        self._buffered = 0
        return data

    async def read_body(self) -> bytes | None:
        """The next piece of the response body (everything buffered, joined), or None at its end."""
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._buffered = 0
                if self._reading_paused and self.transport is not None and not self.closed:
                    self._reading_paused = False
                    self._progress = self._loop.time()
                    self.transport.resume_reading()
                return data
            if self.complete:
                return None
            if self._exc is not None:
                raise self._exc
            self._waiter = self._loop.create_future()
            await self._waiter

    def abort(self, exc: UpstreamError | None = None) -> None:
        """Give up on the exchange and the socket (client gone, body too large, mid-stream failure)."""
        self._fail(exc or UpstreamClosed("the exchange was abandoned"))
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
        self._on_close(self)

    # -- timer: route timeout until the head, then an idle timeout while data flows ---------------------
    # One timer outlives the exchanges of a keep-alive connection: arming a new one per exchange (and cancelling
    # it at the end) cost a timer handle each time. A timer that fires before the current ``_due`` re-arms for it.

    def _arm(self, delay: float) -> None:
        due = self._loop.time() + delay
        self._due = due
        if self._timer is not None:
            if self._timer_at <= due:
                return  # it fires first; _on_timer then waits out the rest
            self._timer.cancel()
        self._set_timer(due)

    def _set_timer(self, at: float) -> None:
        self._timer_at = at
        self._timer = self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.complete or self._exc is not None:
            return
        now = self._loop.time()
        if now < self._due:  # armed for an earlier exchange or phase: this one's time is not up yet
            self._set_timer(self._due)
            return
        if self._phase == _WAITING:
            self._fail(UpstreamTimeout(f"the upstream did not answer within {self._timeout:g} s"))
            return
        # Waiting on the browser (it reads or uploads slowly) is not the upstream's fault.
        if self._reading_paused or (self._phase == _SENDING and not self._write_paused):
            self._progress = now
        due = self._progress + self._read_timeout
        if now >= due:
            self._fail(UpstreamTimeout(f"the upstream stalled for {self._read_timeout:g} s"))
        else:
            self._set_timer(due)

    def _fail(self, exc: UpstreamError) -> None:
        if self._exc is None and not self.complete:
            self._exc = exc
            if self.transport is not None and not self.closed:
                self.closed = True
                self.transport.abort()
        self._wake()
        self._wake_drain()

    def _wake(self) -> None:
        listener = self.listener
        if listener is not None:
            listener()
            return
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- asyncio.Protocol ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence a cast rather than a check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self.complete or self._idle:
            # Bytes nobody asked for: this socket can no longer be trusted to frame the next response.
            self.close()
            return
        self.got_bytes = True
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self.complete:
                # Bytes after the response, in the same read: another message (``on_message_begin``) or no HTTP.
                # Whoever holds the connection must not reuse it, and the fast path's express lane may already
                # have answered and put it back in the pool, from the callback of the response's end (the task
                # path pools it after this read, but its parser, stopped in error, would fail the next response
                # all the same): closed here, it leaves the pool.
                self.close()
            elif isinstance(exc, httptools.HttpParserUpgrade):
                self._fail(UpstreamProtocolError("the upstream switched protocols on a plain HTTP request"))
            elif isinstance(exc, httptools.HttpParserCallbackError):
                cause = exc.__context__
                self._fail(cause if isinstance(cause, UpstreamError) else UpstreamProtocolError(str(exc)))
            else:
                self._fail(UpstreamProtocolError(f"the upstream sent an invalid response ({exc})"))

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._parser is not None and not self.complete and self._exc is None:
            if self.headers_done and self._until_eof and exc is None:
                self._finish()  # a body delimited by the end of the connection
            else:
                self._fail(UpstreamClosed("the upstream closed the connection"))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()
        self._wake_drain()
        self._on_close(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._progress = self._loop.time()
        self._wake_drain()

    # -- httptools callbacks -----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        # The first byte of a message after the complete response: junk, even when the read ends before anything
        # else of it (a bare status line would otherwise leave the parser inside it, and the next response on
        # this connection would fail).
        if self.complete:
            self.reusable = False
            raise UpstreamProtocolError("the upstream sent more than one response")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value)
        if self._head_size > self._max_head:
            raise UpstreamProtocolError("the upstream response head is too large")
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if status < 200:
            # 100 Continue, 103 Early Hints: interim answers that mean nothing to the browser here.
            self._interim = True
            self.headers = []
            self._head_size = 0
            return
        self.status = status
        self.headers_done = True
        self._phase = _STREAMING
        self._progress = self._loop.time()
        if self._head_request or status in (204, 304):
            self._finish()
            return
        length = -1
        for name, value in self.headers:
            if name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding":
                length = -2
        self._until_eof = length == -1
        if not 0 <= length <= _HOLD_LIMIT:
            self.head_ready = True
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:  # a body after HEAD, or junk
            self.reusable = False
            return
        self._chunks.append(body)
        self._buffered += len(body)
        self._progress = self._loop.time() if self._buffered > _HIGH_WATER else self._progress
        if self._buffered > _HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        if self.head_ready:
            self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if not self.complete:
            self._finish()

    def _finish(self) -> None:
        self.complete = True
        self.head_ready = True
        parser = self._parser
        # After HEAD the parser still expects the body the length announces, so never reuse that socket.
        self.reusable = (
            not self._head_request
            and not self._until_eof
            and self.sent_all
            and parser is not None
            and parser.should_keep_alive()
        )
        self._wake()  # the timer stays armed for the next exchange: when it fires it finds nothing to time
