"""PKCE (RFC 7636) with ``S256``, and the random ``state`` and ``nonce`` of one login."""

from __future__ import annotations

import base64
import hashlib
import secrets

__all__ = ["code_challenge", "new_nonce", "new_state", "new_verifier"]


def new_verifier() -> str:
    """43-128 characters of the unreserved set (RFC 7636 section 4.1): 64 random bytes, base64url."""
    return secrets.token_urlsafe(64)


def code_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(verifier))`` without padding: the ``S256`` method."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    return secrets.token_urlsafe(32)


def new_nonce() -> str:
    return secrets.token_urlsafe(32)
