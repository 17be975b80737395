"""``FrontdeskMiddleware``: bearer mode or session mode in front of any ASGI app (Starlette, FastAPI, ...).

Pure ASGI (the ``starlette.middleware.sessions`` shape): nothing per request is kept on ``self``, the wrapped
app's response is only touched on ``http.response.start`` (to add a rotated refresh cookie), and every
decision is delegated to the transport-neutral :class:`BearerAuth` / :class:`SessionAuth`, which the WSGI
adapter shares.

    app = FrontdeskMiddleware(app, auth=BearerAuth(jwks_url="https://gw.example/.well-known/jwks.json"))
    Starlette(routes=..., middleware=[Middleware(FrontdeskMiddleware, auth=SessionAuth(engine))])
"""

from __future__ import annotations

import asyncio
import contextlib

from .asgi_io import ASGIApp, Message, Receive, Scope, Send, read_body, request_from_scope, send_response
from .bearer import BearerAuth, Pending
from .errors import FrontdeskError, InvalidToken
from .http import HttpRequest, HttpResponse, error_response, headers_from_pairs
from .no_store import with_refresh_cookie
from .principal import ACCESS_TOKEN_KEY, SCOPE_CLAIMS, FrontdeskUser, anonymous
from .session_mode import AUTH_BODY_LIMIT, SessionAuth

__all__ = ["FrontdeskMiddleware", "SCOPE_CLAIMS", "ACCESS_TOKEN_KEY"]

WS_POLICY_VIOLATION = 1008


class FrontdeskMiddleware:
    def __init__(self, app: ASGIApp, auth: BearerAuth | SessionAuth) -> None:
        if not isinstance(auth, BearerAuth | SessionAuth):
            raise TypeError("auth must be a BearerAuth (bearer mode) or a SessionAuth (session mode)")
        self.app = app
        self.auth = auth
        self._bearer_auth = auth if isinstance(auth, BearerAuth) else None
        self._session_auth = auth if isinstance(auth, SessionAuth) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)  # lifespan and anything newer pass through
            return
        session = self._session_auth
        if session is not None:
            await self._session(session, scope, receive, send)
            return
        auth = self._bearer_auth
        assert auth is not None  # __init__ accepted one of the two
        # Bearer mode is inlined here and scans the raw header pairs instead of building a dict: it runs on
        # every request of the upstream, and each extra frame or object shows in its throughput.
        authorization: bytes | None = None  # raw: the verified-result memo is keyed by the header's bytes
        repeated = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                repeated = authorization is not None
                authorization = value
        try:
            if repeated:
                raise InvalidToken("more than one authorization header")
            user = auth.authenticate_now(scope["path"], authorization)
            if isinstance(user, Pending):
                user = await auth.authenticate(scope["path"], authorization)
        except FrontdeskError as exc:
            await _refuse(scope, send, auth.error_response(exc))
            return
        if user is None:
            _set_user(scope, None)
        else:
            scope["user"] = user
            scope["auth"] = user.credentials()
            scope[SCOPE_CLAIMS] = user.claims
        await self.app(scope, receive, send)

    async def _session(self, auth: SessionAuth, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = scope["type"] == "websocket"
        if not websocket and auth.handles(scope["path"]):
            try:
                body = await read_body(receive, AUTH_BODY_LIMIT)
            except FrontdeskError as exc:
                await send_response(send, error_response(exc))
                return
            await send_response(send, await auth.handle_auth(request_from_scope(scope, body)))
            return
        request = _request(scope)
        try:
            admission = await auth.admit(request, websocket=websocket)
        except FrontdeskError as exc:
            await _refuse(scope, send, auth.error_response(exc, request.headers.get("cookie")))
            return
        _set_user(scope, admission.user)
        if admission.user is not None:
            scope[ACCESS_TOKEN_KEY] = admission.access_token
        # The wrapped app never sees the refresh cookie, public paths included (it would end up in logs).
        scope["headers"] = _without_refresh_cookie(auth, scope["headers"])
        set_cookie = admission.set_cookie
        if set_cookie is not None:
            send = _adding_cookie(send, set_cookie.encode("latin-1"), websocket)
        if not websocket or admission.sid is None:
            await self.app(scope, receive, send)
            return
        socket = _SessionSocket(receive, send)
        watching = auth.watch.watch(admission.sid, socket.end, socket=True)
        try:
            await self.app(scope, socket.receive, socket.send)
        finally:
            watching.close()
            await socket.drain()


def _adding_cookie(send: Send, cookie: bytes, websocket: bool) -> Send:
    async def send_with_cookie(message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            message = {**message, "headers": with_refresh_cookie(message.get("headers", ()), cookie)}
        elif websocket and kind == "websocket.accept":
            message = {**message, "headers": [*message.get("headers", ()), (b"set-cookie", cookie)]}
        await send(message)

    return send_with_cookie


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


def _set_user(scope: Scope, user: FrontdeskUser | None) -> None:
    if user is None:
        if "user" not in scope:  # a public path: keep request.user working, as anonymous
            scope["user"], scope["auth"] = anonymous()
        return
    scope["user"] = user
    scope["auth"] = user.credentials()
    scope[SCOPE_CLAIMS] = user.claims


async def _refuse(scope: Scope, send: Send, response: HttpResponse) -> None:
    if scope["type"] == "websocket":
        # Closing before accept makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": ""})
        return
    await send_response(send, response)


def _request(scope: Scope) -> HttpRequest:
    client = scope.get("client")
    scheme = str(scope.get("scheme", "http"))
    return HttpRequest(
        method=scope.get("method", "GET"),  # a WebSocket handshake is a GET
        path=scope["path"],
        headers=headers_from_pairs(scope["headers"]),
        client=client[0] if client else None,
        scheme={"ws": "http", "wss": "https"}.get(scheme, scheme),  # the Origin of a handshake says http(s)
    )


def _without_refresh_cookie(auth: SessionAuth, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name == b"cookie":
            rest = auth.downstream_cookie(value.decode("latin-1"))
            if rest:
                out.append((name, rest.encode("latin-1")))
        else:
            out.append((name, value))
    return out
