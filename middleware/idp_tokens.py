"""An identity provider's tokens for one frontdesk session, sealed for the store (AES-256-GCM).

The gateway is the IdP's confidential client: the browser never sees the IdP's access, refresh or ID token.
They live in the session store next to the session, and a store dump (a backup, a Redis replica, a copied
SQLite file) must not hand them out, so they are encrypted with keys that live only in the environment.

Keys are a list like itsdangerous's: seal with the newest, open with any of them, so a key is replaced by
adding a new one and dropping the old one once every session sealed with it has ended or been re-sealed (each
IdP refresh re-seals with the newest key). Each key is a secret string of at least 32 bytes; the AES key is
derived from it with HKDF, so ``frontdesk keygen``'s secrets work as they are.

The frontdesk session id is the associated data: a sealed blob copied onto another session's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["IdpTokens", "TokenSealer", "UnsealableTokens", "MIN_KEY_BYTES"]

MIN_KEY_BYTES = 32
_VERSION = "v1"
_NONCE_BYTES = 12  # GCM's standard nonce; random per seal (at most a few seals per session per hour)
_KID_BYTES = 4


class UnsealableTokens(Exception):
    """A sealed blob that none of the keys opens (a key was dropped too early) or that was tampered with."""


@dataclass(frozen=True, slots=True)
class IdpTokens:
    """What the IdP's token endpoint answered, as frontdesk keeps it."""

    access_token: str
    expires_at: float  # when the access token expires (epoch seconds); 0 when the IdP did not say
    refresh_token: str | None = None
    id_token: str | None = None  # the last ID token: the ``id_token_hint`` of RP-initiated logout
    subject: str = ""  # the IdP's ``sub``
    idp_sid: str | None = None  # the IdP's session id (the ID token's ``sid``), for back-channel logout
    obtained_at: float = 0.0  # when the IdP answered: with ``expires_at``, the access token's lifetime
    claims: Mapping[str, Any] = field(default_factory=dict)  # the ID-token claims ``/auth/session`` may show

    @property
    def lifetime(self) -> float:
        return max(self.expires_at - self.obtained_at, 0.0)


@dataclass(frozen=True, slots=True)
class _Key:
    kid: bytes
    aead: AESGCM


def _derive(secret: str) -> _Key:
    raw = secret.encode()
    if len(raw) < MIN_KEY_BYTES:
        raise ValueError(f"an IdP token key must be at least {MIN_KEY_BYTES} bytes long")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"frontdesk idp tokens v1").derive(raw)
    # Names the key without revealing it, so opening tries the right key first instead of all of them.
    kid = hashlib.sha256(b"frontdesk-idp-kid\x00" + key).digest()[:_KID_BYTES]
    return _Key(kid=kid, aead=AESGCM(key))


class TokenSealer:
    """Seals :class:`IdpTokens` with the newest of ``keys`` (the last), opens with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one IdP token key is needed")
        self._keys = [_derive(secret) for secret in keys]
        self._newest = self._keys[-1]

    def seal(self, tokens: IdpTokens, *, sid: str) -> str:
        return self.seal_bytes(json.dumps(asdict(tokens), separators=(",", ":")).encode(), context=sid)

    def open(self, blob: str, *, sid: str) -> IdpTokens:
        return IdpTokens(**json.loads(self.open_bytes(blob, context=sid)))

    def seal_bytes(self, plain: bytes, *, context: str) -> str:
        """``plain`` encrypted with the newest key, bound to ``context`` (it opens only with the same one)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._newest.aead.encrypt(nonce, plain, context.encode())
        return f"{_VERSION}.{_b64(self._newest.kid + nonce + sealed)}"

    def open_bytes(self, blob: str, *, context: str) -> bytes:
        version, _, body = blob.partition(".")
        if version != _VERSION:
            raise UnsealableTokens(f"unknown sealed-token format {version!r}")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise UnsealableTokens("sealed tokens are not base64") from None
        kid, rest = raw[:_KID_BYTES], raw[_KID_BYTES:]
        nonce, sealed = rest[:_NONCE_BYTES], rest[_NONCE_BYTES:]
        for key in sorted(self._keys, key=lambda k: k.kid != kid):  # the named key first
            try:
                return key.aead.decrypt(nonce, sealed, context.encode())
            except (InvalidTag, ValueError):
                continue
        raise UnsealableTokens("no configured IdP token key opens these tokens (or they were altered)")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
