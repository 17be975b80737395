"""``GET /auth/oidc/{name}/login`` and ``GET /auth/oidc/{name}/callback``: signing in at an OpenID Provider,
ending in an ordinary frontdesk session (the same engine, cookie, rotation and expiries as a password login).

The protocol is the library's (:mod:`frontdesk.middleware.oidc`); this module serves it over HTTP through the
pipeline's endpoint path, like ``/auth/*``. Every answer goes through the gateway's edge layer, so it carries
the security headers. A failed login or callback never starts a session and never shows a traceback; every
answer of the callback clears the login-state cookie. What a failure answers depends on who asked
(:func:`wants_json`), for both endpoints alike (:func:`_login_error`): the browser's top-level navigation (the
user's click on "Sign in with ...", the provider redirecting it back) gets a 302 to the SPA,
``/?login_error=<reason>`` with a reason from :data:`LOGIN_ERROR_REASONS` (never the provider's text, which
anyone can write into the URL), and the SPA's login page says it in plain words; a script that asks for JSON
(``Accept: application/json``, or a ``fetch`` with ``Sec-Fetch-Mode`` other than ``navigate``) gets the 4xx/5xx
JSON body saying what went wrong.

Whoever keeps the provider's tokens (access, refresh, ID token) plugs in at one point: the
:class:`SessionStarted` hook, called with the new session id, the provider, the token response and the
validated ID-token claims before the browser gets its cookie. If the hook fails, the session is revoked.
Give it to :func:`build_oidc_login` or set ``gateway.oidc.on_session_started``; ``provider.tokens`` (the
token-endpoint client) and ``await provider.metadata()`` (``revocation_endpoint``, ``end_session_endpoint``)
serve the refresh, revocation and logout that follow.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import parse_qs

from frontdesk.middleware.auth_api import LoginsInProgress, request_origin
from frontdesk.middleware.clock import Clock, system_clock
from frontdesk.middleware.errors import FrontdeskError, LoginDenied, OidcLoginFailed, ProviderUnavailable, RateLimited
from frontdesk.middleware.events import Event, Kind
from frontdesk.middleware.forwarded import TrustedProxies
from frontdesk.middleware.http import HttpRequest, HttpResponse, error_body, error_response
from frontdesk.middleware.oidc import CompletedLogin, LoginStateCookie, RelyingParty
from frontdesk.middleware.sessions import SessionEngine, User

from .config import GatewayConfig

__all__ = [
    "LOGIN_ERROR_REASONS",
    "OIDC_PREFIX",
    "ProviderAction",
    "OidcLogin",
    "SessionStarted",
    "build_oidc_login",
    "login_state_secret",
    "wants_json",
]

log = logging.getLogger("frontdesk.oidc")
OIDC_PREFIX = "/auth/oidc"
_NO_STORE = ("cache-control", "no-store")
_MAX_QUERY = 8 * 1024
# The reasons a failed login or callback sends the browser back to the SPA with (`/?login_error=...`): the error
# codes of the HTTP contract that they can end with. static/ui/login.js has a sentence for each.
LOGIN_ERROR_REASONS = frozenset(
    {
        "access_denied",  # the user cancelled at the provider, or is outside the allow-lists
        "invalid_state",  # no, an expired, a tampered or a used login cookie; a mix-up
        "invalid_id_token",
        "provider_refused",  # the token endpoint said no (e.g. the code was used or expired)
        "provider_unavailable",  # discovery (at login) or the token endpoint (at the callback) did not answer
        "unknown_provider",  # no [[oidc]] of that name (a stale link or bookmark, a provider removed since)
        "oidc_login_failed",  # anything else the provider's answer got wrong
        "rate_limited",
        "internal_error",
    }
)
_SPA_LOGIN_PAGE = "/"


def wants_json(request: HttpRequest) -> bool:
    """Whether ``request`` is clearly not a browser's top-level navigation, so a JSON error suits it better
    than a redirect: ``Sec-Fetch-Mode`` (sent by every current browser) other than ``navigate``, or, without
    it, an ``Accept`` that asks for JSON and not HTML. Anything else (curl's ``*/*`` too) is a navigation."""
    mode = request.headers.get("sec-fetch-mode")
    if mode is not None:
        return mode.strip().lower() != "navigate"
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


def _login_error(request: HttpRequest, response: HttpResponse, code: str, extra: list[tuple[str, str]]) -> HttpResponse:
    """How the login and the callback endpoints fail: ``response`` (a JSON error) for a script; for a
    navigation, a 302 to the SPA naming ``code`` only (one of :data:`LOGIN_ERROR_REASONS`)."""
    if wants_json(request):
        response.headers.extend(extra)
        return response
    reason = code if code in LOGIN_ERROR_REASONS else "oidc_login_failed"
    headers = [("location", f"{_SPA_LOGIN_PAGE}?login_error={reason}"), *extra, ("content-length", "0")]
    headers += [(name, value) for name, value in response.headers if name == "retry-after"]
    return HttpResponse(302, headers)


def _internal_error(request: HttpRequest, extra: list[tuple[str, str]]) -> HttpResponse:
    """A bug (already logged with its traceback): a 500 that says nothing more, or ``internal_error``."""
    failed = error_body(500, "internal_error", "unexpected error; see the gateway log")
    return _login_error(request, failed, "internal_error", extra)


class SessionStarted(Protocol):
    """Called once a login at a provider has started session ``sid`` (before the browser hears of it)."""

    async def __call__(
        self, *, sid: str, provider: RelyingParty, token_response: Mapping[str, Any], claims: Mapping[str, Any]
    ) -> None: ...


class ProviderAction(Protocol):
    """Answers one more ``{prefix}/{name}/{action}`` endpoint for a provider (see :attr:`OidcLogin.actions`)."""

    async def __call__(self, request: HttpRequest, provider: RelyingParty) -> HttpResponse: ...


def login_state_secret(refresh_secret: str) -> bytes:
    """The login-state cookie's signing key: derived from the refresh secret (so every worker and instance
    shares it with no new setting), domain-separated so it can never verify a refresh token or vice versa."""
    return hmac.new(refresh_secret.encode(), b"frontdesk oidc login state", hashlib.sha256).digest()


class OidcLogin:
    """The ``/auth/oidc/*`` endpoints (an ``admission.Endpoints``).

    CSRF and origin rules, per endpoint:

    - ``GET {prefix}/{name}/login``: a top-level navigation that changes nothing but the browser's own
      login-state cookie; no CSRF header (a link or a form starts it), and nothing an attacker can gain by
      starting a login in someone's browser: that login ends in the victim's own account at the provider.
    - ``GET {prefix}/{name}/callback``: reached by the provider's cross-site redirect, so no CSRF header and
      no Origin; the CSRF protection is the ``state`` parameter, which must equal the one in the signed,
      ``SameSite=Lax``, single-use login-state cookie of this very browser (an attacker cannot make a victim
      complete the attacker's login), plus RFC 9207 ``iss`` against mix-up.
    """

    body_limit = 16 * 1024  # login and callback are GETs; the back-channel logout form holds one signed JWT

    def __init__(
        self,
        engine: SessionEngine,
        parties: Mapping[str, RelyingParty],
        state_cookie: LoginStateCookie,
        *,
        prefix: str = OIDC_PREFIX,
        trusted: TrustedProxies | None = None,
        on_session_started: SessionStarted | None = None,
        max_concurrent_per_address: int | None = None,
        clock: Clock = system_clock,
    ) -> None:
        """``max_concurrent_per_address``: callbacks one client address may have in progress at once (each
        calls the provider's token endpoint; more get 429 + ``Retry-After``), as password logins are capped."""
        self.engine = engine
        # More {prefix}/{name}/{action} endpoints, action -> (method, answer): the back-channel and end-session
        # ones of gateway/idp_sessions.py. Their own CSRF and origin rules are documented there.
        self.actions: dict[str, tuple[str, ProviderAction]] = {}
        self.parties = dict(parties)
        self.state_cookie = state_cookie
        self.prefix = prefix.rstrip("/")
        self.trusted = trusted or TrustedProxies()
        self.on_session_started = on_session_started
        cap = max_concurrent_per_address
        self.in_progress = None if cap is None else LoginsInProgress(cap)
        self.clock = clock

    def answers(self, path: str) -> bool:
        return path.startswith(self.prefix + "/")

    def redirect_uri(self, request: HttpRequest, name: str) -> str:
        """Where the provider sends the browser back: this origin as the browser sees it (forwarded values only
        from a trusted proxy). Register exactly this at the provider."""
        return f"{request_origin(request, self.trusted)}{self.prefix}/{name}/callback"

    async def respond(self, request: HttpRequest) -> HttpResponse:
        name, _, action = request.path[len(self.prefix) + 1 :].partition("/")
        party = self.parties.get(name)
        if party is not None and action in self.actions:
            method, answer = self.actions[action]
            if request.method != method:
                response = error_body(405, "method_not_allowed", f"use {method}")
                response.headers.append(("allow", method))
                return response
            return await answer(request, party)
        if action not in ("login", "callback"):
            return error_body(404, "not_found", "no such sign-in provider")
        if request.method not in ("GET", "HEAD"):
            response = error_body(405, "method_not_allowed", "use GET")
            response.headers.append(("allow", "GET"))
            return response
        # A failed callback ends the login (its cookie goes); a failed login start leaves an earlier one alone.
        extra = [("set-cookie", self.state_cookie.clear()), _NO_STORE] if action == "callback" else [_NO_STORE]
        if party is None:
            missing = error_body(404, "not_found", "no such sign-in provider")
            return _login_error(request, missing, "unknown_provider", extra)
        try:
            params = _query(request.query)
        except OidcLoginFailed as exc:
            return _login_error(request, error_response(exc), exc.code, extra)
        if action == "login":
            return await self._login(request, party, params)
        return await self._callback(request, party, params)

    async def _login(self, request: HttpRequest, party: RelyingParty, params: Mapping[str, str]) -> HttpResponse:
        try:
            url, login = await party.begin(self.redirect_uri(request, party.name), params.get("return_to"))
        except FrontdeskError as exc:  # discovery failing is logged where it fails (oidc.discovery)
            return _login_error(request, error_response(exc), exc.code, [_NO_STORE])
        except Exception:
            log.exception("unexpected error starting a sign-in with %s", party.name)
            return _internal_error(request, [_NO_STORE])
        return HttpResponse(
            302, [("location", url), ("set-cookie", self.state_cookie.issue(login)), _NO_STORE, ("content-length", "0")]
        )

    async def _callback(self, request: HttpRequest, party: RelyingParty, params: Mapping[str, str]) -> HttpResponse:
        clear = ("set-cookie", self.state_cookie.clear())  # every answer: the login is over, whatever happened
        cookie_header = request.headers.get("cookie")
        client_ip = self._client_ip(request)
        try:
            with contextlib.ExitStack() as holding:
                if self.in_progress is not None and client_ip:
                    holding.enter_context(self.in_progress.hold(client_ip))  # RateLimited (429) when over the cap
                login = self.state_cookie.read(cookie_header, provider=party.name, state=params.get("state"))
                completed = await party.complete(login, params, self.redirect_uri(request, party.name))
                location, set_cookie = await self._start_session(request, party, completed, cookie_header)
        except RateLimited as exc:
            # The login may still be completed: keep its cookie.
            return _login_error(request, error_response(exc), exc.code, [_NO_STORE])
        except FrontdeskError as exc:
            self._tell_failure(request, party, exc)
            return _login_error(request, error_response(exc), exc.code, [clear, _NO_STORE])
        except Exception:
            log.exception("unexpected error in the %s callback", party.name)
            return _internal_error(request, [clear, _NO_STORE])
        return HttpResponse(
            302,
            [("location", location), ("set-cookie", set_cookie), clear, _NO_STORE, ("content-length", "0")],
        )

    async def _start_session(
        self, request: HttpRequest, party: RelyingParty, completed: CompletedLogin, cookie_header: str | None
    ) -> tuple[str, str]:
        claims = completed.claims
        user = User(id=f"oidc:{party.name}:{claims['sub']}", username=party.username(claims))
        result = await self.engine.start_session(
            user,
            client_ip=self._client_ip(request),
            cookie_header=cookie_header,
            user_agent=request.headers.get("user-agent"),
            method=f"oidc:{party.name}",
        )
        if self.on_session_started is not None:
            try:
                await self.on_session_started(
                    sid=result.sid, provider=party, token_response=completed.token_response, claims=claims
                )
            except BaseException:
                await self.engine.revoke(result.sid, reason="the provider's tokens could not be kept")
                raise
        return completed.return_to, result.set_cookie

    def _client_ip(self, request: HttpRequest) -> str | None:
        return self.trusted.client_ip(request.client, request.headers.get("x-forwarded-for"))

    def _tell_failure(self, request: HttpRequest, party: RelyingParty, exc: FrontdeskError) -> None:
        if isinstance(exc, ProviderUnavailable):
            log.warning("sign-in with %s failed: %s", party.name, exc.detail)
        else:
            log.info("sign-in with %s refused (%s): %s", party.name, exc.code, exc.detail)
        events = self.engine.events
        if events:
            reason = f"oidc:{party.name}:{'denied' if isinstance(exc, LoginDenied) else exc.code}"
            agent = request.headers.get("user-agent")
            events.emit(Event(Kind.LOGIN_FAILED, self.clock(), None, None, self._client_ip(request), agent, reason))

    async def aclose(self) -> None:
        for party in self.parties.values():
            await party.aclose()


def _query(raw: bytes) -> dict[str, str]:
    """The query's parameters; each at most once (a repeated ``state`` or ``code`` is someone's trick)."""
    if len(raw) > _MAX_QUERY:
        raise OidcLoginFailed("the query string is too long")
    try:
        parsed = parse_qs(raw.decode("ascii"), keep_blank_values=True, strict_parsing=False, max_num_fields=64)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OidcLoginFailed("the query string is not readable") from exc
    repeated = sorted(key for key, values in parsed.items() if len(values) > 1)
    if repeated:
        raise OidcLoginFailed(f"repeated parameter(s): {', '.join(repeated)}")
    return {key: values[0] for key, values in parsed.items()}


def build_oidc_login(
    config: GatewayConfig,
    engine: SessionEngine,
    *,
    on_session_started: SessionStarted | None = None,
    clock: Clock = system_clock,
) -> OidcLogin | None:
    """The endpoints for ``config``'s ``[[oidc]]`` providers, or None when there are none."""
    if not config.oidc:
        return None
    parties = {provider.name: RelyingParty(provider, clock=clock) for provider in config.oidc}
    state_cookie = LoginStateCookie(login_state_secret(config.tokens.refresh_secret), clock=clock)
    return OidcLogin(
        engine,
        parties,
        state_cookie,
        trusted=config.trusted_proxies,
        on_session_started=on_session_started,
        max_concurrent_per_address=config.login_capacity.max_concurrent_per_address,
        clock=clock,
    )
