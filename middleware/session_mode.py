"""Session mode, transport-neutral: the gateway's ``/auth/*`` and silent refresh, in front of your own app.

``/auth/*`` is answered by :class:`AuthAPI` and every other request runs :meth:`SessionEngine.grant`, the same
objects and the same call the gateway uses before it proxies; the adapters only move bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from .admission import Admission, Refusal
from .auth_api import AUTH_BODY_LIMIT, AuthAPI
from .clock import Clock, system_clock
from .cookies import CookiePolicy
from .csrf import check_request
from .errors import FrontdeskError, InsufficientScope, NotAuthenticated
from .events import NO_EVENTS, Events
from .forwarded import TrustedProxies
from .http import HttpRequest, HttpResponse, error_response
from .opening import OpenOnce
from .paths import PathRules
from .principal import FrontdeskUser
from .purge import Purger
from .session_watch import SessionWatch
from .sessions import Authenticator, SessionEngine, SessionSettings
from .store import Store, store_from_url
from .tokens import KeyRing

__all__ = ["SessionAuth", "Admission", "AUTH_BODY_LIMIT", "STORE_REQUIRED"]

log = logging.getLogger("frontdesk.session_mode")

STORE_REQUIRED = (
    "session mode needs an explicit store=: a store URL such as 'sqlite:///var/lib/app/frontdesk.db' or "
    "'redis://localhost:6379/0' (shared by every worker process), or a Store object. An in-memory store "
    "lives in one process, so two workers would log users out at random; for tests or a single process pass "
    "store='memory://' explicitly"
)


class SessionAuth:
    """Session mode as an :class:`~frontdesk.middleware.admission.EndpointBackend`: answers ``/auth/*`` itself and
    admits every other request by the gateway's rules (CSRF and origin, silent refresh, path scopes)."""

    body_limit = AUTH_BODY_LIMIT

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
        # No gateway process runs the periodic purge here, so requests nudge the one scheduler.
        self.purger = Purger(engine, purge_interval, engine.clock)
        self._csrf_header = self.api.csrf_header if csrf else None
        self._public = Admission(None, hidden_cookie=engine.cookie_name)

    @classmethod
    def from_secrets(
        cls,
        *,
        access_secret: str,
        refresh_secret: str,
        authenticator: Authenticator,
        store: Store | str | None = None,
        access_keyring: KeyRing | None = None,
        issuer: str = "frontdesk",
        audience: str = "frontdesk-api",
        leeway: float = 5.0,
        cookie: CookiePolicy | None = None,
        settings: SessionSettings | None = None,
        clock: Clock = system_clock,
        events: Events = NO_EVENTS,
        prefix: str = "/auth",
        csrf_header: str = "x-csrf",
        origins: Iterable[str] = (),
        trusted_proxies: TrustedProxies | None = None,
        public_paths: Iterable[str] = (),
        scopes: Mapping[str, str | Iterable[str]] | None = None,
        csrf: bool = True,
        purge_interval: float = 3600.0,
    ) -> SessionAuth:
        """A whole engine from two secrets (or an asymmetric ``access_keyring``), an authenticator and a
        store (a URL such as ``"sqlite:///path/frontdesk.db"``, ``"memory://"`` for tests, or a Store).

        The options after ``clock`` are the engine's ``events`` and :class:`SessionAuth`'s own, spelt out
        (not ``**options``) so a type checker catches a misspelt one. Requests are admitted for ``audience``.
        """
        if store is None:
            raise TypeError(STORE_REQUIRED)
        if access_secret == refresh_secret:
            raise ValueError("the access and refresh secrets must differ")
        engine = SessionEngine.from_keys(
            access_keyring=access_keyring or KeyRing.from_secrets(access_secret),
            refresh_keyring=KeyRing.from_secrets(refresh_secret),
            store=store_from_url(store) if isinstance(store, str) else store,
            authenticator=authenticator,
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            cookie=cookie,
            settings=settings,
            clock=clock,
            events=events,
        )
        return cls(
            engine,
            prefix=prefix,
            csrf_header=csrf_header,
            origins=origins,
            trusted_proxies=trusted_proxies,
            public_paths=public_paths,
            scopes=scopes,
            csrf=csrf,
            purge_interval=purge_interval,
        )

    async def startup(self) -> None:
        """Open the store and start following invalidations (the ASGI adapter's lifespan hook calls this): the
        engine then trusts its cached session rows until a revocation is announced or the revocation epoch
        moves, instead of re-reading every active session every ``state_ttl``. A store that does not answer
        now is not fatal: it opens at the first request, as without this hook, and rows are polled."""
        try:
            await self._opener.ensure()
        except FrontdeskError as exc:
            log.warning("session mode could not open its store at start-up (%s); session rows are re-read", exc)
            return
        await self.engine.follow_invalidations()

    async def shutdown(self) -> None:
        await self.engine.stop_following()

    def answers(self, path: str) -> bool:
        return self.api.handles(path)

    async def respond(self, request: HttpRequest) -> HttpResponse:
        """The ``/auth/*`` answer (the gateway's very endpoints)."""
        try:
            await self._opener.ensure()
        except FrontdeskError as exc:
            return error_response(exc)
        return await self.api.handle(request)

    async def admit(self, request: HttpRequest) -> Admission | Refusal:
        """Silent refresh for one request; a refusal (401 without a usable session) clears a dead cookie."""
        if self.rules.public and self.rules.is_public(request.path):
            return self._public
        headers = request.headers
        try:
            origins = self.api.allowed_origins(request) if "origin" in headers else frozenset()
            check_request(headers, websocket=request.websocket, csrf_header=self._csrf_header, own_origins=origins)
            await self._opener.ensure()
            self.purger.poke()
            grant = await self.engine.grant(headers.get("cookie"), audience=self.audience)
            user = FrontdeskUser(grant.claims)
            if self.rules.scopes:
                missing = self.rules.required_scopes(request.path) - user.scopes
                if missing:
                    raise InsufficientScope(f"this path requires scope {' '.join(sorted(missing))}")
        except FrontdeskError as exc:
            return self._refusal(exc, headers.get("cookie"))
        return Admission(user, grant.set_cookie, grant.access_token, grant.sid, self.engine.cookie_name, self.watch)

    def _refusal(self, exc: FrontdeskError, cookie_header: str | None) -> Refusal:
        if isinstance(exc, NotAuthenticated) and cookie_header and self.engine.cookie_name in cookie_header:
            # The cookie can never work again: tell the browser to drop it, as /auth/* does.
            return Refusal(exc, (("set-cookie", self.engine.cookie.clear_cookie()), ("cache-control", "no-store")))
        return Refusal(exc)
