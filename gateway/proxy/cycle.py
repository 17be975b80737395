"""One proxied HTTP request, from its head to the last byte of its answer, as one object.

Shaped like uvicorn's ``RequestResponseCycle``: what a request learns on its way (route, scanned head, session
grant, upstream connection) and what its answer did (status, started, complete, bytes sent, the error it was
refused with) live on one :class:`HttpCycle`. What watches requests (metrics, request ids, an access log)
reads that one object instead of values threaded through helpers. What every request shares is built once,
in :class:`HttpDeps`.

Lean on purpose, since this runs for every proxied request: slots, no task of its own (the stream watchers
are the ones the proxy always had, for streamed answers only), no copies of bodies or headers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import Scope

from frontdesk.middleware.admission import session_grant
from frontdesk.middleware.asgi_io import raw_headers
from frontdesk.middleware.csrf import check_request
from frontdesk.middleware.errors import FrontdeskError
from frontdesk.middleware.no_store import decorate_raw
from frontdesk.middleware.session_watch import STREAM_WATCH_DELAY, SessionWatch, Watching

from .body import ClientGone, RequestBody
from .client_side import ClientSide, Headers
from .contracts import NO_METER, NO_REQUEST_ID, GrantLike, ProxyMeter, RequestIdSource, TokenSource, TrustPolicy
from .errors import (
    BadFraming,
    BrowserGone,
    HeadersTooLarge,
    MethodNotAllowed,
    PayloadTooLarge,
    ServerStopping,
    SessionEnded,
    UpstreamClosed,
    UpstreamError,
)
from .exchange import send_request
from .headers import ScannedRequest, filter_response_headers, render_request_head, replace_cookie, scan_request_headers
from .origins import OriginPolicy
from .paths import upstream_target
from .pool import UpstreamPool
from .responses import error_answer
from .routes import Route
from .settings import ProxySettings
from .upstream import UpstreamConnection

__all__ = ["HttpDeps", "HttpCycle"]

log = logging.getLogger("frontdesk.proxy")
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_CHUNKED = b"transfer-encoding: chunked\r\n"


@dataclass(frozen=True, slots=True)
class HttpDeps:
    """What every proxied HTTP request shares, built once by ``ProxyApp``."""

    engine: TokenSource
    settings: ProxySettings
    trusted: TrustPolicy
    origins: OriginPolicy
    pool: UpstreamPool
    sessions: SessionWatch  # ends a streamed answer when its session ends
    csrf: str  # the CSRF header's name, lower-case
    csrf_b: bytes
    cookie_name: str
    cookie_b: bytes
    public_host: bytes
    meter: ProxyMeter  # upstream latency and errors (the metrics); NO_METER when they are off
    request_id: RequestIdSource  # the id written upstream as X-Request-ID

    @classmethod
    def build(
        cls,
        engine: TokenSource,
        *,
        settings: ProxySettings,
        trusted: TrustPolicy,
        origins: OriginPolicy,
        pool: UpstreamPool,
        sessions: SessionWatch,
        csrf_header: str,
        meter: ProxyMeter = NO_METER,
        request_id: RequestIdSource = NO_REQUEST_ID,
    ) -> HttpDeps:
        csrf = csrf_header.lower()
        return cls(
            engine=engine,
            settings=settings,
            trusted=trusted,
            origins=origins,
            pool=pool,
            sessions=sessions,
            csrf=csrf,
            csrf_b=csrf.encode("latin-1"),
            cookie_name=engine.cookie_name,
            cookie_b=engine.cookie_name.encode("latin-1"),
            public_host=settings.public_host.encode("ascii"),
            meter=meter,
            request_id=request_id,
        )


class HttpCycle:
    """One request on a proxied route: :meth:`run` admits it, forwards it and streams the answer back.

    Read by hooks (all set whatever happens): ``route``, ``method``, ``grant`` (None: no session asked or
    none usable), ``conn`` (the upstream connection, once one answered), ``status`` (0 until an answer
    started), ``error`` (the refusal sent, if any), ``response_started``, ``response_complete`` and
    ``bytes_sent`` (body bytes passed to the server for the browser). Set once the request passed the
    method check: ``scanned``, ``target``, ``cookie``, ``body`` and ``framing``.
    """

    __slots__ = (
        "body",
        "bytes_sent",
        "client",
        "conn",
        "cookie",
        "deps",
        "error",
        "framing",
        "grant",
        "method",
        "raw_path",
        "response_complete",
        "response_started",
        "route",
        "scanned",
        "scope",
        "set_cookie",
        "started",
        "status",
        "target",
    )

    scanned: ScannedRequest
    target: bytes
    cookie: str | None
    body: RequestBody | None
    framing: bytes | None

    def __init__(self, deps: HttpDeps, scope: Scope, client: ClientSide, route: Route, raw_path: bytes) -> None:
        self.deps = deps
        self.scope = scope
        self.client = client  # the browser's connection: ASGI, or the fast path's protocol (client_side.py)
        self.route = route
        self.raw_path = raw_path
        self.method: str = scope["method"]
        self.grant: GrantLike | None = None
        self.set_cookie: str | None = None  # a rotated refresh cookie owed to the browser, whatever happens
        self.conn: UpstreamConnection | None = None
        self.status = 0
        self.error: FrontdeskError | None = None
        self.response_started = False
        self.response_complete = False
        self.bytes_sent = 0
        self.started = 0.0  # when the request went upstream (perf_counter)

    async def run(self) -> None:
        try:
            self._check()
            self.grant = grant = await session_grant(
                self.deps.engine, self.cookie, auth=self.route.auth, audience=self.route.audience
            )
        except MethodNotAllowed as exc:
            await self.refuse(exc, extra=[(b"allow", exc.allow.encode("ascii"))])
            return
        except FrontdeskError as exc:
            # Framing we refused leaves the connection in doubt: close it. An unread body after a 413 is
            # fine to leave: uvicorn discards it and the browser gets to read our answer.
            await self.refuse(exc, close=isinstance(exc, BadFraming))
            return
        if grant is not None:
            self.set_cookie = grant.set_cookie
        await self.forward(None)

    async def forward(self, sent: UpstreamConnection | None) -> None:
        """Forward the admitted request and answer the browser. ``sent``: the connection the express lane
        already wrote the request on (its answer turned out to need this path), else None."""
        grant = self.grant
        started = self.started if sent is not None else time.perf_counter()
        try:
            conn = await self._exchange(sent)
            if conn.status == 401 and grant is not None and self._may_retry() and _invalid_token(conn.headers):
                # The upstream disagrees with our cached token (revoked key, clock skew): mint once, retry once.
                self._discard(conn)
                await self._mint_again(grant)
                conn = await self._exchange(None)
        except ClientGone:
            return
        except FrontdeskError as exc:
            self.deps.meter.failed(self.route, exc)
            # A refresh cookie rotated for this request must reach the browser even when the upstream
            # failed: the one it still holds was just retired, and presenting it again looks like theft.
            extra = [(b"set-cookie", self.set_cookie.encode("latin-1"))] if self.set_cookie else None
            await self.refuse(exc, extra=extra)
            return
        self.deps.meter.answered(self.route, started)
        await self._respond(conn)

    # -- the express lane: the common request answered from callbacks, without a task ----------------------
    # A request without a body, whose session grant the engine remembers, sent on an idle pooled connection and
    # answered whole with its head: admitted by the very checks above (``_check``, the engine's memo), sent with
    # the same head (``_head``), answered with the same headers (``_whole``). Whatever else happens (a refusal,
    # a grant to verify or mint, no idle connection, a stream, a failure, a 401 to retry, a browser not
    # reading) goes the async way, from where the express lane stopped (``forward``).

    def admit_at_once(self) -> bool:
        """Admit without waiting: True when the request passed and needs no grant or has a remembered one;
        False leaves everything to :meth:`run` (nothing was sent or changed)."""
        try:
            self._check()
        except FrontdeskError:
            return False  # the refusal is written by run(), as every refusal is
        if self.body is not None:
            return False
        route = self.route
        if route.auth != "none":
            grant = self.deps.engine.remembered(self.cookie, audience=route.audience)
            if grant is None or grant.set_cookie is not None:
                return False
            self.grant = grant
        return True

    def idle_connection(self) -> UpstreamConnection | None:
        """An idle pooled connection to this route's upstream, or None (then :meth:`run`, which connects)."""
        return self.deps.pool.take_idle(self.route.upstream)

    def send_at_once(self, conn: UpstreamConnection, listener: Callable[[], None]) -> None:
        """Write the admitted request on ``conn`` (from :meth:`idle_connection`); ``listener`` is told when the
        exchange moves on (its head arrived, or it failed)."""
        self.started = time.perf_counter()
        conn.begin(head_request=self.method == "HEAD", timeout=self.route.timeout, has_body=False)
        conn.listener = listener
        conn.write(self._head())
        conn.end_send()

    def whole_at_once(self, conn: UpstreamConnection) -> tuple[int, Headers, bytes] | None:
        """The answer to send when the upstream's came whole with its head and needs nothing more (no retry
        on a 401); the connection is then back in the pool. None: :meth:`forward` takes over."""
        if not conn.complete or conn.failed or (conn.status == 401 and self.grant is not None):
            return None
        self.conn = conn
        self.deps.meter.answered(self.route, self.started)
        return self._whole(conn)

    def _whole(self, conn: UpstreamConnection) -> tuple[int, Headers, bytes]:
        """The browser's answer to a complete upstream response: status, headers and body; ``conn`` released."""
        headers = self._start_headers(conn)
        status = conn.status
        if status == 304 or status == 204:
            # Never a body, but a 304 may announce the 200's length (RFC 9110 8.6), and both writers (uvicorn's,
            # the fast path's) would then find the empty body short of it and fail the answer: not passed on.
            headers = [pair for pair in headers if pair[0] != b"content-length"]
        data = conn.take_body()
        self.deps.pool.release(conn)
        self.bytes_sent = len(data)
        self.response_complete = True
        return status, headers, data

    def _start_headers(self, conn: UpstreamConnection) -> Headers:
        """The answer's head for the browser from the upstream's (filtered, then decorated as session mode's
        answers are); from here on the answer counts as started with the upstream's status."""
        headers, _ = filter_response_headers(conn.headers, self.deps.cookie_b)
        cookie = self.set_cookie.encode("latin-1") if self.set_cookie else None
        headers = decorate_raw(headers, cookie, authenticated=self.grant is not None, lower_case=True)
        self.status = conn.status
        self.response_started = True
        return headers

    async def refuse(
        self, exc: FrontdeskError, *, extra: list[tuple[bytes, bytes]] | None = None, close: bool = False
    ) -> None:
        """Answer with the JSON error for ``exc`` (the one writer every layer uses)."""
        # Handled: its traceback (whose frames hold this cycle) would only tie the two into a reference loop.
        self.error = exc.with_traceback(None)
        self.status = exc.status
        self.response_started = True
        answer = error_answer(exc, extra=extra, close=close)
        self.bytes_sent += len(answer.body)
        await self.client.start(answer.status, raw_headers(answer), answer.body, False)
        self.response_complete = True

    # -- the request -------------------------------------------------------------------------------------

    def _check(self) -> None:
        """Everything decided before the session is asked, cheapest first; raises the refusal."""
        route = self.route
        settings = self.deps.settings
        if self.method not in route.methods:
            raise MethodNotAllowed(f"{self.method} is not allowed here", allow=route.allow_header())
        self.scanned = scanned = scan_request_headers(self.scope["headers"], self.deps.csrf_b)
        if scanned.size > settings.max_header_size:
            raise HeadersTooLarge(f"the request headers are larger than {settings.max_header_size} bytes")
        limit = route.max_body_size if route.max_body_size is not None else settings.max_body_size
        if scanned.length is not None and scanned.length > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        self.target = upstream_target(route, self.raw_path, self.scope.get("query_string", b""))
        # The admission pipeline's rules (frontdesk.middleware.admission), with this route's decisions made
        # at start-up.
        lookup = scanned.lookup
        origins = self.deps.origins.own_origins(self.scope, scanned) if "origin" in lookup else frozenset()
        check_request(lookup, websocket=False, csrf_header=self.deps.csrf if route.csrf else None, own_origins=origins)
        self.cookie = scanned.cookie.decode("latin-1") if scanned.cookie is not None else None
        self.body = RequestBody(self.client.receive, limit) if (scanned.chunked or scanned.length) else None
        if scanned.length is not None:  # Content-Length: 0 included
            self.framing = b"content-length: %d\r\n" % scanned.length
        else:
            self.framing = _CHUNKED if scanned.chunked else None

    def _head(self) -> bytes:
        """The request head for the upstream, with the current grant's Bearer token."""
        grant = self.grant
        peer = self.scope.get("client")
        deps = self.deps
        rid = deps.request_id()
        return render_request_head(
            self.scanned,
            self.method.encode("ascii"),
            self.target,
            self.route.upstream.host_header,
            bearer=grant.access_token.encode("ascii") if grant is not None else None,
            cookie_name=deps.cookie_b,
            peer=peer[0] if peer else None,
            scheme=self.scope.get("scheme", "http"),
            trusted=deps.trusted,
            public_host=deps.public_host,
            body=self.framing,
            request_id=rid.encode("ascii") if rid is not None else None,
        )

    def _may_retry(self) -> bool:
        """Whether the request may go upstream a second time: idempotent, and its body (if any) kept."""
        body = self.body
        return self.method in _IDEMPOTENT and (body is None or body.replay is not None)

    async def _mint_again(self, grant: GrantLike) -> None:
        cookie = self.cookie
        if grant.set_cookie:
            cookie = replace_cookie(cookie, grant.set_cookie, self.deps.cookie_name)
        self.grant = fresh = await self.deps.engine.grant(cookie, audience=self.route.audience, force_new=True)
        self.set_cookie = fresh.set_cookie or self.set_cookie

    # -- the upstream exchange -----------------------------------------------------------------------------

    async def _exchange(self, sent: UpstreamConnection | None) -> UpstreamConnection:
        """Send the request and wait for the response head; retry once on a stale pooled connection.
        ``sent``: a connection the request is already written on (the express lane's)."""
        pool = self.deps.pool
        route = self.route
        body = self.body
        head: bytes | None = None
        retried = False
        while True:
            written = sent is not None  # by the express lane, which only takes pooled connections
            if sent is not None:
                conn, sent, reused = sent, None, True
            else:
                conn = pool.take_idle(route.upstream) or await pool.connect(route.upstream)
                reused = conn.uses > 0
                conn.begin(head_request=self.method == "HEAD", timeout=route.timeout, has_body=body is not None)
            try:
                if written:
                    pass  # the express lane wrote it
                elif body is None:
                    head = head or self._head()
                    conn.write(head)
                    conn.end_send()
                else:
                    await send_request(conn, head or self._head(), body, self.scanned.chunked)
                await conn.wait_head()
                self.conn = conn
                return conn
            except UpstreamClosed:
                conn.close()
                # The upstream closed an idle connection just as we picked it: nothing was processed.
                stale = reused and not conn.got_bytes and (body is None or body.replay is not None)
                if retried or not stale or self.method not in _IDEMPOTENT:
                    raise
                retried = True
            except BaseException:
                conn.close()
                raise

    def _discard(self, conn: UpstreamConnection) -> None:
        if conn.complete:
            self.deps.pool.release(conn)
        else:
            conn.close()

    # -- the answer ------------------------------------------------------------------------------------

    async def _send_body(self, data: bytes, more: bool) -> None:
        self.bytes_sent += len(data)
        if not more:
            self.response_complete = True
        await self.client.send_body(data, more)

    async def _respond(self, conn: UpstreamConnection) -> None:
        deps = self.deps
        released = False
        watcher: asyncio.Task[None] | None = None
        watching: Watching | None = None
        try:
            if conn.complete:  # the common case: the whole response arrived with its head
                status, headers, data = self._whole(conn)
                released = True
                await self.client.start(status, headers, data, False)  # head and body: one write
                return
            headers = self._start_headers(conn)
            await self.client.start(conn.status, headers)
            # A stream: watch for the browser leaving, or an endless SSE stream would be read for nobody.
            watcher = asyncio.ensure_future(self._watch_disconnect(conn, conn.uses))
            event_stream = _event_stream(headers)
            if self.grant is not None or event_stream:
                # ... for its session ending (logout, password change): the stream must not outlive it; and, for
                # an event stream, which never ends on its own, for the server stopping.
                stopping = ServerStopping("the gateway is stopping")
                watching = deps.sessions.watch(
                    self.grant.sid if self.grant is not None else None,
                    _cut(conn, conn.uses, SessionEnded("the session of this stream ended")),
                    delay=STREAM_WATCH_DELAY,
                    on_shutdown=_cut(conn, conn.uses, stopping) if event_stream else None,
                )
            while True:
                try:
                    chunk = await conn.read_body()
                except UpstreamError as exc:
                    deps.meter.failed(self.route, exc)
                    # Too late for a JSON error: returning without finishing makes uvicorn close the browser
                    # connection, so a truncated body can never pass for a complete one.
                    if isinstance(exc, SessionEnded | ServerStopping) and event_stream:
                        # An event stream has no "complete": end it cleanly, so the browser's EventSource
                        # reconnects (meets the 401, or another gateway), without a network error logged.
                        await self._send_body(b"", False)
                    elif not isinstance(exc, BrowserGone | SessionEnded | ServerStopping):
                        log.warning("upstream failed mid-response: %s", exc.detail)
                    return
                if chunk is None:
                    deps.pool.release(conn)
                    released = True
                    await self._send_body(b"", False)
                    return
                if conn.complete and conn.drained:  # the last piece: one send instead of two
                    deps.pool.release(conn)
                    released = True
                    await self._send_body(chunk, False)
                    return
                await self._send_body(chunk, True)
        finally:
            if watcher is not None:
                watcher.cancel()
            if watching is not None:
                watching.close()
            if not released:
                conn.close()

    async def _watch_disconnect(self, conn: UpstreamConnection, uses: int) -> None:
        body = self.body
        if body is not None and not body.done:
            return  # the rest of the body belongs to nobody now; uvicorn discards it
        while True:
            message = await self.client.receive()
            if message["type"] == "http.disconnect":
                # Only while the connection still serves this exchange (it may be pooled and reused by now).
                if conn.uses == uses and not conn.complete:
                    conn.abort(BrowserGone("the browser went away"))
                return


def _invalid_token(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"www-authenticate" and b"invalid_token" in value and value[:6].lower() == b"bearer":
            return True
    return False


def _event_stream(headers: list[tuple[bytes, bytes]]) -> bool:
    """A server-sent-events response without a declared length (a clean end cannot truncate it)."""
    sse = False
    for name, value in headers:
        if name.lower() == b"content-length":
            return False
        if name.lower() == b"content-type" and value.lower().startswith(b"text/event-stream"):
            sse = True
    return sse


def _cut(conn: UpstreamConnection, uses: int, why: UpstreamError) -> Callable[[], None]:
    """Abort the upstream exchange on ``conn`` with ``why`` (its session ended, the server is stopping); the
    response loop then ends the browser's side (cleanly for an event stream, mid-body for anything else)."""

    def cut() -> None:
        if conn.uses == uses and not conn.complete:  # still this exchange (not pooled and reused since)
            conn.abort(why)

    return cut
