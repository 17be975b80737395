"""The ``/auth/*`` HTTP contract, transport-neutral: login, session, refresh, logout, and "your devices"
(``GET /auth/sessions``, ``DELETE /auth/sessions/{id}``, ``POST /auth/logout {"everywhere": true}``).

Used by the gateway and by the session-mode middleware (ASGI and WSGI) alike, so all of them answer
exactly the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from .csrf import check_csrf
from .errors import BadRequest, FrontdeskError, NotAuthenticated, RateLimited, StoreError
from .events import Event, Kind
from .forward_auth import NEVER_CACHE, ForwardAuth
from .forwarded import TrustedProxies, browser_origin
from .http import HttpRequest, HttpResponse, error_body, error_response, json_response
from .sessions import Grant, LoginResult, SessionEngine
from .store.base import SessionRecord

__all__ = ["AUTH_BODY_LIMIT", "AuthAPI", "LoginsInProgress", "iso8601", "request_origin"]

log = logging.getLogger("frontdesk.auth")
_NO_STORE = ("cache-control", "no-store")
AUTH_BODY_LIMIT = 16 * 1024  # the largest /auth/* body any adapter reads (a login is far smaller)
_SESSIONS = "/sessions"
_VERIFY = "/verify"  # forward-auth: asked by a proxy, judged by its own CSRF rule (see forward_auth.py)


def iso8601(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def request_origin(request: HttpRequest, trusted: TrustedProxies) -> str:
    """``scheme://host`` as the browser sees us; forwarded values only from a trusted proxy."""
    headers = request.headers
    return browser_origin(
        request.scheme,
        headers.get("host", ""),
        client=request.client,
        forwarded_proto=headers.get("x-forwarded-proto"),
        forwarded_host=headers.get("x-forwarded-host"),
        trusted=trusted,
    )


class LoginsInProgress:
    """Logins in progress per client address, capped: one address cannot fill the password-hashing pool.

    Checked before anything else of a login, so a refused request costs no hash and counts against nothing.
    Entries exist only while a login runs, so the table is as large as the logins in flight.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the cap on concurrent logins per address must be at least 1")
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()  # cheap, and correct even if an app drives one AuthAPI from two threads

    @contextlib.contextmanager
    def hold(self, address: str) -> Iterator[None]:
        with self._lock:
            count = self._counts.get(address, 0)
            if count >= self.limit:
                raise RateLimited(1, "too many logins in progress from this address; try again shortly")
            self._counts[address] = count + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._counts[address] - 1
                if left:
                    self._counts[address] = left
                else:
                    del self._counts[address]


class AuthAPI:
    """The ``/auth/*`` endpoints; an ``admission.Endpoints``, answered through the pipeline's endpoint path."""

    body_limit = AUTH_BODY_LIMIT

    def __init__(
        self,
        engine: SessionEngine,
        *,
        prefix: str = "/auth",
        csrf_header: str = "x-csrf",
        trusted: TrustedProxies | None = None,
        origins: Iterable[str] = (),
        max_concurrent_logins_per_address: int | None = None,
        forward_auth_pass_token: bool = False,
        password_login: bool = True,
        sign_in_with: Mapping[str, str] | None = None,
        session_claims: SessionClaims | None = None,
        on_logout: BeforeLogout | None = None,
        on_logout_everywhere: BeforeLogoutEverywhere | None = None,
    ) -> None:
        """``max_concurrent_logins_per_address``: logins one client address may have in progress at once
        (more get 429 + ``Retry-After`` without hashing); ``None`` for no cap. ``forward_auth_pass_token``:
        ``/auth/verify`` always hands the access token to the (trusted) proxy, not only on ``?token=1``.
        ``password_login=False``: ``POST /auth/login`` answers 404 (users sign in elsewhere only).
        ``sign_in_with``: the other ways to sign in, name -> login URL (OpenID Providers), which
        ``/auth/config`` lists for the login page. ``session_claims``: the claims ``GET /auth/session`` adds for
        a session (an identity provider's, as the config allows). ``on_logout``: called with the session id and
        the request's origin before a logout ends it; a URL it returns is where the browser goes next
        (RP-initiated logout at the identity provider), answered as ``{"logout_url": ...}``.
        ``on_logout_everywhere``: called with the ids of the caller's *other* live sessions before "logout
        everywhere" ends them (the current one goes to ``on_logout``), e.g. to revoke what they hold elsewhere;
        it must not wait on anything slow: the answer waits for it."""
        self.engine = engine
        self.prefix = prefix.rstrip("/")
        self.csrf_header = csrf_header.lower()
        self.trusted = trusted or TrustedProxies()
        self.origins = frozenset(o.lower().rstrip("/") for o in origins)
        cap = max_concurrent_logins_per_address
        self.logins_in_progress = None if cap is None else LoginsInProgress(cap)
        self.forward_auth = ForwardAuth(engine, trusted=self.trusted, pass_token=forward_auth_pass_token)
        self.password_login = password_login
        self.sign_in_with = dict(sign_in_with or {})
        self.session_claims = session_claims
        self.on_logout = on_logout
        self.on_logout_everywhere = on_logout_everywhere
        self._routes = {
            "/login": ("POST", self._login),
            "/session": ("GET", self._session),
            "/refresh": ("POST", self._refresh),
            "/logout": ("POST", self._logout),
            "/config": ("GET", self._config),
            _SESSIONS: ("GET", self._sessions),
            _VERIFY: ("GET", self._verify),
        }

    def handles(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def allowed_origins(self, request: HttpRequest) -> frozenset[str]:
        return self.origins | {request_origin(request, self.trusted)}

    async def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.path[len(self.prefix) :]
        route = self._routes.get(path)
        if route is None and path.startswith(_SESSIONS + "/"):
            route = ("DELETE", self._end_session)
        if route is None:
            return error_body(404, "not_found", "no such endpoint")
        method, handler = route
        if request.method != method and not (method == "GET" and request.method == "HEAD"):
            response = error_body(405, "method_not_allowed", f"use {method}")
            response.headers.append(("allow", method))
            return response
        if path == _VERIFY:  # asked by a proxy: its own CSRF rule, applied by ForwardAuth
            response = await self._answer(request, handler)
            if NEVER_CACHE[0] not in {name for name, _ in response.headers}:
                response.headers.append(NEVER_CACHE)  # a 401 too: a cached "no" would lock the user out
            return response
        return await self._answer(request, handler, csrf=True)

    async def _answer(
        self, request: HttpRequest, handler: Callable[[HttpRequest], Awaitable[HttpResponse]], *, csrf: bool = False
    ) -> HttpResponse:
        try:
            if csrf:
                check_csrf(request.headers, header_name=self.csrf_header, own_origins=self.allowed_origins(request))
            return await handler(request)
        except NotAuthenticated as exc:
            # The cookie cannot be used any more: tell the browser to drop it.
            has_cookie = self.engine.cookie_name in request.headers.get("cookie", "")
            clear = [("set-cookie", self.engine.cookie.clear_cookie()), _NO_STORE] if has_cookie else []
            return error_response(exc, clear)
        except FrontdeskError as exc:
            if isinstance(exc, StoreError):
                log.error("session store failure in %s %s: %s", request.method, request.path, exc)
            return error_response(exc)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.path)
            return error_body(500, "internal_error", "unexpected error; see the gateway log")

    # The names of the pipeline's ``Endpoints`` protocol (``handles``/``handle`` stay for existing callers).
    answers = handles
    respond = handle

    async def _login(self, request: HttpRequest) -> HttpResponse:
        if not self.password_login:
            return error_body(404, "not_found", "password login is switched off here; sign in with a provider")
        username, password, remember = _parse_login(request)
        client_ip = self._client_ip(request)
        user_agent = request.headers.get("user-agent")
        cap = self.logins_in_progress
        with contextlib.ExitStack() as holding:
            if cap is not None and client_ip:
                try:
                    holding.enter_context(cap.hold(client_ip))
                except RateLimited:
                    self._tell(Kind.LOGIN_FAILED, request, username, None, reason="rate_limited")
                    self._tell(Kind.RATE_LIMITED, request, username, None, reason="logins_in_progress")
                    raise
            result = await self.engine.login(
                username,
                password,
                remember=remember,
                client_ip=client_ip,
                cookie_header=request.headers.get("cookie"),
                user_agent=user_agent,
            )
        headers = [("set-cookie", result.set_cookie), _NO_STORE]
        if result.device_cookie:
            headers.append(("set-cookie", result.device_cookie))
        return json_response(200, _login_body(result), headers)

    async def _session(self, request: HttpRequest) -> HttpResponse:
        grant = await self.engine.grant(request.headers.get("cookie"))
        claims = await self.session_claims(grant.sid) if self.session_claims is not None else None
        return self._grant_response(grant, {"claims": claims} if claims is not None else None)

    async def _refresh(self, request: HttpRequest) -> HttpResponse:
        grant = await self.engine.refresh(request.headers.get("cookie"))
        return self._grant_response(grant)

    async def _logout(self, request: HttpRequest) -> HttpResponse:
        cookie = request.headers.get("cookie")
        everywhere = _parse_logout(request)
        logout_url = await self._before_logout(request, cookie)
        if everywhere:
            # Every session of the caller, this one included; needs a live session to know whose.
            session = await self.engine.session_of(cookie)
            if self.on_logout_everywhere is not None:
                listed = await self.engine.sessions_of(session.user_id)
                others = [s.sid for s in listed if s.sid != session.sid]
                if others:
                    await self.on_logout_everywhere(others)
            await self.engine.revoke_user(session.user_id, reason="logout everywhere", actor="user")
            self._tell(Kind.LOGOUT, request, session.username, session.sid, reason="everywhere", actor="user")
        else:
            sid = await self.engine.logout(cookie)
            if sid is not None and self.engine.events:
                record = await self.engine.store.get_session(sid)  # who it was: the audit trail says so
                user = record.username if record else None
                self._tell(Kind.LOGOUT, request, user, sid, reason="logout", actor="user")
        return self._signed_out(logout_url)

    async def _before_logout(self, request: HttpRequest, cookie: str | None) -> str | None:
        """The ``on_logout`` hook for the cookie's live session, if there is one (a logout needs none)."""
        if self.on_logout is None:
            return None
        try:
            session = await self.engine.session_of(cookie)
        except NotAuthenticated:
            return None
        return await self.on_logout(session.sid, request_origin(request, self.trusted))

    def _signed_out(self, logout_url: str | None = None) -> HttpResponse:
        headers = [("set-cookie", self.engine.cookie.clear_cookie()), ("clear-site-data", '"cookies"'), _NO_STORE]
        if logout_url is not None:
            return json_response(200, {"logout_url": logout_url}, headers)
        return HttpResponse(204, headers)

    async def _verify(self, request: HttpRequest) -> HttpResponse:
        return await self.forward_auth.verify(request, self.allowed_origins(request))

    async def _sessions(self, request: HttpRequest) -> HttpResponse:
        current = await self.engine.session_of(request.headers.get("cookie"))
        listed = await self.engine.sessions_of(current.user_id)
        body = {"sessions": [_device(record, current=record.sid == current.sid) for record in listed]}
        return json_response(200, body, [_NO_STORE])

    async def _end_session(self, request: HttpRequest) -> HttpResponse:
        current = await self.engine.session_of(request.headers.get("cookie"))
        sid = request.path[len(self.prefix) + len(_SESSIONS) + 1 :]
        # One answer for "not yours" and "no such session" (malformed ids included): the engine decides every
        # case by looking ``sid`` up in the caller's own list, never by reading the session ``sid`` names.
        ended = await self.engine.end_session_of(
            current.user_id, sid, reason="signed out from the devices list", actor="user"
        )
        if not ended:
            return error_body(404, "not_found", "no such session")
        if sid == current.sid:
            return self._signed_out()  # the caller ended the session it is using: drop its cookie too
        return HttpResponse(204, [_NO_STORE])

    def _client_ip(self, request: HttpRequest) -> str | None:
        return self.trusted.client_ip(request.client, request.headers.get("x-forwarded-for"))

    def _tell(
        self,
        kind: str,
        request: HttpRequest,
        user: str | None,
        session: str | None,
        *,
        reason: str | None = None,
        actor: str | None = None,
    ) -> None:
        """Emit ``kind`` with the request's client address and user agent (the engine emits the rest)."""
        events = self.engine.events
        if events:
            address, agent = self._client_ip(request), request.headers.get("user-agent")
            events.emit(Event(kind, self.engine.clock(), user, session, address, agent, reason, actor))

    async def _config(self, request: HttpRequest) -> HttpResponse:
        # What a login form may tell the user before they sign in ("remember me for 30 days"); public on
        # purpose, so it holds only lifetimes, never anything about a session, a user or a key.
        body: dict[str, Any] = {"remember_ttl": int(self.engine.settings.remember_ttl)}
        if self.sign_in_with or not self.password_login:
            # The sign-in providers' names are public too: the login page shows them on its buttons.
            body["password_login"] = self.password_login
            body["providers"] = [{"name": name, "login_url": url} for name, url in self.sign_in_with.items()]
        return json_response(200, body, [_NO_STORE])

    def _grant_response(self, grant: Grant, extra: Mapping[str, Any] | None = None) -> HttpResponse:
        headers = [_NO_STORE]
        if grant.set_cookie:
            headers.append(("set-cookie", grant.set_cookie))
        return json_response(200, {**_session_body(grant.user_id, grant.username, grant), **(extra or {})}, headers)


SessionClaims = Callable[[str], Awaitable[Mapping[str, Any] | None]]
"""Session id -> the claims ``GET /auth/session`` shows for it (None: nothing to add)."""
BeforeLogout = Callable[[str, str], Awaitable[str | None]]
"""(session id, the request's origin) -> where the browser goes after the logout, if anywhere."""

BeforeLogoutEverywhere = Callable[[Sequence[str]], Awaitable[None]]
"""(the ids of the caller's other live sessions) -> None, before "logout everywhere" ends them."""


def _session_body(user_id: str, username: str, s: Grant | LoginResult) -> dict[str, Any]:
    return {
        "user": {"id": user_id, "username": username},
        "session": {"expires_at": iso8601(s.expires_at), "idle_expires_at": iso8601(s.idle_expires_at)},
    }


def _login_body(result: LoginResult) -> dict[str, Any]:
    return _session_body(result.user.id, result.user.username, result)


def _device(record: SessionRecord, *, current: bool) -> dict[str, Any]:
    return {
        "id": record.sid,
        "created_at": iso8601(record.created_at),
        "last_seen": iso8601(record.last_seen),
        "client_address": record.client_address,
        "user_agent": record.user_agent,
        "remember": record.remember,
        "current": current,
    }


def _json_object(request: HttpRequest, what: str) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BadRequest(f"send {what} as application/json", status=415, code="unsupported_media_type")
    if len(request.body) > AUTH_BODY_LIMIT:
        raise BadRequest("request body too large", status=413, code="payload_too_large")
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise BadRequest("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def _parse_logout(request: HttpRequest) -> bool:
    """Whether the logout is everywhere. No body at all is a plain logout (what every client sent so far)."""
    if not request.body:
        return False
    data = _json_object(request, "the logout options")
    everywhere = data.get("everywhere", False)
    if not isinstance(everywhere, bool):
        raise BadRequest("everywhere must be true or false")
    unknown = set(data) - {"everywhere"}
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    return everywhere


def _parse_login(request: HttpRequest) -> tuple[str, str, bool]:
    data = _json_object(request, "the credentials")
    username, password, remember = data.get("username"), data.get("password"), data.get("remember", False)
    if not isinstance(username, str) or not username.strip() or len(username) > 256:
        raise BadRequest("username must be a non-empty string")
    if not isinstance(password, str) or not password or len(password) > 1024:
        raise BadRequest("password must be a non-empty string")
    if not isinstance(remember, bool):
        raise BadRequest("remember must be true or false")
    unknown = set(data) - {"username", "password", "remember"}
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    return username.strip(), password, remember
