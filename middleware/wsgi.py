"""``FrontdeskWSGIMiddleware``: bearer mode or session mode in front of any WSGI app (Flask, Django, ...).

The decisions are the async :class:`BearerAuth` / :class:`SessionAuth` shared with the ASGI adapter; they run
on one background event loop owned by the middleware (never a loop per request), so the store connection,
the caches and the single-flight locks live on one loop however many threads the WSGI server uses.

Results land in ``environ``: ``frontdesk.user`` (a :class:`FrontdeskUser`), ``frontdesk.claims`` and
``REMOTE_USER`` (for Django's ``RemoteUserMiddleware`` and friends).
"""

from __future__ import annotations

import dataclasses
import http
import logging
from collections.abc import Callable, Iterable
from typing import Any

from .background import BackgroundLoop
from .bearer import BearerAuth
from .errors import BadRequest, FrontdeskError, StoreError
from .http import HttpRequest, HttpResponse, error_response
from .no_store import with_refresh_cookie
from .principal import ACCESS_TOKEN_KEY, ENV_CLAIMS, ENV_USER, FrontdeskUser
from .session_mode import AUTH_BODY_LIMIT, SessionAuth

__all__ = ["FrontdeskWSGIMiddleware", "ENV_USER", "ENV_CLAIMS", "ACCESS_TOKEN_KEY"]

log = logging.getLogger("frontdesk.wsgi")
Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class FrontdeskWSGIMiddleware:
    def __init__(
        self,
        app: WSGIApp,
        auth: BearerAuth | SessionAuth,
        *,
        loop: BackgroundLoop | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not isinstance(auth, BearerAuth | SessionAuth):
            raise TypeError("auth must be a BearerAuth (bearer mode) or a SessionAuth (session mode)")
        self.app = app
        self.auth = auth
        self.loop = loop or BackgroundLoop()
        self.timeout = timeout

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        auth = self.auth
        try:
            if isinstance(auth, BearerAuth):
                return self._bearer(auth, environ, start_response)
            return self._session(auth, environ, start_response)
        except TimeoutError:
            log.error("frontdesk check took longer than %.0fs", self.timeout)
            return _respond(start_response, error_response(StoreError("authentication check timed out")))

    def close(self) -> None:
        self.loop.close()

    def _bearer(self, auth: BearerAuth, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # Servers join repeated Authorization headers with a comma, which the parser refuses as malformed.
        coro = auth.authenticate(environ.get("PATH_INFO") or "/", environ.get("HTTP_AUTHORIZATION"))
        try:
            user = self.loop.run(coro, self.timeout)
        except FrontdeskError as exc:
            return _respond(start_response, auth.error_response(exc))
        _set_user(environ, user)
        return self.app(environ, start_response)

    def _session(self, auth: SessionAuth, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = _request(environ)
        if auth.handles(request.path):
            try:
                request = dataclasses.replace(request, body=_read_body(environ, AUTH_BODY_LIMIT))
            except FrontdeskError as exc:
                return _respond(start_response, error_response(exc))
            try:
                return _respond(start_response, self.loop.run(auth.handle_auth(request), self.timeout))
            except FrontdeskError as exc:
                return _respond(start_response, error_response(exc))
        try:
            admission = self.loop.run(auth.admit(request), self.timeout)
        except FrontdeskError as exc:
            return _respond(start_response, auth.error_response(exc, request.headers.get("cookie")))
        _set_user(environ, admission.user)
        if admission.user is not None:
            environ[ACCESS_TOKEN_KEY] = admission.access_token
        # The wrapped app never sees the refresh cookie, public paths included (it would end up in logs).
        if "HTTP_COOKIE" in environ:
            rest = auth.downstream_cookie(environ["HTTP_COOKIE"])
            if rest:
                environ["HTTP_COOKIE"] = rest
            else:
                del environ["HTTP_COOKIE"]
        cookie = admission.set_cookie
        if cookie is None:
            return self.app(environ, start_response)

        def start_with_cookie(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, with_refresh_cookie(headers, cookie), exc_info)

        return self.app(environ, start_with_cookie)


def _set_user(environ: Environ, user: FrontdeskUser | None) -> None:
    if user is None:
        return
    environ[ENV_USER] = user
    environ[ENV_CLAIMS] = user.claims
    environ["REMOTE_USER"] = user.username


def _respond(start_response: StartResponse, response: HttpResponse) -> list[bytes]:
    phrase = http.HTTPStatus(response.status).phrase
    headers = [(name.title(), value) for name, value in response.headers]
    if response.status != 204 and not any(name == "content-length" for name, _ in response.headers):
        headers.append(("Content-Length", str(len(response.body))))
    start_response(f"{response.status} {phrase}", headers)
    return [response.body]


def _request(environ: Environ) -> HttpRequest:
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return HttpRequest(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=environ.get("PATH_INFO") or "/",
        headers=headers,
        client=environ.get("REMOTE_ADDR"),
        scheme=environ.get("wsgi.url_scheme", "http"),
    )


def _read_body(environ: Environ, limit: int) -> bytes:
    raw = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if not raw:
        # Without a length only a server that marks its input as terminated can be read to the end safely.
        data: bytes = stream.read(limit + 1) if environ.get("wsgi.input_terminated") else b""
        if len(data) > limit:
            raise BadRequest("request body too large", status=413, code="payload_too_large")
        return data
    try:
        length = int(raw)
    except ValueError as exc:
        raise BadRequest("bad Content-Length") from exc
    if length < 0:
        raise BadRequest("bad Content-Length")
    if length > limit:
        raise BadRequest("request body too large", status=413, code="payload_too_large")
    body: bytes = stream.read(length)
    return body
