"""One upstream exchange: send the request (streaming its body), wait for the response head, and retry once
when a pooled connection turns out to have been closed by the upstream just as it was picked.
"""

from __future__ import annotations

from starlette.types import Receive

from .body import LAST_CHUNK, RequestBody, frame_chunk
from .errors import BrowserGone, UpstreamClosed
from .pool import UpstreamPool
from .routes import Route
from .upstream import UpstreamConnection

__all__ = ["open_exchange", "send_request", "watch_disconnect"]


async def open_exchange(
    pool: UpstreamPool,
    route: Route,
    head: bytes,
    body: RequestBody | None,
    chunked: bool,
    method: str,
    idempotent: bool,
) -> UpstreamConnection:
    """Send the request and wait for the response head; retry once on a stale pooled connection."""
    retried = False
    while True:
        conn = pool.take_idle(route.upstream) or await pool.connect(route.upstream)
        reused = conn.uses > 0
        conn.begin(head_request=method == "HEAD", timeout=route.timeout, has_body=body is not None)
        try:
            if body is None:
                conn.write(head)
                conn.end_send()
            else:
                await send_request(conn, head, body, chunked)
            await conn.wait_head()
            return conn
        except UpstreamClosed:
            conn.close()
            # The upstream closed an idle connection just as we picked it: nothing was processed.
            stale = reused and not conn.got_bytes and (body is None or body.replay is not None)
            if retried or not stale or not idempotent:
                raise
            retried = True
        except BaseException:
            conn.close()
            raise


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


async def watch_disconnect(receive: Receive, conn: UpstreamConnection, body: RequestBody | None, uses: int) -> None:
    if body is not None and not body.done:
        return  # the rest of the body belongs to nobody now; uvicorn discards it
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # Only while the connection still serves this exchange (it may be pooled and reused by now).
            if conn.uses == uses and not conn.complete:
                conn.abort(BrowserGone("the browser went away"))
            return
