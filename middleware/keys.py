"""Asymmetric signing keys (EdDSA, ES256, RS256): generate, load from PEM, name by ``kid``, publish as JWKS.
Keys read from someone else's JWKS (an OpenID Provider's) may also be of the wider verification set
(:data:`VERIFY_ALGORITHMS`: RS/PS 256..512, ES256/384/512, EdDSA): frontdesk never signs with those.

A key's ``kid`` is its RFC 7638 JWK thumbprint, so the same public key always gets the same name on every
worker and every machine without any shared state. Keys read from a JWKS document are verification-only and
pinned to the one algorithm their type allows; nothing in a token can add a key or change an algorithm.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .tokens import KeyRing, SigningKey

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "VERIFY_ALGORITHMS",
    "verification_algorithms",
    "PrivateKey",
    "PublicKey",
    "generate_private_key",
    "private_key_pem",
    "load_private_key",
    "algorithm_of",
    "thumbprint",
    "signing_key_from_private",
    "public_jwk",
    "jwks_document",
    "keyring_from_jwks",
]

ASYMMETRIC_ALGORITHMS = ("EdDSA", "ES256", "RS256")  # what frontdesk signs with
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}  # RFC 7518 3.4: one curve each
# What a key from a JWKS may verify. Never ``none`` and never HMAC: a published key is public, so an HMAC
# "signature" keyed with it (or with a client secret) proves nothing.
VERIFY_ALGORITHMS = (*_RSA_ALGORITHMS, *_EC_ALGORITHMS.values(), "EdDSA")
MIN_RSA_BITS = 2048

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def generate_private_key(algorithm: str) -> PrivateKey:
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValueError(f"{algorithm!r} is not one of {', '.join(ASYMMETRIC_ALGORITHMS)}")


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> PrivateKey:
    """An unencrypted PEM private key of a supported type; ValueError in plain words otherwise."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("not an unencrypted PEM private key") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{type(key).__name__} keys are not supported; use Ed25519, EC P-256 or RSA")
    algorithm_of(key.public_key())  # refuses curves and sizes we do not sign with
    return key


def algorithm_of(key: PrivateKey | PublicKey) -> str:
    """The one JWS algorithm a key may be used with (key type decides, never the token)."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"EC curve {key.curve.name} is not supported; ES256 needs P-256")
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA key of {key.key_size} bits is too small; use at least {MIN_RSA_BITS}")
        return "RS256"
    raise ValueError(f"{type(key).__name__} keys are not supported")


def verification_algorithms(public: PublicKey) -> tuple[str, ...]:
    """Every algorithm of :data:`VERIFY_ALGORITHMS` a public key can check (the key type decides): RSA of at
    least 2048 bits the RS and PS families, an EC key the one ES algorithm of its curve, Ed25519 EdDSA.
    ValueError for anything else (small RSA, other curves, Ed448)."""
    if isinstance(public, ed25519.Ed25519PublicKey):
        return ("EdDSA",)
    if isinstance(public, ec.EllipticCurvePublicKey):
        algorithm = _EC_ALGORITHMS.get(public.curve.name)
        if algorithm is None:
            raise ValueError(f"EC curve {public.curve.name} is not supported")
        return (algorithm,)
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA key of {public.key_size} bits is too small; use at least {MIN_RSA_BITS}")
        return _RSA_ALGORITHMS
    raise ValueError(f"{type(public).__name__} keys are not supported")


def _jwk_members(public: PublicKey) -> dict[str, Any]:
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}
    if isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(size, "big")),
            "y": _b64(numbers.y.to_bytes(size, "big")),
        }
    numbers_rsa = public.public_numbers()
    return {"kty": "RSA", "n": _b64(_int_bytes(numbers_rsa.n)), "e": _b64(_int_bytes(numbers_rsa.e))}


def thumbprint(public: PublicKey) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, no whitespace; base64url."""
    canonical = json.dumps(_jwk_members(public), sort_keys=True, separators=(",", ":")).encode()
    return _b64(hashlib.sha256(canonical).digest())


def signing_key_from_private(key: PrivateKey, *, not_after: float | None = None, can_sign: bool = True) -> SigningKey:
    public = key.public_key()
    return SigningKey(
        kid=thumbprint(public),
        algorithm=algorithm_of(public),
        sign_key=key,
        verify_key=public,
        not_after=not_after,
        can_sign=can_sign,
    )


def public_jwk(key: SigningKey) -> dict[str, Any]:
    if key.algorithm not in ASYMMETRIC_ALGORITHMS:
        raise ValueError("only asymmetric keys can be published")
    return {**_jwk_members(key.verify_key), "kid": key.kid, "alg": key.algorithm, "use": "sig"}


def jwks_document(ring: KeyRing, now: float) -> dict[str, Any]:
    """The public half of every asymmetric key still in its window. Shared secrets are never published."""
    return {"keys": [public_jwk(k) for k in ring.active(now) if k.algorithm in ASYMMETRIC_ALGORITHMS]}


def keyring_from_jwks(document: object) -> KeyRing:
    """Verification-only keys from a JWKS document. Entries we cannot use safely are skipped, not trusted:
    no ``kid``, ``use`` other than ``sig``, an ``alg`` that disagrees with the key type, symmetric keys."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no keys list)")
    keys: list[SigningKey] = []
    for entry in document["keys"]:
        key = _verification_key(entry)
        if key is not None:
            keys.append(key)
    return KeyRing(keys)


def _verification_key(entry: object) -> SigningKey | None:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("kid"), str) or not entry["kid"]:
        return None
    if entry.get("use", "sig") != "sig" or entry.get("kty") not in ("OKP", "EC", "RSA"):
        return None
    try:
        public = _public_from_jwk(entry)
        possible = verification_algorithms(public)
    except (ValueError, TypeError, KeyError, jwt.PyJWTError):
        return None
    named = entry.get("alg")
    if named is not None:
        if named not in possible:
            return None  # e.g. an RSA key "for" HS256: the entry contradicts itself
        possible = (named,)  # the entry pins its key to one algorithm
    return SigningKey(
        kid=entry["kid"],
        algorithm=possible[0],
        sign_key=None,
        verify_key=public,
        can_sign=False,
        also_verifies=possible[1:],
    )


def _public_from_jwk(entry: Mapping[str, Any]) -> PublicKey:
    data = json.dumps({k: v for k, v in entry.items() if k in ("kty", "crv", "x", "y", "n", "e")})
    kty = entry["kty"]
    loaded: object
    if kty == "OKP":
        loaded = jwt.algorithms.OKPAlgorithm.from_jwk(data)
    elif kty == "EC":
        loaded = jwt.algorithms.ECAlgorithm.from_jwk(data)
    else:
        loaded = jwt.algorithms.RSAAlgorithm.from_jwk(data)
    if not isinstance(loaded, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise ValueError("a JWKS entry must hold a public key")  # e.g. private members smuggled in
    return loaded


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
