"""Bearer mode, transport-neutral: turn an ``Authorization`` header into a verified user, or an RFC 6750 error.

One verification path for every key source: a :class:`TokenCodec` over a :class:`KeyRing` (shared secret,
local asymmetric keys, or a ring kept filled by a :class:`JwksSource`). The ASGI and WSGI adapters only move
bytes; every decision is made here, so both answer identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from .admission import Admission, Refusal
from .caches import ExpiringCache
from .clock import Clock, system_clock
from .errors import FrontdeskError, InsufficientScope, InvalidToken, NotAuthenticated, SessionRevoked, UnknownKey
from .http import HttpRequest, HttpResponse, error_response
from .jwks import JwksSource
from .opening import OpenOnce
from .paths import PathRules
from .principal import FrontdeskUser
from .store.base import Store
from .tokens import ACCESS_TYP, MAX_TOKEN_LENGTH, KeyRing, TokenCodec

__all__ = [
    "BearerAuth",
    "Pending",
    "PENDING",
    "bearer_challenge",
    "bearer_error_response",
    "parse_authorization",
    "revocation_store",
]

MEMO_SIZE = 8192
_PUBLIC = Admission(None)


@dataclass(frozen=True, slots=True)
class _Verified:
    admission: Admission  # built once per token and handed to each of its requests (read-only by convention)
    deadline: float  # exp + leeway
    kid: str
    sid: str


def _text(authorization: str | bytes | None) -> str | None:
    return authorization.decode("latin-1") if isinstance(authorization, bytes) else authorization


class Pending:
    """The answer needs I/O (a JWKS fetch or a revocation read): call :meth:`BearerAuth.authenticate`."""


PENDING = Pending()
REVOCATION_TTL = 0.5  # how long a "not revoked" answer is believed: bounds logout delay well under 1 s


def parse_authorization(header: str | None) -> str:
    """The token of ``Authorization: Bearer <token>``; :class:`NotAuthenticated` when absent,
    :class:`InvalidToken` when malformed (``Bearer`` alone, two tokens, another scheme, oversized)."""
    if header is None or not header.strip():
        raise NotAuthenticated("missing bearer token")
    if len(header) > MAX_TOKEN_LENGTH + 16:
        raise InvalidToken("malformed authorization header")
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise InvalidToken("authorization must be: Bearer <token>")
    return parts[1]


class BearerAuth:
    """Verify access tokens minted by a frontdesk gateway.

    Give exactly one key source: ``keyring`` (e.g. ``KeyRing.from_secrets(secret)`` or a key directory's
    ring) or ``jwks_url``. ``revocations`` (the gateway's store: its URL such as ``"sqlite:///frontdesk.db"``
    or ``"redis://..."``, or a ``Store``, opened at the first request that needs it) makes a logged-out
    session's tokens fail within ``REVOCATION_TTL`` instead of at their expiry.
    """

    def __init__(
        self,
        *,
        keyring: KeyRing | None = None,
        jwks_url: str | None = None,
        jwks: JwksSource | None = None,
        issuer: str = "frontdesk",
        audience: str | Sequence[str] = "frontdesk-api",
        leeway: float = 5.0,
        revocations: Store | str | None = None,
        public_paths: Iterable[str] = (),
        scopes: Mapping[str, str | Iterable[str]] | None = None,
        jwks_refetch_interval: float = 30.0,
        clock: Clock = system_clock,
        realm: str = "frontdesk",
    ) -> None:
        if jwks_url is not None and jwks is None:
            jwks = JwksSource(jwks_url, min_refetch_interval=jwks_refetch_interval, clock=clock)
        if keyring is not None and jwks is None:
            ring = keyring
        elif keyring is None and jwks is not None:
            ring = jwks.ring  # filled (and refilled) by the JWKS source
        else:
            raise ValueError("give BearerAuth exactly one of keyring= or jwks_url=")
        self.codec = TokenCodec(ring, typ=ACCESS_TYP, issuer=issuer, audience=audience, leeway=leeway, clock=clock)
        self.jwks = jwks
        self.revocations = revocation_store(revocations)
        self.rules = PathRules.build(public_paths, scopes)
        self.clock = clock
        self.realm = realm.replace('"', "")
        self._revoked: ExpiringCache[str, bool] = ExpiringCache(100_000)
        self._opener = OpenOnce(self.revocations)
        self._verified: dict[str | bytes, _Verified] = {}

    def authenticate_now(self, path: str, authorization: str | bytes | None) -> FrontdeskUser | Pending | None:
        """:meth:`authenticate` without awaiting: the user, None on a public path, or :data:`PENDING` when the
        answer needs a JWKS fetch or a store read. Raises a :class:`FrontdeskError` like :meth:`authenticate`.

        This runs on every request of an upstream. A header seen before is answered from a small memo of
        verified results (the user object, the token's deadline, its key and session), re-checking only what
        can change: the clock against ``exp`` plus leeway, the key still being in the ring, and revocation.
        """
        result = self._admission_now(path, authorization)
        return result if isinstance(result, Pending) else result.user

    def _admission_now(self, path: str, authorization: str | bytes | None) -> Admission | Pending:
        """:meth:`authenticate_now` as the pipeline's answer: the token's one :class:`Admission` (kept in the
        memo with the verified result, so a request builds none), :data:`_PUBLIC` on a public path."""
        rules = self.rules
        if rules.public and rules.is_public(path):
            return _PUBLIC
        if authorization is not None:
            hit = self._verified.get(authorization)
            if hit is not None:
                now = self.clock()
                if now <= hit.deadline and self.codec.keyring.verifies(hit.kid, now):
                    if self.revocations is not None:
                        revoked = self._revoked.get(hit.sid, now)
                        if revoked is None:
                            return PENDING
                        if revoked:
                            raise SessionRevoked("the session of this token has been logged out or revoked")
                    if rules.scopes:  # tested here: no call at all for an app without scoped paths
                        self._check_scopes(path, hit.admission.user)
                    return hit.admission
                self._verified.pop(authorization, None)  # the full path below gives the precise error
        token = parse_authorization(_text(authorization))
        if self.jwks is None:
            claims = self.codec.decode(token)
        elif self.jwks.is_stale(self.clock()):
            return PENDING
        else:
            try:
                claims = self.codec.decode(token)
            except UnknownKey:
                return PENDING
        if self.revocations is not None:
            revoked = self._revoked.get(claims["sid"], self.clock())
            if revoked is None:
                return PENDING
            if revoked:
                raise SessionRevoked("the session of this token has been logged out or revoked")
        return self._remember(path, authorization, token, claims)

    async def authenticate(self, path: str, authorization: str | bytes | None) -> FrontdeskUser | None:
        """The verified user, None on a public path; raises a :class:`FrontdeskError` otherwise."""
        return (await self._admission(path, authorization)).user

    async def _admission(self, path: str, authorization: str | bytes | None) -> Admission:
        result = self._admission_now(path, authorization)
        if not isinstance(result, Pending):
            return result
        token = parse_authorization(_text(authorization))
        claims = await self.verify(token)
        if self.revocations is not None:
            sid = claims["sid"]
            revoked = self._revoked.get(sid, self.clock())
            if revoked is None:
                revoked = await self._read_revocation(sid)
            if revoked:
                raise SessionRevoked("the session of this token has been logged out or revoked")
        return self._remember(path, authorization, token, claims)

    def _remember(
        self, path: str, authorization: str | bytes | None, token: str, claims: dict[str, Any]
    ) -> Admission:
        admission = Admission(FrontdeskUser(claims))
        kid = jwt.get_unverified_header(token).get("kid")  # verified already: the codec looked it up
        if authorization is not None and isinstance(kid, str):
            if len(self._verified) >= MEMO_SIZE:
                self._verified.clear()  # crude but O(1) amortised; a full memo is refilled by the next requests
            deadline = float(claims["exp"]) + self.codec.leeway
            self._verified[authorization] = _Verified(admission, deadline, kid, str(claims["sid"]))
        self._check_scopes(path, admission.user)
        return admission

    def _check_scopes(self, path: str, user: FrontdeskUser | None) -> None:
        rules = self.rules
        if rules.scopes and user is not None:
            missing = rules.required_scopes(path) - user.scopes
            if missing:
                raise InsufficientScope(f"this path requires scope {' '.join(sorted(missing))}")

    async def verify(self, token: str) -> dict[str, Any]:
        """Verified claims of an access token (signature, type, issuer, audience, times); no revocation check."""
        return self.codec.decode(token) if self.jwks is None else await self._verify_with_jwks(token)

    async def _verify_with_jwks(self, token: str) -> dict[str, Any]:
        jwks = self.jwks
        assert jwks is not None
        if jwks.is_stale(self.clock()):
            await jwks.refresh(reason="key set is stale")
        try:
            return self.codec.decode(token)
        except UnknownKey:
            # A new key at the gateway: refetch (rate-limited inside) and try once more. Retry even when this
            # call did not fetch: a concurrent request may just have loaded the key.
            await jwks.refresh(reason="unknown kid")
            return self.codec.decode(token)

    async def _read_revocation(self, sid: str) -> bool:
        store = self.revocations
        assert store is not None
        await self._opener.ensure()
        revoked = await store.is_revoked(sid)
        now = self.clock()
        # A revocation is final: remember it until the cache evicts it; a "no" only briefly.
        self._revoked.set(sid, revoked, now + (3600.0 if revoked else REVOCATION_TTL), now)
        return revoked

    async def admit(self, request: HttpRequest) -> Admission | Refusal:
        """The :class:`~frontdesk.middleware.admission.AuthBackend` face of bearer mode: the verified user, or a refusal
        carrying the RFC 6750 challenge. Servers join repeated Authorization headers with a comma, which
        the parser refuses as malformed."""
        path, authorization = request.path, request.headers.get("authorization")
        try:
            result = self._admission_now(path, authorization)  # no I/O in the common case: no await either
            if isinstance(result, Pending):
                result = await self._admission(path, authorization)
        except FrontdeskError as exc:
            return self.refusal(exc)
        return result

    def refusal(self, exc: FrontdeskError) -> Refusal:
        challenge = bearer_challenge(exc, realm=self.realm)
        return Refusal(exc) if challenge is None else Refusal(exc, (("www-authenticate", challenge),))


def revocation_store(value: object) -> Store | None:
    """A store URL or a ``Store``; anything else is refused now rather than as a 500 on every request.

    The backends load only when a URL asks for one, so bearer mode without revocations needs no store driver.
    """
    if value is None or isinstance(value, Store):
        return value
    if isinstance(value, str):
        from .store import store_from_url  # the backends load only when a URL asks for one

        try:
            return store_from_url(value)
        except ValueError as exc:
            raise ValueError(f"revocations={value!r}: {exc}") from None
    raise TypeError(
        "revocations must be a store URL such as 'sqlite:///path/frontdesk.db' or 'redis://host:6379/0' "
        f"(the gateway's store), or a Store; got {type(value).__name__}"
    )


def bearer_challenge(exc: FrontdeskError, *, realm: str = "frontdesk") -> str | None:
    """The RFC 6750 ``WWW-Authenticate`` value for a refusal; None for one that is not about the token (a 503)."""
    detail = exc.detail.replace('"', "'")
    if isinstance(exc, InsufficientScope):
        return f'Bearer realm="{realm}", error="insufficient_scope", error_description="{detail}"'
    if exc.status != 401:
        return None
    if type(exc) is NotAuthenticated:
        # No credentials at all: RFC 6750 section 3.1 says no error code in the challenge.
        return f'Bearer realm="{realm}"'
    return f'Bearer realm="{realm}", error="invalid_token", error_description="{detail}"'


def bearer_error_response(exc: FrontdeskError, *, realm: str = "frontdesk") -> HttpResponse:
    """JSON ``{"error", "detail"}`` plus the RFC 6750 challenge. Details are fixed strings, never the token."""
    challenge = bearer_challenge(exc, realm=realm)
    return error_response(exc, [] if challenge is None else [("www-authenticate", challenge)])
