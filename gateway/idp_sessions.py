"""The identity provider's tokens of sessions started at an ``[[oidc]]`` provider: kept sealed in the store with
the session, handed to ``token = "idp"`` routes (refreshed at the provider before they expire, one refresh per
session across every worker), revoked at logout, and the sessions they belong to ended by back-channel logout.

- :meth:`IdpSessions.session_started` is the login's :class:`~frontdesk.gateway.oidc_login.SessionStarted` hook.
- :class:`IdpTokenSource` is what the proxy asks for tokens: frontdesk's own, or for a ``token = "idp"`` route
  (audience :data:`IDP_AUDIENCE`) the provider's access token of the same session.
- Single flight: within a worker a per-session lock; across workers a lease in the store. The worker holding
  the lease refreshes and compare-and-sets the sealed tokens; the others wait for the sealed tokens to change.
  The provider rotates its refresh token on use, so two refreshes with one token would end the grant.
- ``invalid_grant`` from the provider ends the frontdesk session (the engine's revoke: events, audit, every
  worker within the usual revocation delay) and the request answers 401 like any ended session.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode

from frontdesk.middleware.admission import GrantLike
from frontdesk.middleware.caches import ExpiringCache, KeyedLocks
from frontdesk.middleware.clock import Clock, system_clock
from frontdesk.middleware.errors import (
    BadLogoutToken,
    BadRequest,
    FrontdeskError,
    NotAuthenticated,
    ProviderRefused,
    ProviderUnavailable,
    SessionRevoked,
)
from frontdesk.middleware.http import HttpRequest, HttpResponse, error_response
from frontdesk.middleware.idp_tokens import IdpTokens, TokenSealer, UnsealableTokens
from frontdesk.middleware.oidc import RelyingParty
from frontdesk.middleware.oidc.logout_tokens import LogoutTokenValidator
from frontdesk.middleware.sessions import SessionEngine
from frontdesk.middleware.store import IdpTokenRecord

from .oidc_login import OIDC_PREFIX
from .proxy.routes import IDP_AUDIENCE

__all__ = ["IDP_AUDIENCE", "IdpSessions", "IdpTokenSource"]

log = logging.getLogger("frontdesk.oidc")

REFRESH_MARGIN = 30.0  # refresh when less than this is left (a quarter of a shorter lifetime)
END_SESSION_TICKET_TTL = 300.0  # how long the sign-out link a logout answered leads to the provider
LEASE = 10.0  # how long one worker may take to refresh before another may try (the HTTP timeout is 10 s)
WAIT_STEP = 0.02  # how often a worker waiting for another's refresh looks at the store
# Revoking a refresh token at the provider is best effort and must not hold a logout up: the logout's own answer
# waits at most LOGOUT_REVOKE_WAIT for it (usually done by then), and no revocation runs longer than REVOKE_TIMEOUT.
LOGOUT_REVOKE_WAIT = 2.0
REVOKE_TIMEOUT = 15.0
_NO_STORE = ("cache-control", "no-store")


class IdpSessions:
    def __init__(
        self,
        engine: SessionEngine,
        parties: Mapping[str, RelyingParty],
        sealer: TokenSealer,
        *,
        session_claims: Mapping[str, tuple[str, ...]] | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.parties = dict(parties)
        self.sealer = sealer
        self.session_claims = dict(session_claims or {})  # per provider: the claims /auth/session shows
        self.clock = clock
        self._tokens: ExpiringCache[str, tuple[str, IdpTokens]] = ExpiringCache(10_000)  # sid -> (sealed, opened)
        self._locks: KeyedLocks[str] = KeyedLocks()
        self.refreshes = 0  # refreshes this worker did at a provider (tests and the measurements read it)
        self._revoking: set[asyncio.Task[None]] = set()  # revocations at providers still running

    # --- login -------------------------------------------------------------------------------------

    async def session_started(
        self, *, sid: str, provider: RelyingParty, token_response: Mapping[str, Any], claims: Mapping[str, Any]
    ) -> None:
        """Keep the provider's tokens with the new session (the login's ``SessionStarted`` hook)."""
        now = self.clock()
        session = await self.store.get_session(sid)
        if session is None:
            raise NotAuthenticated("the new session is gone")
        shown = self.session_claims.get(provider.name, ())
        idp_sid = claims.get("sid")
        tokens = _from_response(
            token_response,
            now,
            subject=str(claims["sub"]),
            idp_sid=idp_sid if isinstance(idp_sid, str) else None,
            claims={name: claims[name] for name in shown if name in claims},
        )
        record = IdpTokenRecord(
            sid=sid,
            provider=provider.name,
            subject=tokens.subject,
            idp_sid=tokens.idp_sid,
            sealed=self.sealer.seal(tokens, sid=sid),
            expires_at=session.expires_at,
        )
        await self.store.save_idp_tokens(record)

    # --- what a session may show and what its routes receive ---------------------------------------

    async def claims(self, sid: str) -> dict[str, Any] | None:
        """The claims ``/auth/session`` shows for ``sid`` (never a token), or None for a password session."""
        found = await self._current(sid)
        return None if found is None else dict(found[1].claims)

    async def access_token(self, sid: str) -> str:
        """The provider's access token for session ``sid``, refreshed first when it is about to expire."""
        now = self.clock()
        cached = self._tokens.get(sid, now)
        if cached is not None and _fresh(cached[1], now):
            return cached[1].access_token
        async with self._locks.hold(sid):  # one refresh per session in this worker; the store's lease for all
            found = await self._current(sid)
            if found is None:
                raise NotAuthenticated("this route needs a session signed in at an identity provider")
            record, tokens = found
            if _fresh(tokens, self.clock()):
                return tokens.access_token
            return (await self._refresh(record, tokens)).access_token

    async def _current(self, sid: str) -> tuple[IdpTokenRecord, IdpTokens] | None:
        record = await self.store.get_idp_tokens(sid)
        if record is None:
            return None
        try:
            tokens = self.sealer.open(record.sealed, sid=sid)
        except UnsealableTokens as exc:
            log.error("IdP tokens of session %s cannot be opened (%s): was a token key dropped too early?", sid, exc)
            return None
        self._remember(record.sealed, tokens, sid)
        return record, tokens

    def _remember(self, sealed: str, tokens: IdpTokens, sid: str) -> None:
        now = self.clock()
        self._tokens.set(sid, (sealed, tokens), tokens.expires_at - _margin(tokens), now)

    async def _refresh(self, record: IdpTokenRecord, tokens: IdpTokens) -> IdpTokens:
        sid = record.sid
        holder = secrets.token_urlsafe(12)
        deadline = time.monotonic() + LEASE
        while True:
            now = self.clock()
            if await self.store.lease_idp_refresh(sid, holder=holder, now=now, until=now + LEASE):
                # Read again under the lease: another worker may have refreshed (and let go of its lease) since
                # this one read the tokens, and refreshing with a used refresh token is a reuse that makes the
                # provider answer invalid_grant (and may end the whole grant).
                found = await self._current(sid)
                if found is None:
                    await self.store.release_idp_refresh(sid, holder=holder)
                    raise SessionRevoked("the session has ended")
                if found[0].sealed != record.sealed:
                    await self.store.release_idp_refresh(sid, holder=holder)
                    return found[1]
                return await self._refresh_holding(record, tokens, holder)
            # Another worker is refreshing: its result lands in the store.
            await asyncio.sleep(WAIT_STEP)
            found = await self._current(sid)
            if found is None:
                raise SessionRevoked("the session has ended")
            if found[0].sealed != record.sealed:
                return found[1]
            if time.monotonic() > deadline:
                raise ProviderUnavailable("the identity provider's refresh did not finish in time")

    async def _refresh_holding(self, record: IdpTokenRecord, tokens: IdpTokens, holder: str) -> IdpTokens:
        sid = record.sid
        party = self.parties.get(record.provider)
        if party is None or tokens.refresh_token is None:
            await self.store.release_idp_refresh(sid, holder=holder)
            if self.clock() < tokens.expires_at:
                return tokens  # nothing to refresh with: the token serves until it expires
            await self._end(sid, "the identity provider's access token expired and cannot be refreshed")
        assert party is not None and tokens.refresh_token is not None  # _end raised otherwise
        try:
            meta = await party.metadata()
            answer = await party.tokens.refresh(meta.token_endpoint, refresh_token=tokens.refresh_token)
        except ProviderRefused as exc:
            await self.store.release_idp_refresh(sid, holder=holder)
            if exc.error == "invalid_grant":
                await self._end(sid, "the identity provider refused to refresh (invalid_grant)")
            raise
        except BaseException:
            await self.store.release_idp_refresh(sid, holder=holder)
            raise
        self.refreshes += 1
        fresh = _from_response(answer, self.clock(), previous=tokens)
        sealed = self.sealer.seal(fresh, sid=sid)
        if not await self.store.replace_idp_tokens(sid, expected=record.sealed, sealed=sealed):
            raise SessionRevoked("the session ended while its identity provider tokens were refreshed")
        self._remember(sealed, fresh, sid)
        return fresh

    async def _end(self, sid: str, reason: str) -> None:
        self._tokens.pop(sid)
        await self.engine.revoke(sid, reason=reason)
        raise SessionRevoked(reason)

    # --- logout --------------------------------------------------------------------------------------

    async def logged_out(self, sid: str, origin: str) -> str | None:
        """Before session ``sid`` ends at ``POST /auth/logout``: revoke its refresh token at the provider (when it
        has a revocation endpoint) and return where the browser goes for RP-initiated logout, if the provider
        has an ``end_session_endpoint``: this gateway's ``{name}/end-session`` with a sealed ticket, which
        redirects there with ``id_token_hint``, ``post_logout_redirect_uri`` and ``state``. The ID token never
        appears in an answer the SPA's script can read: only in that top-level redirect to the provider."""
        found = await self._current(sid)
        self._tokens.pop(sid)
        if found is None:
            return None
        record, tokens = found
        party = self.parties.get(record.provider)
        if party is None:
            return None
        try:
            meta = await party.metadata()
        except FrontdeskError as exc:
            log.warning("logout: %s's metadata unavailable (%s); the IdP session stays", record.provider, exc.detail)
            return None
        if tokens.refresh_token:
            revoking = self._revoke_in_background(party, tokens.refresh_token)
            # Usually done well before this; a slow provider finishes (or times out) after the answer.
            await asyncio.wait({revoking}, timeout=LOGOUT_REVOKE_WAIT)
        if not meta.end_session_endpoint:
            return None
        query = {
            "client_id": party.config.client_id,
            "post_logout_redirect_uri": f"{origin}/",
            "state": secrets.token_urlsafe(16),
        }
        if tokens.id_token:
            query["id_token_hint"] = tokens.id_token
        separator = "&" if "?" in meta.end_session_endpoint else "?"
        target = f"{meta.end_session_endpoint}{separator}{urlencode(query)}"
        ticket = json.dumps({"url": target, "exp": self.clock() + END_SESSION_TICKET_TTL}).encode()
        sealed = self.sealer.seal_bytes(ticket, context=f"end-session:{party.name}")
        return f"{OIDC_PREFIX}/{party.name}/end-session?{urlencode({'ticket': sealed})}"

    async def others_logged_out(self, sids: Sequence[str]) -> None:
        """Before "logout everywhere" ends the caller's other sessions ``sids`` (the AuthAPI's
        ``on_logout_everywhere``): revoke each one's refresh token at its provider. The tokens are read now (the
        sessions' end deletes them); the revocations run in the background, each bounded by
        :data:`REVOKE_TIMEOUT`, so the logout's answer never waits on a slow provider."""
        for sid in sids:
            found = await self._current(sid)
            self._tokens.pop(sid)
            if found is None:
                continue  # a password session, or one without tokens left
            record, tokens = found
            party = self.parties.get(record.provider)
            if party is not None and tokens.refresh_token:
                self._revoke_in_background(party, tokens.refresh_token)

    def _revoke_in_background(self, party: RelyingParty, refresh_token: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._revoke(party, refresh_token))
        self._revoking.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(self._revoking.discard)
        return task

    async def _revoke(self, party: RelyingParty, refresh_token: str) -> None:
        """Revoke ``refresh_token`` at ``party`` when it has a revocation endpoint; failures are logged, never
        raised (a logout must not depend on the provider answering)."""
        try:
            async with asyncio.timeout(REVOKE_TIMEOUT):
                meta = await party.metadata()
                if meta.revocation_endpoint:
                    await party.tokens.revoke(meta.revocation_endpoint, token=refresh_token)
        except FrontdeskError as exc:
            log.warning("logout: %s did not revoke a refresh token: %s", party.name, exc.detail)
        except TimeoutError:
            log.warning("logout: %s did not answer the revocation within %g s", party.name, REVOKE_TIMEOUT)

    async def aclose(self) -> None:
        """At shutdown, before the providers' HTTP clients close: give the revocations still running at most
        :data:`LOGOUT_REVOKE_WAIT` more (a stop must not hang on a slow provider), then cancel what is left."""
        running = set(self._revoking)
        if running:
            _, late = await asyncio.wait(running, timeout=LOGOUT_REVOKE_WAIT)
            for task in late:
                task.cancel()
            if late:
                log.warning("shutdown: %d revocation(s) at a provider did not finish", len(late))
                await asyncio.wait(late)

    async def end_session(self, request: HttpRequest, provider: RelyingParty) -> HttpResponse:
        """``GET /auth/oidc/{name}/end-session?ticket=...``: the top-level redirect to the provider's end-session
        endpoint that a logout answered. The ticket is sealed (only this gateway made it, for this provider) and
        lasts :data:`END_SESSION_TICKET_TTL`; it holds nothing that signs anyone in. No CSRF check: a GET that
        changes nothing here, whose worst use is signing someone out at the provider (which asks to confirm)."""
        params = parse_qs(request.query.decode("ascii", "replace"), max_num_fields=4)
        try:
            (ticket,) = params.get("ticket", [])
            data = json.loads(self.sealer.open_bytes(ticket, context=f"end-session:{provider.name}"))
            if not self.clock() < float(data["exp"]):
                raise ValueError("expired")
            target = str(data["url"])
        except (ValueError, KeyError, TypeError, UnsealableTokens):
            return error_response(BadRequest("this sign-out link is not valid (or too old); you are signed out here"))
        return HttpResponse(302, [("location", target), _NO_STORE, ("content-length", "0")])

    # --- back-channel logout -------------------------------------------------------------------------

    async def backchannel(self, request: HttpRequest, provider: RelyingParty) -> HttpResponse:
        """``POST /auth/oidc/{name}/backchannel``: the provider says a user's session there ended; every frontdesk
        session logged in through it ends (all workers, all instances sharing the store: the usual revocation).

        No CSRF check and no Origin rule: the caller is the provider's server, not a browser, and the signed,
        single-use logout token is the request's whole authority (a browser cannot forge one)."""
        party = provider
        try:
            token = _form_field(request, "logout_token")
            validator = LogoutTokenValidator(await party.id_token_validator())
            meta = await party.metadata()
            logout = await validator.validate(token, algorithms=meta.id_token_signing_alg_values_supported)
            now = self.clock()
            until = logout.iat + validator.replay_window
            if not await self.store.remember_logout_token(party.name, logout.jti, now=now, until=until):
                raise BadLogoutToken("this logout_token was used before (its jti is known)")
            sids = await self.store.find_idp_sessions(party.name, now=now, idp_sid=logout.sid, subject=logout.sub)
        except FrontdeskError as exc:
            log.info("back-channel logout from %s refused: %s", party.name, exc.detail)
            return error_response(exc, [_NO_STORE])
        for sid in sids:
            self._tokens.pop(sid)
            await self.engine.revoke(sid, reason=f"back-channel logout from {party.name}", actor=party.name)
        log.info("back-channel logout from %s ended %d session(s)", party.name, len(sids))
        return HttpResponse(200, [_NO_STORE, ("content-length", "0")])


class IdpTokenSource:
    """The engine as the proxy sees it, with ``token = "idp"`` routes (audience :data:`IDP_AUDIENCE`) handed the
    provider's access token of the same session instead of frontdesk's own."""

    def __init__(self, engine: SessionEngine, idp: IdpSessions) -> None:
        self.engine = engine
        self.idp = idp

    @property
    def cookie_name(self) -> str:
        return self.engine.cookie_name

    async def is_active(self, sid: str) -> bool:
        return await self.engine.is_active(sid)

    def remembered(self, cookie_header: str | None, *, audience: str | None = None) -> GrantLike | None:
        # The provider's token may need a refresh (a wait): those routes always ask grant().
        return None if audience == IDP_AUDIENCE else self.engine.remembered(cookie_header, audience=audience)

    async def grant(
        self, cookie_header: str | None, *, audience: str | None = None, force_new: bool = False
    ) -> GrantLike:
        if audience != IDP_AUDIENCE:
            return await self.engine.grant(cookie_header, audience=audience, force_new=force_new)
        # The session is checked (and its refresh cookie rotated) exactly as for any route first.
        grant = await self.engine.grant(cookie_header, force_new=force_new)
        return dataclasses.replace(grant, access_token=await self.idp.access_token(grant.sid))


def _margin(tokens: IdpTokens) -> float:
    return min(REFRESH_MARGIN, tokens.lifetime / 4)


def _fresh(tokens: IdpTokens, now: float) -> bool:
    return tokens.expires_at - now > _margin(tokens)


def _from_response(
    answer: Mapping[str, Any],
    now: float,
    *,
    previous: IdpTokens | None = None,
    subject: str = "",
    idp_sid: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> IdpTokens:
    """What to keep of a token response; a refresh answer keeps what it does not renew (the refresh token when
    the provider does not rotate it, the last ID token, who the user is)."""
    expires_in = answer.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else 300.0

    def text(name: str, kept: str | None) -> str | None:
        value = answer.get(name)
        return value if isinstance(value, str) and value else kept

    return IdpTokens(
        access_token=str(answer["access_token"]),
        expires_at=now + lifetime,
        refresh_token=text("refresh_token", previous.refresh_token if previous else None),
        id_token=text("id_token", previous.id_token if previous else None),
        subject=previous.subject if previous else subject,
        idp_sid=previous.idp_sid if previous else idp_sid,
        obtained_at=now,
        claims=dict(previous.claims) if previous else dict(claims or {}),
    )


def _form_field(request: HttpRequest, name: str) -> str:
    """One field of an ``application/x-www-form-urlencoded`` body, present exactly once."""
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadLogoutToken("send the logout_token as application/x-www-form-urlencoded")
    try:
        fields = parse_qs(request.body.decode("ascii"), max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise BadLogoutToken("the form is not readable") from None
    values = fields.get(name, [])
    if len(values) != 1:
        raise BadLogoutToken(f"the form must have exactly one {name}")
    return values[0]
