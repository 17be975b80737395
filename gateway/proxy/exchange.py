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
    conn.write(b"".join(out))
    while not body.done:
        if conn.failed or conn.headers_done:
            return  # the upstream answered (or died) early; the socket is not reused
        await conn.drain()
        chunk = await body.read()
        if chunk is not None:
            conn.write(frame(chunk))
    if chunked:
        conn.write(LAST_CHUNK)
    conn.end_send()
