"""Writing one request to an upstream connection, its body streamed (framed as chunks when it came so) with
backpressure; stops early when the upstream answers (or dies) before the body is through.

The exchange around it (pick a connection, retry once on a stale one, wait for the head) is the request's
own, in ``cycle.HttpCycle``.
"""

from __future__ import annotations

from .body import LAST_CHUNK, RequestBody, frame_chunk
from .upstream import UpstreamConnection

__all__ = ["send_request"]


async def send_request(conn: UpstreamConnection, head: bytes, body: RequestBody | None, chunked: bool) -> None:
    if body is None:
        conn.write(head)
        conn.end_send()
        return
    frame = frame_chunk if chunked else bytes
    out = [head]
    if body.replay:  # a retry: what was already read from the browser goes again first
        out += [frame(c) for c in body.replay if c]
    elif not body.done:
        first = await body.read()
        if first is not None:
            out.append(frame(first))
    # What is in hand goes out in one write, joined with the end of the body when that is known (one send()
    # syscall and one wake-up of the upstream for a small body, as for a bodiless request).
    while not body.done:
        conn.write(b"".join(out))
        if conn.failed or conn.headers_done:
            return  # the upstream answered (or died) early; the socket is not reused
        await conn.drain()
        chunk = await body.read()
        out = [frame(chunk)] if chunk is not None else []
    if chunked:
        out.append(LAST_CHUNK)
    if out:
        conn.write(b"".join(out))
    conn.end_send()
