"""The session engine: login, server-side silent refresh with rotation and reuse detection, logout.

Pure logic over an injected clock and a :class:`~frontdesk.middleware.store.Store`; no HTTP here. Everything that
serves requests (the gateway's proxy, ``/auth/*``, the ASGI and WSGI middleware) calls :meth:`grant`,
the one call that turns a refresh cookie into a valid access token.

Rotation follows oauth2-proxy's stored-session discipline: lock, reload, re-check, refresh, save. The
per-session lock makes concurrent requests of one process mint once; the store's compare-and-swap makes
several processes rotate once.
"""

from __future__ import annotations

import enum
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .caches import ExpiringCache, KeyedLocks
from .clock import Clock, system_clock
from .cookies import CookiePolicy, read_cookie
from .errors import BadCredentials, NotAuthenticated, Overloaded, RateLimited, SessionRevoked, TokenError, TokenReused
from .events import NO_EVENTS, Event, Events, Kind
from .grant_memo import GrantMemo
from .invalidation import Freshness
from .login_limits import DEVICE_TYP, LoginLimits
from .readonly import read_only
from .store.base import CountsRevocations, SessionRecord, Store
from .tokens import ACCESS_TYP, REFRESH_TYP, KeyRing, TokenCodec, new_token_id
from .user_agents import summarize_user_agent

__all__ = ["User", "Authenticator", "SessionSettings", "Grant", "LoginResult", "SessionEngine", "REFRESH_COALESCE"]

log = logging.getLogger("frontdesk.sessions")

REFRESH_COALESCE = 1.0
"""Seconds after a rotation during which ``POST /auth/refresh`` hands back the current token, not a new one."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str


Authenticator = Callable[[str, str], Awaitable[User | None]]
"""Checks a username and password; returns the user, or None. Must take similar time either way."""


@dataclass(frozen=True, slots=True)
class SessionSettings:
    access_ttl: float = 15 * 60
    refresh_ttl: float = 7 * 86400
    remember_ttl: float = 30 * 86400
    max_session_age: float = 30 * 86400
    rotation_grace: float = 30.0
    refresh_margin: float = 60.0  # mint a new access token when the cached one has less than this left
    state_ttl: float = 0.5  # how stale a cached session row may be: bounds cross-worker logout delay
    # With a store that keeps a revocation epoch (invalidation.py) and its watch running, a cached row is trusted
    # this long instead: revocations drop it at once (announced) or within 1 s (the epoch); only a rotation made
    # by another worker and not announced (SQLite) is seen this late, by reuse detection.
    state_trust: float = 10.0
    # Store unreachable: False (fail closed) answers 503 at once; True keeps serving the access tokens already
    # minted for sessions this worker has seen, until they expire (nothing new is minted or rotated).
    serve_cached_on_outage: bool = False
    access_cache_size: int = 100_000
    login_attempts_per_user: int = 10  # per username for unknown clients; a known device has a budget of its own
    login_attempts_per_address: int = 100
    login_window: float = 15 * 60
    login_device_ttl: float = 365 * 86400  # how long a browser stays a known device of its user

    @property
    def margin(self) -> float:
        # Never so large that a fresh token is already "near expiry".
        return min(self.refresh_margin, self.access_ttl / 4)


@dataclass(frozen=True, slots=True)
class Grant:
    """A valid access token for one request, and the refresh cookie to send back if it rotated."""

    user_id: str
    username: str
    sid: str
    access_token: str
    access_expires_at: float
    set_cookie: str | None
    expires_at: float
    idle_expires_at: float
    claims: Mapping[str, Any]  # read-only: the same mapping serves every request until the token is re-minted


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    sid: str
    expires_at: float
    idle_expires_at: float
    set_cookie: str
    device_cookie: str | None = None  # marks the browser as a known device of the user (see login_limits)


class _Standing(enum.Enum):
    CURRENT = "current"
    GRACE = "superseded less than the rotation grace ago"
    REUSED = "reused"


@dataclass(frozen=True, slots=True)
class _Access:
    token: str
    expires_at: float
    claims: Mapping[str, Any]


class SessionEngine:
    def __init__(
        self,
        *,
        store: Store,
        access_codec: TokenCodec,
        refresh_codec: TokenCodec,
        authenticator: Authenticator,
        cookie: CookiePolicy | None = None,
        settings: SessionSettings | None = None,
        clock: Clock = system_clock,
        events: Events = NO_EVENTS,
    ) -> None:
        if access_codec.keyring is refresh_codec.keyring:
            raise ValueError("access and refresh tokens must be signed with different keys")
        self.store = store
        self.access_codec = access_codec
        self.refresh_codec = refresh_codec
        self.authenticator = authenticator
        self.cookie = cookie or CookiePolicy()
        self.settings = settings or SessionSettings()
        self.clock = clock
        self.events = events  # what happened, for the audit trail, the metrics and the log (see events.py)
        self._states: ExpiringCache[str, SessionRecord] = ExpiringCache(self.settings.access_cache_size)
        self._access: ExpiringCache[tuple[str, str], _Access] = ExpiringCache(self.settings.access_cache_size)
        # (refresh cookie value, audience) -> the whole grant last handed out for it (see grant_memo.py).
        self._grants: GrantMemo[Grant, SessionRecord] = GrantMemo(self.settings.access_cache_size)
        self._audiences: set[str] = set()
        # sid -> the jti this worker rotated it to, until its own announcement comes back (_forget_rotated).
        self._rotated_here: ExpiringCache[str, str] = ExpiringCache(self.settings.access_cache_size)
        self._locks: KeyedLocks[str] = KeyedLocks()
        self._generation = 0  # raised by every forget: a row read across one is not cached (it may be stale)
        self._trusting = False  # whether rows are being cached for state_trust (the epoch watch confirms)
        self.freshness: Freshness | None = None
        if isinstance(store, CountsRevocations):
            self.freshness = Freshness(
                store,
                clock=clock,
                forget_all=self._forget_all,
                forget_sid=self._forget,
                forget_user=self._forget_user,
                forget_rotated=self._forget_rotated,
                serve_cached=self.settings.serve_cached_on_outage,
            )
        s = self.settings
        device_codec = TokenCodec(
            refresh_codec.keyring,  # never published, and the type keeps device and refresh tokens apart
            typ=DEVICE_TYP,
            issuer=refresh_codec.issuer,
            audience=refresh_codec.audience,
            leeway=refresh_codec.leeway,
            clock=clock,
        )
        self.login_limits = LoginLimits(
            store=store,
            device_codec=device_codec,
            cookie=self.cookie,
            per_user=s.login_attempts_per_user,
            per_address=s.login_attempts_per_address,
            window=s.login_window,
            device_ttl=s.login_device_ttl,
        )
        self.stats = {"mints": 0, "rotations": 0, "reuse_detected": 0}

    @classmethod
    def from_keys(
        cls,
        *,
        access_keyring: KeyRing,
        refresh_keyring: KeyRing,
        store: Store,
        authenticator: Authenticator,
        issuer: str = "frontdesk",
        audience: str = "frontdesk-api",
        leeway: float = 5.0,
        cookie: CookiePolicy | None = None,
        settings: SessionSettings | None = None,
        clock: Clock = system_clock,
        events: Events = NO_EVENTS,
    ) -> SessionEngine:
        """An engine with the standard pair of codecs: access tokens for ``audience``, refresh tokens whose
        only audience is the issuer itself. Used by the gateway and by session-mode middleware alike."""
        access = TokenCodec(
            access_keyring, typ=ACCESS_TYP, issuer=issuer, audience=audience, leeway=leeway, clock=clock
        )
        refresh = TokenCodec(
            refresh_keyring, typ=REFRESH_TYP, issuer=issuer, audience=issuer, leeway=leeway, clock=clock
        )
        return cls(
            store=store,
            access_codec=access,
            refresh_codec=refresh,
            authenticator=authenticator,
            cookie=cookie,
            settings=settings,
            clock=clock,
            events=events,
        )

    @property
    def cookie_name(self) -> str:
        return self.cookie.name

    def cache_sizes(self) -> dict[str, int]:
        """Entries held in memory now, by cache (the gateway's metrics sample this)."""
        return {"session_states": len(self._states), "access_tokens": len(self._access), "grants": len(self._grants)}

    async def follow_invalidations(self) -> None:
        """Start trusting cached rows until invalidated (the epoch watch, and the store's announcements when it
        has them); without this, or with a store that keeps no epoch, rows are re-read every ``state_ttl``."""
        if self.freshness is not None:
            self.freshness.start()

    async def stop_following(self) -> None:
        if self.freshness is not None:
            await self.freshness.stop()

    # --- login / logout -------------------------------------------------------------------------

    async def login(
        self,
        username: str,
        password: str,
        *,
        remember: bool = False,
        client_ip: str | None = None,
        cookie_header: str | None = None,
        user_agent: str | None = None,
    ) -> LoginResult:
        """Check credentials and start a new session (always new, whatever cookie came with it).

        ``user_agent`` is the raw header: the session keeps only its short summary (user_agents.py).
        """
        now = self.clock()
        try:
            attempt = await self.login_limits.admit(username, client_ip, cookie_header, now)
        except RateLimited:
            self._emit(Kind.LOGIN_FAILED, now, username, None, client_ip, user_agent, reason="rate_limited")
            self._emit(Kind.RATE_LIMITED, now, username, None, client_ip, user_agent, reason="login_attempts")
            raise
        try:
            user = await self.authenticator(username, password)
        except Overloaded:
            self._emit(Kind.LOGIN_FAILED, now, username, None, client_ip, user_agent, reason="busy")
            raise
        if user is None:
            self._emit(Kind.LOGIN_FAILED, now, username, None, client_ip, user_agent, reason="bad_credentials")
            raise BadCredentials()
        device_cookie = await self.login_limits.succeeded(attempt, username, now)
        return await self.start_session(
            user,
            remember=remember,
            client_ip=client_ip,
            cookie_header=cookie_header,
            user_agent=user_agent,
            device_cookie=device_cookie,
        )

    async def start_session(
        self,
        user: User,
        *,
        remember: bool = False,
        client_ip: str | None = None,
        cookie_header: str | None = None,
        user_agent: str | None = None,
        device_cookie: str | None = None,
        method: str | None = None,
    ) -> LoginResult:
        """Start a new session for a ``user`` someone has already authenticated: the one place sessions are
        created, for a password login (:meth:`login`) and a login at an OpenID Provider alike, so both get
        the same cookie, rotation and expiries. ``method`` names how the user signed in, for the events
        (``None`` for a password)."""
        now = self.clock()
        if cookie_header:
            # The browser's previous session (if any) ends here: one browser, one live session.
            await self.logout(cookie_header, reason="replaced by a new login")
        s = self.settings
        expires_at = now + s.max_session_age
        idle = min(now + (s.remember_ttl if remember else s.refresh_ttl), expires_at)
        record = SessionRecord(
            sid=secrets.token_urlsafe(18),
            user_id=user.id,
            username=user.username,
            created_at=now,
            last_seen=now,
            expires_at=expires_at,
            idle_expires_at=idle,
            remember=remember,
            current_jti=new_token_id(),
            previous_jti=None,
            rotated_at=now,
            client_address=client_ip,
            user_agent=summarize_user_agent(user_agent),
        )
        await self.store.create_session(record)
        self._remember_state(record, now)
        self._emit(Kind.LOGIN_OK, now, user.username, record.sid, client_ip, user_agent, reason=method)
        # Mint the first access token now, so the first proxied request does not have to rotate at once.
        self._mint(record, self._default_audience(), now)
        return LoginResult(
            user=user,
            sid=record.sid,
            expires_at=expires_at,
            idle_expires_at=idle,
            set_cookie=self._refresh_cookie(record, now),
            device_cookie=device_cookie,
        )

    async def logout(self, cookie_header: str | None, *, reason: str = "logout") -> str | None:
        """Revoke the cookie's session, if it names one; idempotent. Returns the session id revoked."""
        token = read_cookie(cookie_header, self.cookie.name)
        if token is None:
            return None
        try:
            claims = self.refresh_codec.decode(token)
        except TokenError:
            return None
        sid = claims["sid"]
        await self.revoke(sid, reason=reason, actor="user")
        return str(sid)

    async def revoke(self, sid: str, *, reason: str, actor: str = "system") -> None:
        now = self.clock()
        await self.store.revoke_session(sid, now=now, reason=reason)
        record = self._states.get(sid, now)
        if record is None and self.events:  # whose session it was, for the audit trail (revoking is rare)
            record = await self.store.get_session(sid)
        self._forget(sid)
        self._emit(Kind.SESSION_REVOKED, now, record.username if record else None, sid, reason=reason, actor=actor)

    async def revoke_user(self, user_id: str, *, reason: str, actor: str = "system") -> int:
        """End every session of a user (removed, password changed); other workers follow within 1 s."""
        now = self.clock()
        # The events name users by username (as every other event does): read it before the sessions end.
        live = await self.store.list_sessions(user_id, now=now) if self.events else []
        count = await self.store.revoke_user(user_id, now=now, reason=reason)
        self._forget_user(user_id)
        if count:
            username = live[0].username if live else user_id
            self._emit(Kind.SESSION_REVOKED, now, username, None, reason=reason, actor=actor)
        return count

    # --- your devices -----------------------------------------------------------------------------

    async def session_of(self, cookie_header: str | None) -> SessionRecord:
        """The live session the refresh cookie names, checked exactly as :meth:`grant` checks it (reuse
        detection included) on a fresh row, but with nothing minted or rotated. Raises :class:`NotAuthenticated`."""
        claims = self._refresh_claims(cookie_header)
        record, _ = await self._check(claims["sid"], claims["jti"], self.clock(), fresh=True)
        return record

    async def sessions_of(self, user_id: str) -> list[SessionRecord]:
        """The user's live sessions, oldest first (the "your devices" list)."""
        return await self.store.list_sessions(user_id, now=self.clock())

    async def end_session_of(self, user_id: str, sid: str, *, reason: str, actor: str) -> bool:
        """End ``sid`` if it is one of ``user_id``'s live sessions; False, with nothing done, otherwise.

        Decided on the user's own list alone: a session of someone else and one that does not exist cost the
        same work (one listing, no lookup of ``sid``) and give the same answer, so neither can be told apart.
        """
        if sid not in {record.sid for record in await self.sessions_of(user_id)}:
            return False
        await self.revoke(sid, reason=reason, actor=actor)
        return True

    # --- the one call ---------------------------------------------------------------------------

    async def grant(self, cookie_header: str | None, *, audience: str | None = None, force_new: bool = False) -> Grant:
        """A valid access token for the session in ``cookie_header``, minting and rotating as needed.

        Raises :class:`NotAuthenticated` (or :class:`SessionRevoked` / :class:`TokenReused`).
        """
        return await self._grant(cookie_header, audience, force_new=force_new, always_rotate=False)

    async def refresh(self, cookie_header: str | None, *, audience: str | None = None) -> Grant:
        """Like :meth:`grant`, but always mints and rotates the refresh token (``POST /auth/refresh``), unless it
        rotated less than :data:`REFRESH_COALESCE` ago: then the current token is handed back."""
        return await self._grant(cookie_header, audience, force_new=True, always_rotate=True)

    async def is_active(self, sid: str) -> bool:
        now = self.clock()
        record = await self._state(sid, now)
        return record is not None and record.is_usable(now)

    async def purge(self) -> int:
        return await self.store.purge(now=self.clock())

    def _refresh_claims(self, cookie_header: str | None) -> dict[str, Any]:
        """The verified claims of the refresh cookie in ``cookie_header``; raises :class:`NotAuthenticated`."""
        return self._verify_refresh(read_cookie(cookie_header, self.cookie.name))

    def _verify_refresh(self, token: str | None) -> dict[str, Any]:
        if token is None:
            raise NotAuthenticated("no session")
        try:
            claims = self.refresh_codec.decode(token)
        except TokenError as exc:
            raise NotAuthenticated(f"session cookie rejected: {exc.detail}") from exc
        return claims

    async def _grant(
        self, cookie_header: str | None, audience: str | None, *, force_new: bool, always_rotate: bool
    ) -> Grant:
        aud = audience or self._default_audience()
        token = read_cookie(cookie_header, self.cookie.name)
        if not force_new and token is not None:
            memo = self._remembered(token, aud)
            if memo is not None:
                return memo
        claims = self._verify_refresh(token)
        sid, jti = claims["sid"], claims["jti"]
        now = self.clock()
        record, standing = await self._check(sid, jti, now, fresh=False)
        if not force_new:
            cached = self._access.get((sid, aud), now)
            if cached is not None and cached.expires_at - now > self.settings.margin:
                grant = self._grant_from(record, cached, standing, now)
                if standing is _Standing.CURRENT and token is not None:
                    # Only the current token's grant (nothing to send back): a grace token's carries a cookie.
                    deadline = min(
                        cached.expires_at - self.settings.margin,
                        float(claims["exp"]),
                        record.expires_at,
                        record.idle_expires_at,
                    )
                    self._grants.set((token, aud), sid, grant, record, deadline)
                return grant
        async with self._locks.hold(sid):
            # Re-check under the lock with a fresh row: another request or worker may have rotated.
            now = self.clock()
            record, standing = await self._check(sid, jti, now, fresh=True)
            cached = self._access.get((sid, aud), now)
            if not force_new and cached is not None and cached.expires_at - now > self.settings.margin:
                # A follower of the flight that just minted: share its token.
                return self._grant_from(record, cached, standing, now)
            # Each worker has its own access-token cache, so several may mint for one session in a row; the
            # refresh token rotates once for all of them, not once per worker: right after a rotation a mint
            # reuses it. The window is the grace, but never more than half an access lifetime, so an active
            # session still rotates on schedule. An explicit refresh right after a rotation (two tabs
            # refreshing together) hands back the current token too, so rotations stay at most one a second.
            if always_rotate:  # a login is no rotation: the first refresh after it always rotates
                window = REFRESH_COALESCE if record.previous_jti is not None else 0.0
            else:
                window = min(self.settings.rotation_grace, self.settings.access_ttl / 2)
            recently_rotated = now < record.rotated_at + window
            if standing is _Standing.CURRENT and not recently_rotated:
                record = await self._rotate(record, now)
            access = self._mint(record, aud, now)
            return self._grant_from(record, access, _Standing.CURRENT, now, rotated=True)

    def remembered(self, cookie_header: str | None, *, audience: str | None = None) -> Grant | None:
        """What :meth:`grant` would hand out at once for this cookie from its memo, or None (then ask
        :meth:`grant`): for the proxy's express lane, which answers without a task when it can."""
        token = read_cookie(cookie_header, self.cookie.name)
        return None if token is None else self._remembered(token, audience or self._default_audience())

    def _remembered(self, token: str, aud: str) -> Grant | None:
        # The same cookie as a moment ago: its grant, while the session row it was decided on is still the
        # cached one (so never longer than a revocation takes to reach this worker) and before its deadline.
        now = self.clock()
        if self.freshness is not None:
            self._check_trust(now)  # a stalled epoch watch drops the rows, and with them these grants
        memo = self._grants.get((token, aud), now)
        if memo is not None and self._states.get(memo[1].sid, now) is memo[1]:
            return memo[0]
        return None

    def _default_audience(self) -> str:
        aud = self.access_codec.audience
        return aud if isinstance(aud, str) else aud[0]

    async def _check(self, sid: str, jti: str, now: float, *, fresh: bool) -> tuple[SessionRecord, _Standing]:
        record = await self._state(sid, now, fresh=fresh)
        standing = _standing(record, jti, now, self.settings.rotation_grace) if record else None
        if not fresh and standing is not _Standing.CURRENT:
            # Only a match is trusted from the cache; anything else is decided on a fresh row.
            record = await self._state(sid, now, fresh=True)
            standing = _standing(record, jti, now, self.settings.rotation_grace) if record else None
        if record is None or standing is None:
            raise NotAuthenticated("unknown session")
        if record.revoked_at is not None:
            self._forget(sid)
            raise SessionRevoked("session has been logged out or revoked")
        if now >= record.expires_at or now >= record.idle_expires_at:
            raise NotAuthenticated("session expired")
        if standing is _Standing.REUSED:
            self.stats["reuse_detected"] += 1
            log.warning("refresh token reuse detected; revoking session %s", sid)
            self._emit(Kind.REUSE_DETECTED, now, record.username, sid)
            await self.revoke(sid, reason="refresh token reuse")
            raise TokenReused("refresh token was already used; the session has been revoked")
        return record, standing

    async def _state(self, sid: str, now: float, *, fresh: bool = False) -> SessionRecord | None:
        if self.freshness is not None:
            self._check_trust(now)
        if not fresh:
            cached = self._states.get(sid, now)
            if cached is not None:
                return cached
        generation = self._generation
        record = await self.store.get_session(sid)
        if record is not None and generation == self._generation:
            self._remember_state(record, now)
        return record

    def _check_trust(self, now: float) -> None:
        """Rows cached while the epoch watch confirmed are dropped the moment it stops confirming."""
        assert self.freshness is not None
        if self.freshness.trusted(now):
            self._trusting = True
        elif self._trusting:
            self._trusting = False
            self._forget_all()

    def _remember_state(self, record: SessionRecord, now: float) -> None:
        s = self.settings
        if self.freshness is not None:
            self._check_trust(now)  # a login may be the first call since the watch started: trust it now
        if self._trusting:
            # Serving cached tokens through an outage needs their rows for as long as the tokens live.
            ttl = max(s.state_trust, s.access_ttl) if s.serve_cached_on_outage else s.state_trust
        else:
            ttl = s.state_ttl
        self._states.set(record.sid, record, now + ttl, now)

    async def _rotate(self, record: SessionRecord, now: float) -> SessionRecord:
        s = self.settings
        ttl = s.remember_ttl if record.remember else s.refresh_ttl
        idle = min(now + ttl, record.expires_at)
        new_jti = new_token_id()
        self._grants.drop(record.sid)  # won or lost the race below, the cookie memoised so far is superseded
        # Noted before the write: its announcement may come back before the write's own reply does.
        self._rotated_here.set(record.sid, new_jti, now + s.state_trust, now)
        if await self.store.rotate(
            record.sid,
            expected_jti=record.current_jti,
            new_jti=new_jti,
            now=now,
            idle_expires_at=idle,
            remember_for=s.rotation_grace,
        ):
            self.stats["rotations"] += 1
            self._emit(Kind.REFRESH_ROTATED, now, record.username, record.sid)
        else:
            self._rotated_here.pop(record.sid)  # another worker won: its announcement must drop our row
        # Won or lost the race, the row in the store is now the truth.
        fresh = await self._state(record.sid, now, fresh=True)
        if fresh is None or fresh.revoked_at is not None:
            self._forget(record.sid)
            raise SessionRevoked("session has been logged out or revoked")
        return fresh

    def _mint(self, record: SessionRecord, aud: str, now: float) -> _Access:
        exp = int(min(now + self.settings.access_ttl, record.idle_expires_at, record.expires_at))
        claims: dict[str, Any] = {
            "sub": record.user_id,
            "sid": record.sid,
            "jti": new_token_id(),
            "iat": int(now),
            "exp": exp,
            "aud": aud,
            "preferred_username": record.username,
        }
        token = self.access_codec.encode(claims)
        claims["iss"] = self.access_codec.issuer
        access = _Access(token=token, expires_at=float(exp), claims=read_only(claims))
        self._access.set((record.sid, aud), access, float(exp), now)
        self._grants.drop(record.sid)  # a memoised grant would still carry the token this one replaces
        self._audiences.add(aud)
        self.stats["mints"] += 1
        if self.events:
            self._emit(Kind.ACCESS_MINTED, now, record.username, record.sid)
        return access

    def _emit(
        self,
        kind: str,
        at: float,
        user: str | None,
        session: str | None,
        address: str | None = None,
        user_agent: str | None = None,
        *,
        reason: str | None = None,
        actor: str | None = None,
    ) -> None:
        if self.events:  # nobody listening costs one truth test
            self.events.emit(Event(kind, at, user, session, address, user_agent, reason, actor))

    def _grant_from(
        self, record: SessionRecord, access: _Access, standing: _Standing, now: float, *, rotated: bool = False
    ) -> Grant:
        # A client still holding the previous token (a parallel request, a lost response) gets the
        # current one again, so it converges instead of tripping reuse detection after the grace.
        set_cookie = self._refresh_cookie(record, now) if rotated or standing is _Standing.GRACE else None
        return Grant(
            user_id=record.user_id,
            username=record.username,
            sid=record.sid,
            access_token=access.token,
            access_expires_at=access.expires_at,
            set_cookie=set_cookie,
            expires_at=record.expires_at,
            idle_expires_at=record.idle_expires_at,
            claims=access.claims,
        )

    def _refresh_cookie(self, record: SessionRecord, now: float) -> str:
        token = self.refresh_codec.encode(
            {
                "sub": record.user_id,
                "sid": record.sid,
                "jti": record.current_jti,
                "iat": int(now),
                "exp": int(record.idle_expires_at),
            }
        )
        max_age = int(record.idle_expires_at - now) if record.remember else None
        return self.cookie.set_cookie(token, max_age=max_age)

    def _forget(self, sid: str) -> None:
        self._generation += 1
        self._states.pop(sid)
        self._grants.drop(sid)
        for aud in self._audiences:
            self._access.pop((sid, aud))

    def _forget_rotated(self, sid: str, jti: str) -> None:
        """A rotation of ``sid`` to ``jti`` was announced. Made by this worker, or already read here: what is
        cached is the rotated row and the token minted on it, so dropping them would only cost a store read
        and a mint. Anyone else's cached row names the superseded token: dropped."""
        if self._rotated_here.get(sid, self.clock()) == jti:
            self._rotated_here.pop(sid)
            return
        cached = self._states.get(sid, self.clock())
        if cached is None or cached.current_jti != jti:
            self._forget(sid)

    def _forget_user(self, user_id: str) -> None:
        for sid in [sid for sid, record in self._states.items() if record.user_id == user_id]:
            self._forget(sid)

    def _forget_all(self) -> None:
        # Through _forget, so every per-session cache (access tokens, grant memos) goes with its row.
        for sid, _ in self._states.items():
            self._forget(sid)
        self._generation += 1


def _standing(record: SessionRecord, jti: str, now: float, grace: float) -> _Standing:
    """Auth0's reuse interval: a token superseded less than ``grace`` ago is still accepted, however many
    rotations ago (two tabs, a request in flight while the other tab refreshed twice); any older token of the
    session is reuse."""
    if jti == record.current_jti:
        return _Standing.CURRENT
    superseded_at = record.superseded_at(jti)
    if superseded_at is not None and now - superseded_at < grace:
        return _Standing.GRACE
    return _Standing.REUSED
