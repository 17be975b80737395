"""The one admission pipeline: what happens to a request before (and around) the app that answers it.

For any request, HTTP or WebSocket, an :class:`AuthBackend` decides: public or not, who the user is (a
session's silent refresh, or a verified Bearer token), the CSRF and origin rules, and what the app's response
must carry (a rotated refresh cookie). The adapters (``FrontdeskMiddleware`` on ASGI,
``FrontdeskWSGIMiddleware`` on WSGI) and the gateway's proxy only move bytes around these decisions:

* :func:`admit` turns a backend's answer (or the :class:`FrontdeskError` it raised) into an
  :class:`Admission` or a :class:`Refusal`;
* a refusal is written by one :data:`ErrorRenderer` (:func:`render_refusal` unless the app passes its own
  ``on_error``), always through ``http.error_response``, the one JSON error writer;
* the response is decorated by ``no_store`` (rotated cookie + ``no-store`` + ``Vary: Cookie``);
* the CSRF and origin rule is ``csrf.check_request`` and a session's silent refresh is :func:`session_grant`,
  which the gateway's proxy calls with decisions it precomputed per route.

A backend of your own is any object with ``async def admit(self, request) -> Admission | Refusal`` (as
Starlette's ``AuthenticationBackend``); one that also answers paths itself (session mode's ``/auth/*``)
implements :class:`EndpointBackend`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from .errors import FrontdeskError, NotAuthenticated
from .http import HttpRequest, HttpResponse, error_response
from .principal import FrontdeskUser
from .session_watch import SessionWatch

__all__ = [
    "Admission",
    "Refusal",
    "AuthBackend",
    "EndpointBackend",
    "Endpoints",
    "HasLifecycle",
    "ErrorRenderer",
    "endpoints_of",
    "render_refusal",
    "admit",
    "AuthMode",
    "GrantLike",
    "TokenSource",
    "session_grant",
]

AuthMode = Literal["none", "optional", "required"]


@dataclass(slots=True)  # read-only by convention: a frozen dataclass costs ~1 us more to build, per request
class Admission:
    """A request let through. ``user`` None: public (or optional auth without a session)."""

    user: FrontdeskUser | None
    set_cookie: str | None = None  # a rotated refresh cookie, to add to the app's response
    access_token: str | None = None  # for an app that calls other APIs on the user's behalf
    sid: str | None = None  # the session, for what must end with it (WebSockets)
    hidden_cookie: str | None = None  # a cookie the app must never see (the refresh token: it would be logged)
    watch: SessionWatch | None = None  # ends a WebSocket of session ``sid`` when the session ends


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused with ``error``; ``headers`` ride along (a challenge, clearing a dead cookie)."""

    error: FrontdeskError
    headers: tuple[tuple[str, str], ...] = ()


class AuthBackend(Protocol):
    async def admit(self, request: HttpRequest) -> Admission | Refusal:
        """Decide one request (``request.websocket`` for an upgrade); may also raise a FrontdeskError."""
        ...


@runtime_checkable
class Endpoints(Protocol):
    """Paths answered by frontdesk itself (``/auth/*``), with the request body read up to ``body_limit``.

    The pipeline's endpoint path (``asgi_io.answer_endpoint`` on ASGI) serves the gateway's own ``/auth/*``
    (its ``AuthAPI``) and session mode's (:class:`EndpointBackend`) alike."""

    body_limit: int

    def answers(self, path: str) -> bool: ...

    async def respond(self, request: HttpRequest) -> HttpResponse: ...


@runtime_checkable
class EndpointBackend(Endpoints, Protocol):
    """A backend that answers some paths itself (session mode's ``/auth/*``) and admits every other request."""

    async def admit(self, request: HttpRequest) -> Admission | Refusal: ...


@runtime_checkable
class HasLifecycle(Protocol):
    """A backend with work that lasts as long as the server process: session mode's invalidation watch.

    The ASGI adapter runs these on the server's ``lifespan.startup`` and ``lifespan.shutdown``; a WSGI server
    has no such events, so a WSGI app calls ``FrontdeskWSGIMiddleware.start()`` itself (see its docstring)."""

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...


ErrorRenderer = Callable[[Refusal, HttpRequest], HttpResponse]


def endpoints_of(auth: AuthBackend) -> EndpointBackend | None:
    """Check, once when an adapter is built, that ``auth`` is a backend; the backend again when it also
    answers paths itself (session mode's ``/auth/*``), else None."""
    if not callable(getattr(auth, "admit", None)):
        raise TypeError(
            "auth must be an AuthBackend (an object with async admit(request)): BearerAuth for bearer mode, "
            "SessionAuth for session mode, or your own"
        )
    return auth if isinstance(auth, EndpointBackend) else None


def render_refusal(refusal: Refusal, request: HttpRequest) -> HttpResponse:
    """The default answer to a refusal: ``{"error": code, "detail": text}`` with the error's status."""
    return error_response(refusal.error, refusal.headers)


async def admit(backend: AuthBackend, request: HttpRequest) -> Admission | Refusal:
    """The backend's decision, a raised :class:`FrontdeskError` read as a refusal."""
    try:
        return await backend.admit(request)
    except FrontdeskError as exc:
        return Refusal(exc)


class GrantLike(Protocol):
    @property
    def sid(self) -> str: ...
    @property
    def access_token(self) -> str: ...
    @property
    def set_cookie(self) -> str | None: ...


class TokenSource(Protocol):
    """What admission needs of a session engine (``SessionEngine``, or a stand-in in tests)."""

    @property
    def cookie_name(self) -> str: ...

    async def grant(
        self, cookie_header: str | None, *, audience: str | None = None, force_new: bool = False
    ) -> GrantLike: ...

    def remembered(self, cookie_header: str | None, *, audience: str | None = None) -> GrantLike | None:
        """The grant :meth:`grant` would hand out at once (its memo), or None: then ask :meth:`grant`."""
        ...

    async def is_active(self, sid: str) -> bool: ...


async def session_grant(
    engine: TokenSource, cookie_header: str | None, *, auth: AuthMode, audience: str | None
) -> GrantLike | None:
    """Silent refresh for one request: the session's access token (rotating the refresh cookie when due).

    ``auth`` ``"none"`` asks nothing; ``"optional"`` lets a request without a usable session through as
    anonymous; ``"required"`` refuses it with :class:`NotAuthenticated`.
    """
    if auth == "none":
        return None
    try:
        return await engine.grant(cookie_header, audience=audience)
    except NotAuthenticated:
        if auth == "required":
            raise
        return None
