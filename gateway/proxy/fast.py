"""The fast path: ``frontdesk serve``'s own HTTP protocol answers proxied requests without the ASGI layers.

Under uvicorn every proxied request used to pass the server's ASGI cycle, the gateway's dispatch, the edge's
send wrapper and ``ProxyApp``'s routing, with a message dict per step, before the same :class:`~.cycle.HttpCycle`
did the work. On the fast path (``serving.FastHttp``, ``[server] fast_path = true``, the default) the protocol
resolves the route as soon as the request head is parsed and runs that very ``HttpCycle`` with a
:class:`ProtocolClient` as its client side: the answer's head and body are written as bytes straight onto the
transport. Only the byte I/O differs; the admission rules, the forwarding, the edge's request id, security
headers and counts (:class:`EdgeLike`) and uvicorn's access line are the same code or the same output.

The express lane: a request without a body whose session grant the engine remembers for its cookie (the
usual API call of a signed-in browser) is admitted as soon as its head is parsed (``HttpCycle.admit_at_once``:
the same checks), written on an idle pooled upstream connection, and answered from that connection's callback
once the upstream's whole answer is in (``HttpCycle.whole_at_once``): no task, no future, no extra turn of the
event loop. Whatever it cannot finish that way (no idle connection, a grant to verify or mint, a refusal, a
stream, a failure or a 401 to retry, a browser not reading) continues in the task as before, from where it
stopped (``HttpCycle.forward``).

Anything that is not a plain request on a proxied route (``/auth/*``, health, static files, a bad path, any
upgrade, a server with a ``root_path`` or at its concurrency limit) is handed to the ASGI app as before.

:class:`ProtocolClient` is uvicorn's own ``RequestResponseCycle`` for the request side (body buffering, flow
control, ``Expect: 100-continue``, disconnects, keep-alive and the pipeline of queued requests all stay
uvicorn's), with a byte writer instead of the ASGI ``send``: the same framing rules (Content-Length, chunked,
HEAD, 204/304, ``Connection: close``), one write for a head with a whole body.
"""

from __future__ import annotations

import contextvars
import logging
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from .client_side import ClientSide, Headers
from .cycle import HttpCycle
from .routes import Route
from .upstream import UpstreamConnection

# The bytes of uvicorn's HEADER_VALUE_RE ([\x00-\x08\x0a-\x1f\x7f]): every control byte but the tab
_CONTROL = bytes([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])

__all__ = ["EdgeLike", "EdgePassageLike", "FastPath", "Proxied", "ProtocolClient", "header_lines"]


class EdgePassageLike(Protocol):
    """One request's passage through the gateway's edge (``gateway.edge.EdgePassage``)."""

    def start(self, status: int, headers: Headers) -> Headers: ...
    def more(self) -> None: ...
    def end(self, raised: bool) -> None: ...


class EdgeLike(Protocol):
    """The gateway's edge layer (``gateway.edge.GatewayEdge``), entered once per request."""

    def enter(self, scope: Scope) -> EdgePassageLike: ...


class Proxied(Protocol):
    """The proxy (``ProxyApp``), as the fast path uses it."""

    def fast_route(self, raw_path: bytes) -> Route | None: ...
    def cycle(self, scope: Scope, client: ClientSide, route: Route, raw_path: bytes) -> HttpCycle: ...
    async def run_cycle(self, scope: Scope, client: ClientSide, route: Route, raw_path: bytes) -> None: ...


class FastPath:
    """What ``frontdesk serve``'s protocol needs to answer proxied requests itself: which requests are the
    proxy's (:meth:`route`), the proxy, and the edge layer the ASGI app would have put around them."""

    __slots__ = ("_owns", "_seen", "edge", "proxy")

    def __init__(
        self, proxy: Proxied, *, edge: EdgeLike | None = None, owns: Callable[[str], bool] | None = None
    ) -> None:
        self.proxy = proxy
        self.edge = edge
        self._owns = owns  # paths the app in front of the proxy answers itself (/auth/*, health, ...)
        self._seen: dict[bytes, tuple[str, Route | None]] = {}

    def route(self, path: str, raw_path: bytes) -> Route | None:
        """The proxied route of this request path, or None: the ASGI app handles it."""
        if self._owns is not None and self._owns(path):
            return None
        return self.proxy.fast_route(raw_path)

    def resolve(self, raw_path: bytes) -> tuple[str, Route | None]:
        """The decoded path (as uvicorn decodes it) and :meth:`route` for a raw request path.

        Remembered per raw path (routes do not change while the server runs): an app's requests keep coming
        to the same few paths, and each lookup decoded, matched the app's own paths and walked the route table.
        The memory is bounded: past :data:`_SEEN_MAX` paths it starts again.
        """
        seen = self._seen.get(raw_path)
        if seen is None:
            path = raw_path.decode("ascii")
            if "%" in path:
                path = urllib.parse.unquote(path)
            seen = (path, self.route(path, raw_path))
            if len(self._seen) >= _SEEN_MAX:
                self._seen.clear()
            self._seen[raw_path] = seen
        return seen


_SEEN_MAX = 4096


_rendered: list[Any] = [None, b""]  # the last default headers seen, and their bytes


def _default_head(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's own headers (date, server) as bytes: rendered once per list, which the server replaces
    every second with the new date."""
    if _rendered[0] is not default_headers:
        _rendered[:] = [default_headers, b"".join(b"%b: %b\r\n" % pair for pair in default_headers)]
    rendered: bytes = _rendered[1]
    return rendered


def header_lines(headers: Headers) -> bytes:
    """``headers`` as the head's ``name: value\r\n`` lines; RuntimeError if a name or value holds a control
    byte other than a tab (a CR or LF would split the head: response splitting).

    Checked on the rendered lines, in C, in one pass: deleting every control byte must remove exactly the CR
    and LF that end each line, so a name or value holding any control byte of its own is caught. uvicorn's
    regular expression over a second join of the headers cost several times as much per answer.
    """
    if not headers:
        return b""
    lines = b"\r\n".join(map(b": ".join, headers)) + b"\r\n"
    if len(lines.translate(None, _CONTROL)) != len(lines) - 2 * len(headers):
        raise RuntimeError("Invalid HTTP header value.")
    return lines


class Spawner(Protocol):
    """The server protocol's way of starting a request's task (uvicorn's ``HttpToolsProtocol``)."""

    app: Any

    def _start_asgi_task(self, cycle: Any, app: Any) -> None: ...


class ProtocolClient(RequestResponseCycle):
    """One request on the fast path: uvicorn's request cycle, answering with bytes instead of ASGI messages.

    uvicorn starts it as it starts any cycle (at once, or when the pipelined request before it is answered),
    by calling :meth:`run_asgi`; this one runs the proxy's ``HttpCycle`` instead of the app. Before that,
    :meth:`express` may answer it from callbacks without any task (``HttpCycle``'s express lane).
    """

    def __init__(self, fast: FastPath, route: Route, *cycle: Any) -> None:
        """``cycle``: ``RequestResponseCycle``'s own arguments, in its order."""
        super().__init__(*cycle)
        self._fast = fast
        self._route = route
        self._passage: EdgePassageLike | None = None
        self._resume: Coroutine[Any, Any, None] | None = None  # what the task runs after the express lane

    # -- the express lane --------------------------------------------------------------------------------

    def express(self, server: Spawner) -> bool:
        """Send the request upstream now and answer it from the upstream connection's callback, when
        ``HttpCycle`` admits it at once and a pooled connection is idle; False: start the task as usual
        (nothing was done). Whatever the express lane cannot finish goes on in a task (:meth:`run_asgi`)."""
        scope: Scope = self.scope  # type: ignore[assignment]  # uvicorn's TypedDict is a plain dict
        client: ClientSide = self  # type: ignore[assignment]  # as in run_asgi
        http = self._fast.proxy.cycle(scope, client, self._route, scope["raw_path"])
        if not http.admit_at_once():
            return False
        conn = http.idle_connection()
        if conn is None:
            return False
        # Its own context, as a task would have: the request id the edge sets must not outlive the request.
        context = contextvars.copy_context()
        context.run(self._express_send, http, conn, context, server)
        return True

    def _express_send(
        self, http: HttpCycle, conn: UpstreamConnection, context: contextvars.Context, server: Spawner
    ) -> None:
        edge = self._fast.edge
        self._passage = edge.enter(self.scope) if edge is not None else None  # type: ignore[arg-type]
        try:
            http.send_at_once(conn, lambda: context.run(self._express_answer, http, conn, server))
        except BaseException as exc:  # as run_asgi would: the task logs it and answers 500
            # Dropped: its loss, heard of later, must not go on with the request too (a second task, the
            # request sent again, the answer's head written twice).
            conn.listener = None
            conn.close()
            self._continue(server, _reraise(exc))

    def _express_answer(self, http: HttpCycle, conn: UpstreamConnection, server: Spawner) -> None:
        if not conn.head_ready and not conn.failed:
            return
        conn.listener = None
        try:
            answer = None if self.flow.write_paused else http.whole_at_once(conn)
            if answer is None:  # a stream, a failure, a 401 to retry, a browser not reading: the async way
                self._continue(server, http.forward(conn))
                return
            self._start_now(*answer, more=False)
        except BaseException as exc:
            self._continue(server, _reraise(exc))
            return
        self.on_response = lambda: None  # as run_asgi leaves it
        if self._passage is not None:
            self._passage.end(False)

    def _continue(self, server: Spawner, work: Coroutine[Any, Any, None]) -> None:
        self._resume = work
        server._start_asgi_task(self, server.app)

    # -- the task --------------------------------------------------------------------------------------

    async def run_asgi(self, app: Any) -> None:  # the name uvicorn calls; ``app`` is not needed here
        scope: Scope = self.scope  # type: ignore[assignment]  # uvicorn's TypedDict is a plain dict
        edge = self._fast.edge
        passage = self._passage
        if passage is None and edge is not None:
            passage = self._passage = edge.enter(scope)
        raised = True
        try:
            work, self._resume = self._resume, None
            if work is None:
                # uvicorn's receive is typed with every ASGI event; on this cycle it only ever gives HTTP ones
                client: ClientSide = self  # type: ignore[assignment]
                work = self._fast.proxy.run_cycle(scope, client, self._route, scope["raw_path"])
            await work
            raised = False
        except BaseException as exc:  # as uvicorn's own wrapper: logged, 500 if nothing was sent, else cut
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                await self.send_500_response()
            else:
                self.transport.close()
        else:
            if not self.response_complete and not self.disconnected:
                self.logger.error("ASGI callable returned without completing response.")
                self.transport.close()
        finally:
            self.on_response = lambda: None
            if passage is not None:
                passage.end(raised)

    async def start(self, status: int, headers: Headers, body: bytes = b"", more: bool = True) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        self._start_now(status, headers, body, more)

    def _start_now(self, status: int, headers: Headers, body: bytes, more: bool) -> None:
        passage = self._passage
        if passage is not None:  # first, as the edge's ASGI wrapper sees the answer before the server does
            headers = passage.start(status, headers)
        if self.disconnected:
            return
        if self.response_started:
            raise RuntimeError("the answer's head was already sent")
        self.response_started = True
        self.waiting_for_100_continue = False
        scope = self.scope
        # uvicorn's access line, word for word; its fields are built only when the line will be written
        # (uvicorn builds them for every request whenever the logger has a handler, even below its level)
        if self.access_log and self.access_logger.isEnabledFor(logging.INFO):
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(scope),
                scope["method"],
                get_path_with_query_string(scope),
                scope["http_version"],
                status,
            )
        # In C, not a Python loop per header: this runs for every proxied request. Names are lower-case
        # tokens (the upstream's came through httptools, the rest are the gateway's own).
        lines = header_lines(headers)
        named = dict(headers)  # framing: what uvicorn's writer decides from the same headers
        te = named.get(b"transfer-encoding")
        if te is not None and te.lower() == b"chunked":
            self.chunked_encoding = True
        elif (length := named.get(b"content-length")) is not None:
            self.expected_content_length = int(length)
            self.chunked_encoding = False
        out = [STATUS_LINE[status], _default_head(self.default_headers), lines]
        connection = named.get(b"connection")
        if connection is not None and b"close" in [t.strip() for t in connection.lower().split(b",")]:
            self.keep_alive = False
        elif not self.keep_alive:
            out.append(b"connection: close\r\n")
        if self.chunked_encoding is None and scope["method"] != "HEAD" and status not in (204, 304):
            self.chunked_encoding = True  # neither a length nor chunked: chunked, as uvicorn does
            out.append(b"transfer-encoding: chunked\r\n")
        out.append(b"\r\n")
        if more and not body:
            self.transport.write(b"".join(out))
            return
        self._write_body(out, body, more)

    async def send_body(self, data: bytes, more: bool) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started or self.response_complete:
            raise RuntimeError("a body piece outside the answer")
        self._write_body([], data, more)

    def _write_body(self, out: list[bytes], data: bytes, more: bool) -> None:
        """Frame ``data`` after ``out`` (the head, or nothing) and write both at once."""
        if more and self._passage is not None:
            self._passage.more()
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
        elif self.chunked_encoding:
            if data:
                out += (b"%x\r\n" % len(data), data, b"\r\n")
            if not more:
                out.append(b"0\r\n\r\n")
        else:
            if len(data) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(data)
            out.append(data)
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        if not more:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()


async def _reraise(exc: BaseException) -> None:
    """A task's work that raises ``exc``: run_asgi then handles it as any error of the request."""
    raise exc
