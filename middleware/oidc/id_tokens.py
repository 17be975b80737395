"""ID token validation (OpenID Connect Core 1.0 section 3.1.3.7), strict and over an injected clock.

The token never says how it is checked: the algorithm must be one the provider announces *and* one frontdesk
verifies with asymmetric keys (RS/PS 256..512, ES256/384/512, EdDSA; ``none`` and every HMAC algorithm are
refused outright, so the client secret, which an attacker might know or guess, can never sign an ID token,
and a public key can never be used as an HMAC secret); the key comes from the provider's JWKS by ``kid`` and
its type (or the JWK's own ``alg``) limits the algorithms it verifies.
Then ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat`` and ``nonce``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any

import jwt

from ..clock import Clock, system_clock
from ..errors import IdTokenRejected, InvalidToken, UnknownKey
from ..jwks import JwksSource
from ..keys import VERIFY_ALGORITHMS
from ..tokens import SigningKey

__all__ = ["IdTokenValidator", "MAX_ID_TOKEN_LENGTH"]

MAX_ID_TOKEN_LENGTH = 16 * 1024  # refuse before parsing; real ID tokens are a few KB
_REQUIRED = ("iss", "sub", "aud", "exp", "iat")


class IdTokenValidator:
    """Validates the ID tokens of one provider for one client. ``max_age`` bounds how old ``iat`` may be (a
    login's token is minted seconds before the callback; an old one is a replay)."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        jwks: JwksSource,
        leeway: float = 60.0,
        max_age: float = 600.0,
        clock: Clock = system_clock,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.jwks = jwks
        self.leeway = leeway
        self.max_age = max_age
        self.clock = clock

    async def validate(self, token: str, *, nonce: str, algorithms: Iterable[str]) -> dict[str, Any]:
        """The token's claims; :class:`IdTokenRejected` saying why otherwise. ``algorithms``: the provider's
        ``id_token_signing_alg_values_supported``."""
        if not isinstance(token, str) or not token or len(token) > MAX_ID_TOKEN_LENGTH:
            raise IdTokenRejected("the provider sent no usable ID token")
        claims = await self.signed_claims(token, algorithms=algorithms, noun="the ID token")
        self._check_claims(claims, nonce)
        return claims

    async def signed_claims(self, token: str, *, algorithms: Iterable[str], noun: str) -> dict[str, Any]:
        """The claims of a JWT the provider signed (an ID token, or a back-channel logout token, which is signed
        as its ID tokens are), signature checked and nothing else: :class:`IdTokenRejected` naming ``noun``.
        ``algorithms``: the provider's ``id_token_signing_alg_values_supported``; none or HMAC never pass."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise IdTokenRejected(f"{noun} is not a signed JWT") from exc
        alg = header.get("alg")
        allowed = set(algorithms) & set(VERIFY_ALGORITHMS)
        if not isinstance(alg, str) or alg not in allowed:
            raise IdTokenRejected(f"{noun}'s algorithm {alg!r} is not accepted (accepted: {sorted(allowed)})")
        key = await self._key(header.get("kid"), alg, noun)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.verify_key,
                algorithms=[alg],  # one the key verifies (checked in _key)
                # Times and audience are the caller's to check, against the injected clock (and azp for ID tokens).
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise IdTokenRejected(f"{noun}'s signature does not verify") from exc
        return claims

    async def _key(self, kid: object, alg: str, noun: str) -> SigningKey:
        now = self.clock()
        if self.jwks.is_stale(now):
            await self.jwks.refresh(reason="first use or stale")
        key = self._find(kid, alg, now)
        if key is None:
            # A key the provider rotated in since the last fetch: look again, at most once per interval.
            await self.jwks.refresh(reason=f"unknown kid in {noun}")
            key = self._find(kid, alg, now)
        if key is None:
            raise IdTokenRejected(f"{noun} is signed with a key the provider does not publish")
        if not key.verifies(alg):
            raise IdTokenRejected(f"{noun} says {alg} but its key is a {key.algorithm} key")
        return key

    def _find(self, kid: object, alg: str, now: float) -> SigningKey | None:
        ring = self.jwks.ring
        if kid is None:
            # No kid (allowed when the provider has one key per algorithm): only an unambiguous match.
            matching = [k for k in ring.active(now) if k.verifies(alg)]
            return matching[0] if len(matching) == 1 else None
        try:
            return ring.lookup(kid, now)
        except (UnknownKey, InvalidToken):
            return None

    def _check_claims(self, claims: Mapping[str, Any], nonce: str) -> None:
        missing = [name for name in _REQUIRED if name not in claims]
        if missing:
            raise IdTokenRejected(f"the ID token lacks {', '.join(missing)}")
        if claims["iss"] != self.issuer:
            raise IdTokenRejected("the ID token was issued by another issuer")
        audience = claims["aud"]
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or self.client_id not in audiences:
            raise IdTokenRejected("the ID token is not meant for this client (aud)")
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.client_id:
            raise IdTokenRejected("the ID token was issued to another party (azp)")
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            raise IdTokenRejected("the ID token's sub is not a usable identifier")
        exp, iat = claims["exp"], claims["iat"]
        if not _is_number(exp) or not _is_number(iat):
            raise IdTokenRejected("the ID token's exp and iat must be numbers")
        now = self.clock()
        if now > exp + self.leeway:
            raise IdTokenRejected("the ID token has expired")
        if iat > now + self.leeway:
            raise IdTokenRejected("the ID token was issued in the future (check the clocks)")
        if now - iat > self.max_age + self.leeway:
            raise IdTokenRejected("the ID token was issued too long ago")
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise IdTokenRejected("the ID token's nonce does not match this login")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
