"""``FrontdeskMiddleware``: bearer mode or session mode in front of any ASGI app (Starlette, FastAPI, ...).

Pure ASGI (the ``starlette.middleware.sessions`` shape): nothing per request is kept on ``self``, the wrapped
app's response is only touched on ``http.response.start`` (to add a rotated refresh cookie), and every
decision is delegated to the transport-neutral :class:`BearerAuth` / :class:`SessionAuth`, which the WSGI
adapter shares.

    app = FrontdeskMiddleware(app, auth=BearerAuth(jwks_url="https://gw.example/.well-known/jwks.json"))
    Starlette(routes=..., middleware=[Middleware(FrontdeskMiddleware, auth=SessionAuth(engine))])
"""

from __future__ import annotations

from .asgi_io import ASGIApp, Message, Receive, Scope, Send, read_body, request_from_scope, send_response
from .bearer import BearerAuth, Pending
from .errors import FrontdeskError, InvalidToken
from .http import HttpRequest, HttpResponse, error_response, headers_from_pairs
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
        if set_cookie is None:
            await self.app(scope, receive, send)
            return
        cookie_header = (b"set-cookie", set_cookie.encode("latin-1"))
        start_type = "websocket.accept" if websocket else "http.response.start"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == start_type:
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), cookie_header]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


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
