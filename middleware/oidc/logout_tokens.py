"""Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0, section 2.6), validated strictly.

The provider POSTs a ``logout_token`` to the relying party when a user's session there ends (the admin's
"sign out everywhere", the user's logout at the provider). It is a JWT signed like the provider's ID tokens and
checked like one (the same JWKS cache, the same refusal of ``none`` and HMAC), plus what makes it a logout token:
the back-channel ``events`` member, a ``sid`` or a ``sub``, no ``nonce`` (so an ID token can never pass as one),
a ``jti``, and an ``iat`` no older than :attr:`LogoutTokenValidator.max_age`. Whether the ``jti`` was seen
before is the caller's to decide with the store (every worker and instance must agree); :meth:`replay_window`
says how long to remember it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import BadLogoutToken, IdTokenRejected
from .id_tokens import IdTokenValidator, _is_number

__all__ = ["BACKCHANNEL_LOGOUT_EVENT", "LogoutRequest", "LogoutTokenValidator"]

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
MAX_LOGOUT_TOKEN_LENGTH = 8 * 1024


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """Whom a valid logout token logs out: the provider's session ``sid`` and/or its user ``sub``."""

    jti: str
    iat: float
    sid: str | None
    sub: str | None


class LogoutTokenValidator:
    """Checks one provider's logout tokens for this client, with that provider's :class:`IdTokenValidator`
    (its issuer, client id, JWKS and clock). ``max_age``: how old ``iat`` may be; a logout token is sent the
    moment the session ends, so an old one is a replay that outlived the ``jti`` memory."""

    def __init__(self, id_tokens: IdTokenValidator, *, max_age: float = 120.0, leeway: float = 30.0) -> None:
        self.id_tokens = id_tokens
        self.max_age = max_age
        self.leeway = leeway

    @property
    def replay_window(self) -> float:
        """How long after its ``iat`` a token's ``jti`` must be remembered: after that it is refused as too old."""
        return self.max_age + 2 * self.leeway

    async def validate(self, token: object, *, algorithms: Iterable[str]) -> LogoutRequest:
        """Whom ``token`` logs out; :class:`BadLogoutToken` saying why otherwise. ``algorithms``: the provider's
        ``id_token_signing_alg_values_supported`` (logout tokens are signed as its ID tokens are)."""
        if not isinstance(token, str) or not token or len(token) > MAX_LOGOUT_TOKEN_LENGTH:
            raise BadLogoutToken("no usable logout_token")
        try:
            claims = await self.id_tokens.signed_claims(token, algorithms=algorithms, noun="the logout_token")
        except IdTokenRejected as exc:
            raise BadLogoutToken(exc.detail) from None  # the same checks as an ID token's, answered as a 400
        return self._check_claims(claims)

    def _check_claims(self, claims: Mapping[str, Any]) -> LogoutRequest:
        v = self.id_tokens
        if claims.get("iss") != v.issuer:
            raise BadLogoutToken("the logout_token was issued by another issuer")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or v.client_id not in audiences:
            raise BadLogoutToken("the logout_token is not meant for this client (aud)")
        if "nonce" in claims:
            raise BadLogoutToken("a logout_token must not have a nonce (is this an ID token?)")
        events = claims.get("events")
        if not isinstance(events, Mapping) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), Mapping):
            raise BadLogoutToken(f"the logout_token's events lack {BACKCHANNEL_LOGOUT_EVENT}")
        sid, sub = claims.get("sid"), claims.get("sub")
        if sid is None and sub is None:
            raise BadLogoutToken("the logout_token names neither a sid nor a sub")
        for name, value in (("sid", sid), ("sub", sub)):
            if value is not None and (not isinstance(value, str) or not value or len(value) > 255):
                raise BadLogoutToken(f"the logout_token's {name} is not a usable identifier")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 255:
            raise BadLogoutToken("the logout_token has no usable jti")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not _is_number(iat) or (exp is not None and not _is_number(exp)):
            raise BadLogoutToken("the logout_token's iat (and exp) must be numbers")
        assert isinstance(iat, int | float)  # for the type checker: _is_number said so
        now = v.clock()
        if iat > now + self.leeway:
            raise BadLogoutToken("the logout_token was issued in the future (check the clocks)")
        if now - iat > self.max_age + self.leeway:
            raise BadLogoutToken("the logout_token was issued too long ago")
        if exp is not None and now > exp + self.leeway:
            raise BadLogoutToken("the logout_token has expired")
        return LogoutRequest(jti=jti, iat=float(iat), sid=sid, sub=sub)

