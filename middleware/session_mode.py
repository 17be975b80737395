"""Session mode, transport-neutral: the gateway's ``/auth/*`` and silent refresh, in front of your own app.

``/auth/*`` is answered by :class:`AuthAPI` and every other request runs :meth:`SessionEngine.grant`, the same
objects and the same call the gateway uses before it proxies; the adapters only move bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .auth_api import AUTH_BODY_LIMIT, AuthAPI
from .clock import Clock, system_clock
from .cookies import CookiePolicy, strip_cookie
from .csrf import check_csrf, check_same_origin
from .errors import CsrfRejected, FrontdeskError, InsufficientScope, NotAuthenticated
from .forwarded import TrustedProxies
from .http import HttpRequest, HttpResponse, error_response
from .opening import OpenOnce
from .paths import PathRules
from .principal import FrontdeskUser
from .session_watch import SessionWatch
from .sessions import Authenticator, SessionEngine, SessionSettings
from .store import Store, store_from_url
from .tokens import KeyRing

__all__ = ["SessionAuth", "Admission", "AUTH_BODY_LIMIT"]

log = logging.getLogger("frontdesk.session_mode")


@dataclass(frozen=True, slots=True)
class Admission:
    user: FrontdeskUser | None  # None on a public path
    set_cookie: str | None  # the rotated refresh cookie, to add to the wrapped app's response
    access_token: str | None = None  # for an app that calls other APIs on the user's behalf
    sid: str | None = None  # the session, for what must end with it (WebSockets)


class SessionAuth:
    def __init__(
        self,
        engine: SessionEngine,
        *,
        prefix: str = "/auth",
        csrf_header: str = "x-csrf",
        origins: Iterable[str] = (),
        trusted_proxies: TrustedProxies | None = None,
        public_paths: Iterable[str] = (),
        scopes: Mapping[str, str | Iterable[str]] | None = None,
        audience: str | None = None,
        csrf: bool = True,
        purge_interval: float = 3600.0,
    ) -> None:
        self.engine = engine
        self.csrf = csrf  # like a gateway route: every authenticated request carries the CSRF header
        self.api = AuthAPI(engine, prefix=prefix, csrf_header=csrf_header, trusted=trusted_proxies, origins=origins)
        self.rules = PathRules.build(public_paths, scopes)
        self.audience = audience
        self._opener = OpenOnce(engine.store)
        self.watch = SessionWatch(engine)  # ends WebSockets when their session does (logout, revocation)
        # No gateway process runs the periodic purge here, so requests trigger it, at most once per interval.
        self.purge_interval = purge_interval
        self._last_purge = engine.clock()
        self._purging: asyncio.Task[None] | None = None

    @classmethod
    def from_secrets(
        cls,
        *,
        access_secret: str,
        refresh_secret: str,
        authenticator: Authenticator,
        store: Store | str = "memory://",
        access_keyring: KeyRing | None = None,
        issuer: str = "frontdesk",
        audience: str = "frontdesk-api",
        cookie: CookiePolicy | None = None,
        settings: SessionSettings | None = None,
        clock: Clock = system_clock,
        **options: Any,
    ) -> SessionAuth:
        """A whole engine from two secrets (or an asymmetric ``access_keyring``) and an authenticator."""
        if access_secret == refresh_secret:
            raise ValueError("the access and refresh secrets must differ")
        engine = SessionEngine.from_keys(
            access_keyring=access_keyring or KeyRing.from_secrets(access_secret),
            refresh_keyring=KeyRing.from_secrets(refresh_secret),
            store=store_from_url(store) if isinstance(store, str) else store,
            authenticator=authenticator,
            issuer=issuer,
            audience=audience,
            cookie=cookie,
            settings=settings,
            clock=clock,
        )
        return cls(engine, **options)

    def handles(self, path: str) -> bool:
        return self.api.handles(path)

    async def handle_auth(self, request: HttpRequest) -> HttpResponse:
        try:
            await self._opener.ensure()
        except FrontdeskError as exc:
            return error_response(exc)
        return await self.api.handle(request)

    async def admit(self, request: HttpRequest, *, websocket: bool = False) -> Admission:
        """Silent refresh for one request; raises a :class:`FrontdeskError` (401 without a usable session)."""
        if self.rules.public and self.rules.is_public(request.path):
            return Admission(None, None)
        if websocket:
            # Cookies ride along on a cross-site WebSocket handshake; the Origin is the only guard there, and
            # browsers always send one, so a handshake without it is not from a page we served (the gateway's
            # rule too).
            if "origin" not in request.headers:
                raise CsrfRejected("a WebSocket upgrade must carry an Origin header")
            check_same_origin(request.headers, own_origins=self.api.allowed_origins(request))
        elif self.csrf:
            # The same rule as the gateway's proxy routes: the custom header (a cross-site page cannot send it
            # without a preflight we never grant), and a foreign Origin or cross-site fetch metadata refused.
            headers = request.headers
            origins = self.api.allowed_origins(request) if "origin" in headers else frozenset()
            check_csrf(headers, header_name=self.api.csrf_header, own_origins=origins)
        await self._opener.ensure()
        self._maybe_purge()
        grant = await self.engine.grant(request.headers.get("cookie"), audience=self.audience)
        user = FrontdeskUser(grant.claims)
        if self.rules.scopes:
            missing = self.rules.required_scopes(request.path) - user.scopes
            if missing:
                raise InsufficientScope(f"this path requires scope {' '.join(sorted(missing))}")
        return Admission(user, grant.set_cookie, grant.access_token, grant.sid)

    def _maybe_purge(self) -> None:
        now = self.engine.clock()
        if now - self._last_purge < self.purge_interval or (self._purging is not None and not self._purging.done()):
            return
        self._last_purge = now
        self._purging = asyncio.create_task(self._purge(), name="frontdesk-purge")

    async def _purge(self) -> None:
        try:
            removed = await self.engine.purge()
            log.info("purged %d expired session rows", removed)
        except FrontdeskError:
            log.exception("purge failed; will retry after the next interval")

    def error_response(self, exc: FrontdeskError, cookie_header: str | None) -> HttpResponse:
        headers: list[tuple[str, str]] = []
        if isinstance(exc, NotAuthenticated) and cookie_header and self.engine.cookie_name in cookie_header:
            # The cookie can never work again: tell the browser to drop it, as /auth/* does.
            headers = [("set-cookie", self.engine.cookie.clear_cookie()), ("cache-control", "no-store")]
        return error_response(exc, headers)

    def downstream_cookie(self, cookie_header: str) -> str:
        """The Cookie header the wrapped app sees: everything but the refresh token, which is not its business."""
        return strip_cookie(cookie_header, self.engine.cookie_name)
