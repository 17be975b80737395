"""``FrontdeskMiddleware``: bearer mode or session mode in front of any ASGI app (Starlette, FastAPI, ...).

Pure ASGI (the ``starlette.middleware.sessions`` shape): nothing per request is kept on ``self``. Every
decision is the admission pipeline's (``middleware.admission``): the backend admits or refuses, ``on_error``
writes a refusal, and the response to a session's request is decorated on ``http.response.start`` (rotated
cookie, ``no-store``, ``Vary: Cookie``). The WSGI adapter runs the very same steps.

    app = FrontdeskMiddleware(app, auth=BearerAuth(jwks_url="https://gw.example/.well-known/jwks.json"))
    Starlette(routes=..., middleware=[Middleware(FrontdeskMiddleware, auth=SessionAuth(engine))])
"""

from __future__ import annotations

import asyncio
import contextlib

from .admission import Admission, AuthBackend, ErrorRenderer, HasLifecycle, Refusal, endpoints_of, render_refusal
from .asgi_io import (
    WS_POLICY_VIOLATION,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    answer_endpoint,
    request_from_scope,
    send_refusal,
)
from .cookies import strip_cookie
from .errors import FrontdeskError
from .no_store import decorate_accept, decorate_raw
from .principal import ACCESS_TOKEN_KEY, SCOPE_CLAIMS, anonymous

__all__ = ["FrontdeskMiddleware", "SCOPE_CLAIMS", "ACCESS_TOKEN_KEY", "SessionEnded"]


class FrontdeskMiddleware:
    """``auth`` is any :class:`~frontdesk.middleware.admission.AuthBackend` (``BearerAuth``, ``SessionAuth`` or
    your own);
    ``on_error`` writes the answer to a refusal (default: the JSON error body every frontdesk layer writes)."""

    def __init__(self, app: ASGIApp, auth: AuthBackend, *, on_error: ErrorRenderer = render_refusal) -> None:
        self.app = app
        self.auth = auth
        self.on_error = on_error
        self._endpoints = endpoints_of(auth)  # decided once: whether it answers some paths itself (/auth/*)
        self._lifecycle = auth if isinstance(auth, HasLifecycle) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan" and self._lifecycle is not None:
                receive = _running(self._lifecycle, receive)
            await self.app(scope, receive, send)  # lifespan (seen on its way) and anything newer pass through
            return
        websocket = kind == "websocket"
        endpoints = self._endpoints
        if endpoints is not None and not websocket and endpoints.answers(scope["path"]):
            await answer_endpoint(endpoints, scope, receive, send)
            return
        request = request_from_scope(scope)
        try:  # admission.admit, inlined: this runs on every request of the app
            result = await self.auth.admit(request)
        except FrontdeskError as exc:
            result = Refusal(exc)
        if isinstance(result, Refusal):
            if websocket:
                await receive()  # websocket.connect: the handshake is answered after it
            await send_refusal(scope, send, self.on_error(result, request))
            return
        user = result.user
        if user is not None:
            scope["user"] = user
            scope["auth"] = user.credentials()
            scope[SCOPE_CLAIMS] = user.claims
        elif "user" not in scope:  # a public path: keep request.user working, as anonymous
            scope["user"], scope["auth"] = anonymous()
        if result.access_token is not None:
            scope[ACCESS_TOKEN_KEY] = result.access_token
        hidden = result.hidden_cookie
        if hidden is not None:  # a cookie session (bearer mode skips all of this)
            # The wrapped app never sees the refresh cookie, public paths included (it would end up in logs).
            scope["headers"] = _without_cookie(scope["headers"], hidden)
            if user is not None:
                send = _decorating(send, result, websocket)
        if not websocket or result.sid is None or result.watch is None:
            await self.app(scope, receive, send)
            return
        socket = _SessionSocket(receive, send)
        watching = result.watch.watch(result.sid, socket.end, socket=True)
        try:
            await self.app(scope, socket.receive, socket.send)
        finally:
            watching.close()
            await socket.drain()


def _running(lifecycle: HasLifecycle, receive: Receive) -> Receive:
    """The lifespan's ``receive``, running the backend's own start-up and shut-down as the server announces
    them, before the wrapped app hears of them: every message still reaches the app, which answers each
    (``lifespan.startup.complete`` ...) itself. An app that does not speak lifespan never asks, so the backend
    then keeps its defaults (session mode re-reads rows every ``state_ttl``)."""

    async def receive_and_run() -> Message:
        message = await receive()
        kind = message["type"]
        if kind == "lifespan.startup":
            await lifecycle.startup()
        elif kind == "lifespan.shutdown":
            await lifecycle.shutdown()  # requests still in flight fall back to re-reading rows: still correct
        return message

    return receive_and_run


def _decorating(send: Send, admission: Admission, websocket: bool) -> Send:
    """``send`` with the response decorated for an authenticated request (see ``no_store``)."""
    cookie = admission.set_cookie.encode("latin-1") if admission.set_cookie is not None else None

    async def send_decorated(message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start" or kind == "websocket.http.response.start":
            message = {**message, "headers": decorate_raw(list(message.get("headers", ())), cookie, authenticated=True)}
        elif websocket and kind == "websocket.accept":
            message = decorate_accept(message, cookie)
        await send(message)

    return send_decorated


class SessionEnded(OSError):
    """Raised by ``send`` on a WebSocket whose session ended; Starlette turns it into ``WebSocketDisconnect``,
    as it does with the server's own error for a socket that is gone."""


class _SessionSocket:
    """The wrapped app's view of a WebSocket that must end with its session: when the watch calls
    :meth:`end`, the browser gets a 1008 close, a pending or later ``receive`` answers
    ``websocket.disconnect`` and a later ``send`` raises :class:`SessionEnded`, so an app that only reads and
    one that only writes both stop."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._ended = asyncio.Event()
        self._closed = False  # a close (ours or the app's) went out: nothing more may be sent
        self._closing: asyncio.Task[None] | None = None

    def end(self) -> None:
        if not self._ended.is_set():
            self._ended.set()
            self._closing = asyncio.ensure_future(self._close())

    async def _close(self) -> None:
        if not self._closed:
            self._closed = True
            # Before accept this refuses the handshake (403); after it, a policy-violation close.
            with contextlib.suppress(Exception):
                await self._send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": "session ended"})

    async def drain(self) -> None:
        if self._closing is not None:
            await self._closing

    async def receive(self) -> Message:
        if not self._ended.is_set():
            reading = asyncio.ensure_future(self._receive())
            ending = asyncio.ensure_future(self._ended.wait())
            try:
                await asyncio.wait({reading, ending}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ending.cancel()
                if not reading.done():
                    reading.cancel()
            if not reading.cancelled():
                return reading.result()
        return {"type": "websocket.disconnect", "code": WS_POLICY_VIOLATION, "reason": "session ended"}

    async def send(self, message: Message) -> None:
        if self._ended.is_set():
            if message["type"] == "websocket.close":
                return  # the app tidying up: the socket is closed already
            raise SessionEnded("the session of this WebSocket ended")
        if message["type"] == "websocket.close":
            self._closed = True
        await self._send(message)


def _without_cookie(headers: list[tuple[bytes, bytes]], name: str) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for key, value in headers:
        if key == b"cookie":
            rest = strip_cookie(value.decode("latin-1"), name)
            if rest:
                out.append((key, rest.encode("latin-1")))
        else:
            out.append((key, value))
    return out
