"""The upstream client's per-request overhead: one transport write per request whose body is already in hand
(head, body and the chunked terminator joined: each write is a send() syscall and a wake-up of the upstream), and
one timer per keep-alive connection rather than one per exchange, with every timeout still on time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from frontdesk.gateway.proxy.body import RequestBody
from frontdesk.gateway.proxy.errors import UpstreamTimeout
from frontdesk.gateway.proxy.exchange import send_request
from frontdesk.gateway.proxy.upstream import UpstreamConnection


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def abort(self) -> None:
        pass


def connection() -> tuple[UpstreamConnection, RecordingTransport]:
    conn = UpstreamConnection(("http", "up", 80), read_timeout=30, max_head=65536, on_close=lambda c: None)
    transport = RecordingTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def body_of(*parts: bytes) -> RequestBody:
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return RequestBody(receive, 1 << 20)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_small_body_goes_out_with_its_head_in_one_write(chunked: bool) -> None:
    conn, transport = connection()
    conn.begin(head_request=False, timeout=30, has_body=True)
    await send_request(conn, b"POST /x HTTP/1.1\r\n\r\n", body_of(b'{"a": 1}'), chunked)
    assert len(transport.writes) == 1
    expected = b'8\r\n{"a": 1}\r\n0\r\n\r\n' if chunked else b'{"a": 1}'
    assert transport.writes[0] == b"POST /x HTTP/1.1\r\n\r\n" + expected
    assert conn.sent_all
    conn.close()


async def test_a_replayed_body_goes_out_with_its_head_in_one_write() -> None:
    conn, transport = connection()
    body = body_of(b"ab", b"cd")
    while await body.read() is not None:
        pass
    conn.begin(head_request=False, timeout=30, has_body=True)
    await send_request(conn, b"POST /x HTTP/1.1\r\n\r\n", body, True)  # the retry on a stale connection
    assert transport.writes == [b"POST /x HTTP/1.1\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"]
    conn.close()


async def test_a_streamed_body_is_written_as_it_comes() -> None:
    conn, transport = connection()
    conn.begin(head_request=False, timeout=30, has_body=True)
    await send_request(conn, b"POST /x HTTP/1.1\r\n\r\n", body_of(b"ab", b"cd", b""), True)
    assert b"".join(transport.writes) == b"POST /x HTTP/1.1\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"
    assert len(transport.writes) == 3  # the head with the first piece, the second piece, the end
    conn.close()



class Handle:
    def __init__(self, at: float, callback: Callable[[], None]) -> None:
        self.at, self.callback, self.cancelled = at, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class ManualLoop:
    """The connection's view of the loop (time, timers) on a clock the test moves; futures stay real."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[Handle] = []

    def time(self) -> float:
        return self.now

    def call_at(self, at: float, callback: Callable[[], None]) -> Handle:
        self.timers.append(Handle(at, callback))
        return self.timers[-1]

    def call_later(self, delay: float, callback: Callable[[], None]) -> Handle:
        return self.call_at(self.now + delay, callback)

    def create_future(self) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()

    def advance_to(self, when: float) -> None:
        while due := sorted((h for h in self.timers if not h.cancelled and h.at <= when), key=lambda h: h.at):
            handle = due[0]
            self.timers.remove(handle)
            self.now = handle.at
            handle.callback()
        self.now = when


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def exchange(conn: UpstreamConnection, timeout: float) -> None:
    conn.begin(head_request=False, timeout=timeout, has_body=False)
    conn.write(b"GET / HTTP/1.1\r\n\r\n")
    conn.end_send()


async def test_a_keep_alive_connection_arms_one_timer_for_all_its_exchanges() -> None:
    conn, _ = connection()
    loop = conn._loop = ManualLoop()  # type: ignore[assignment]
    for _ in range(3):
        exchange(conn, timeout=10)
        conn.data_received(OK)
        assert conn.complete and conn.reusable
        loop.advance_to(loop.now + 1)
    assert len(loop.timers) == 1
    conn.close()


async def test_a_timer_left_by_an_earlier_exchange_does_not_cut_the_next_one_short() -> None:
    conn, _ = connection()
    loop = conn._loop = ManualLoop()  # type: ignore[assignment]
    exchange(conn, timeout=10)  # due at 10
    conn.data_received(OK)
    loop.advance_to(5)
    exchange(conn, timeout=10)  # due at 15
    loop.advance_to(14.9)
    assert not conn.failed
    loop.advance_to(15)
    with pytest.raises(UpstreamTimeout):
        await conn.wait_head()


async def test_a_shorter_timeout_on_a_reused_connection_still_fires_on_time() -> None:
    conn, _ = connection()
    loop = conn._loop = ManualLoop()  # type: ignore[assignment]
    exchange(conn, timeout=60)
    conn.data_received(OK)
    exchange(conn, timeout=2)
    loop.advance_to(1.9)
    assert not conn.failed
    loop.advance_to(2)
    assert conn.failed
