"""JWT access and refresh tokens: minting and strict verification over an injected clock.

Verification never trusts the token to say how it should be checked: the key is looked up by ``kid`` in
our own key ring, the algorithm is pinned per key, the ``typ`` header must match, and ``iss``/``aud`` are
compared with configuration. Time claims are checked against the injected clock (not pyjwt's own), so the
whole module stays pure and testable.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from .clock import Clock, system_clock
from .errors import ExpiredToken, InvalidToken, UnknownKey

__all__ = [
    "ACCESS_TYP",
    "REFRESH_TYP",
    "SigningKey",
    "KeyRing",
    "TokenCodec",
    "new_token_id",
]

ACCESS_TYP = "at+jwt"  # RFC 9068
REFRESH_TYP = "rt+jwt"
MAX_TOKEN_LENGTH = 8192  # refuse before parsing: nothing we mint comes near this
_REQUIRED = ("sub", "sid", "jti", "iat", "exp", "iss", "aud")


def new_token_id() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key of a ring. For HMAC, ``sign_key`` and ``verify_key`` are the same secret."""

    kid: str
    algorithm: str
    sign_key: Any
    verify_key: Any
    not_after: float | None = None  # verification stops after this instant (end of a rotation overlap)
    can_sign: bool = True
    # Further algorithms a verification-only key may check: an RSA key from a JWKS entry that names no ``alg``
    # verifies RS256..RS512 and PS256..PS512 alike (RFC 7517 leaves ``alg`` optional). Empty: ``algorithm`` only.
    also_verifies: tuple[str, ...] = ()

    def verifies(self, algorithm: str) -> bool:
        """Whether a signature made with ``algorithm`` may be checked with this key."""
        return algorithm == self.algorithm or algorithm in self.also_verifies

    @classmethod
    def from_secret(cls, secret: str | bytes, *, algorithm: str = "HS256", can_sign: bool = True) -> SigningKey:
        raw = secret.encode() if isinstance(secret, str) else secret
        # The kid names the secret without revealing it: a hash prefix, domain-separated.
        kid = "hs-" + hashlib.sha256(b"frontdesk-kid\x00" + raw).hexdigest()[:16]
        return cls(kid=kid, algorithm=algorithm, sign_key=raw, verify_key=raw, can_sign=can_sign)


@dataclass(slots=True)
class KeyRing:
    """Keys by ``kid``: sign with the newest signing key, verify with every key still in its window."""

    keys: list[SigningKey] = field(default_factory=list)

    @classmethod
    def from_secrets(cls, current: str | bytes, previous: Iterable[str | bytes] = ()) -> KeyRing:
        ring = [SigningKey.from_secret(current)]
        ring += [SigningKey.from_secret(p, can_sign=False) for p in previous]
        return cls(ring)

    def signing_key(self) -> SigningKey:
        for key in self.keys:
            if key.can_sign:
                return key
        raise InvalidToken("no signing key configured")

    def lookup(self, kid: object, now: float) -> SigningKey:
        if isinstance(kid, str):
            for key in self.keys:
                if key.kid == kid:
                    if key.not_after is not None and now > key.not_after:
                        raise InvalidToken("token signed with a retired key")
                    return key
        raise UnknownKey("token signed with an unknown key")

    def verifies(self, kid: str, now: float) -> bool:
        """Whether ``kid`` is still in the ring and inside its window: :meth:`lookup` as a yes/no, for the
        per-request re-check of a token verified before (no exception to raise and catch)."""
        for key in self.keys:
            if key.kid == kid:
                return key.not_after is None or now <= key.not_after
        return False

    def active(self, now: float) -> list[SigningKey]:
        """Every key still inside its verification window (what a JWKS document may publish)."""
        return [k for k in self.keys if k.not_after is None or now <= k.not_after]


class TokenCodec:
    """Mints and verifies one kind of token (access or refresh): one ``typ``, one key ring.

    A small cache remembers tokens already verified (token string -> claims), so a browser that sends the
    same cookie on every request pays for the signature once; expiry is still checked on each use.
    """

    def __init__(
        self,
        keyring: KeyRing,
        *,
        typ: str,
        issuer: str,
        audience: str | Sequence[str],
        leeway: float = 5.0,
        clock: Clock = system_clock,
        cache_size: int = 4096,
    ) -> None:
        self.keyring = keyring
        self.typ = typ
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.clock = clock
        self._cache: OrderedDict[tuple[str, str | None], tuple[dict[str, Any], str]] = OrderedDict()
        self._cache_size = cache_size

    def encode(self, claims: Mapping[str, Any]) -> str:
        key = self.keyring.signing_key()
        payload = {"iss": self.issuer, **claims}
        if "aud" not in payload:
            payload["aud"] = self.audience if isinstance(self.audience, str) else self.audience[0]
        return jwt.encode(payload, key.sign_key, algorithm=key.algorithm, headers={"typ": self.typ, "kid": key.kid})

    def decode(self, token: str, *, audience: str | None = None) -> dict[str, Any]:
        """Verified claims (treat as read-only), or :class:`InvalidToken` / :class:`ExpiredToken`."""
        now = self.clock()
        cache_key = (token, audience)
        hit = self._cache.get(cache_key)
        if hit is None:
            claims, kid = self._verify(token, audience, now)
            self._cache[cache_key] = (claims, kid)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            claims, kid = hit
            self._cache.move_to_end(cache_key)
            # A key retired since the token was cached must stop working too.
            self.keyring.lookup(kid, now)
        self._check_times(claims, now)
        return claims

    def _verify(self, token: str, audience: str | None, now: float) -> tuple[dict[str, Any], str]:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() != self.typ:
            raise InvalidToken("wrong token type")
        key = self.keyring.lookup(header.get("kid"), now)
        # The key decides which algorithms it checks (one, or a provider's RSA family); the header only picks
        # among those.
        alg = header.get("alg")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.verify_key,
                algorithms=[alg if isinstance(alg, str) and key.verifies(alg) else key.algorithm],
                audience=audience or self.audience,
                issuer=self.issuer,
                options={
                    # Times are checked below against the injected clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": list(_REQUIRED),
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(_describe(exc)) from exc
        for name in ("exp", "iat"):
            if not isinstance(claims.get(name), int | float) or isinstance(claims.get(name), bool):
                raise InvalidToken(f"claim {name} is not a number")
        for name in ("sub", "sid", "jti"):
            if not isinstance(claims.get(name), str) or not claims[name]:
                raise InvalidToken(f"claim {name} is not a string")
        return claims, key.kid

    def _check_times(self, claims: Mapping[str, Any], now: float) -> None:
        if now > claims["exp"] + self.leeway:
            raise ExpiredToken("token expired")
        if claims["iat"] > now + self.leeway:
            raise ExpiredToken("token issued in the future")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + self.leeway:
            raise ExpiredToken("token not yet valid")


def _describe(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim {exc.claim}"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "algorithm not allowed"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad signature"
    return "malformed token"
