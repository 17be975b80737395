"""``FrontdeskWSGIMiddleware``: bearer mode or session mode in front of any WSGI app (Flask, Django, ...).

The decisions are the admission pipeline's (``middleware.admission``), shared with the ASGI adapter and the
gateway's proxy: any backend (``BearerAuth``, ``SessionAuth`` or your own), ``on_error`` for refusals, and
the same response decoration. The async backends run on one background event loop owned by the middleware
(never a loop per request), so the store connection, the caches and the single-flight locks live on one loop
however many threads the WSGI server uses.

Results land in ``environ``: ``frontdesk.user`` (a :class:`FrontdeskUser`), ``frontdesk.claims`` and
``REMOTE_USER`` (for Django's ``RemoteUserMiddleware`` and friends).
"""

from __future__ import annotations

import dataclasses
import http
import logging
from collections.abc import Callable, Iterable
from typing import Any

from .admission import AuthBackend, ErrorRenderer, HasLifecycle, Refusal, admit, endpoints_of, render_refusal
from .background import BackgroundLoop
from .cookies import strip_cookie
from .errors import BadRequest, FrontdeskError, StoreError
from .http import HttpRequest, HttpResponse, error_response
from .no_store import decorate_text
from .principal import ACCESS_TOKEN_KEY, ENV_CLAIMS, ENV_USER, FrontdeskUser

__all__ = ["FrontdeskWSGIMiddleware", "ENV_USER", "ENV_CLAIMS", "ACCESS_TOKEN_KEY"]

log = logging.getLogger("frontdesk.wsgi")
Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class FrontdeskWSGIMiddleware:
    """``auth`` is any :class:`~frontdesk.middleware.admission.AuthBackend` (``BearerAuth``, ``SessionAuth`` or
    your own);
    ``on_error`` writes the answer to a refusal (default: the JSON error body every frontdesk layer writes)."""

    def __init__(
        self,
        app: WSGIApp,
        auth: AuthBackend,
        *,
        on_error: ErrorRenderer = render_refusal,
        loop: BackgroundLoop | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.auth = auth
        self.on_error = on_error
        self._endpoints = endpoints_of(auth)  # decided once: whether it answers some paths itself (/auth/*)
        self.loop = loop or BackgroundLoop()
        self.timeout = timeout
        self._started = False

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self._admit(environ, start_response)
        except TimeoutError:
            log.error("frontdesk check took longer than %.0fs", self.timeout)
            return _respond(start_response, error_response(StoreError("authentication check timed out")))

    def start(self) -> None:
        """Run the backend's start-up on the middleware's loop: session mode then follows invalidations (a
        cached session row is trusted until a logout is announced, instead of re-read every 0.5 s).

        WSGI has no lifespan event, so nothing calls this by itself: call it once in each worker process,
        after the fork (gunicorn: in a ``post_fork`` hook, or without ``--preload``; a thread started before
        a fork does not survive it). Without it every request still works, with rows polled."""
        if isinstance(self.auth, HasLifecycle) and not self._started:
            self.loop.run(self.auth.startup(), self.timeout)
            self._started = True

    def close(self) -> None:
        if isinstance(self.auth, HasLifecycle) and self._started:
            self._started = False
            self.loop.run(self.auth.shutdown(), self.timeout)
        self.loop.close()

    def _admit(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = _request(environ)
        endpoints = self._endpoints
        if endpoints is not None and endpoints.answers(request.path):
            try:
                request = dataclasses.replace(request, body=_read_body(environ, endpoints.body_limit))
                return _respond(start_response, self.loop.run(endpoints.respond(request), self.timeout))
            except FrontdeskError as exc:
                return _respond(start_response, error_response(exc))
        try:
            result = self.loop.run(admit(self.auth, request), self.timeout)
        except FrontdeskError as exc:  # the loop's own timeout
            result = Refusal(exc)
        if isinstance(result, Refusal):
            return _respond(start_response, self.on_error(result, request))
        _set_user(environ, result.user)
        if result.access_token is not None:
            environ[ACCESS_TOKEN_KEY] = result.access_token
        hidden = result.hidden_cookie
        if hidden is not None and "HTTP_COOKIE" in environ:
            # The wrapped app never sees the refresh cookie, public paths included (it would end up in logs).
            rest = strip_cookie(environ["HTTP_COOKIE"], hidden)
            if rest:
                environ["HTTP_COOKIE"] = rest
            else:
                del environ["HTTP_COOKIE"]
        if result.user is None or hidden is None:
            return self.app(environ, start_response)
        cookie = result.set_cookie  # a cookie session's answer: decorated (see no_store)

        def start_decorated(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, decorate_text(list(headers), cookie, authenticated=True), exc_info)

        return self.app(environ, start_decorated)


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
        query=environ.get("QUERY_STRING", "").encode("latin-1"),
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
