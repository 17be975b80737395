"""Token minting and strict verification (pure, over a manual clock)."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import ExpiredToken, InvalidToken
from frontdesk.middleware.tokens import ACCESS_TYP, REFRESH_TYP, KeyRing, SigningKey, TokenCodec

ACCESS_SECRET = "a" * 40
REFRESH_SECRET = "r" * 40


def claims(clock: ManualClock, **extra: object) -> dict[str, object]:
    now = int(clock())
    return {"sub": "u1", "sid": "s1", "jti": "j1", "iat": now, "exp": now + 60, **extra}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def access(clock: ManualClock) -> TokenCodec:
    return TokenCodec(
        KeyRing.from_secrets(ACCESS_SECRET), typ=ACCESS_TYP, issuer="fd", audience="api", leeway=5, clock=clock
    )


@pytest.fixture
def refresh(clock: ManualClock) -> TokenCodec:
    return TokenCodec(
        KeyRing.from_secrets(REFRESH_SECRET), typ=REFRESH_TYP, issuer="fd", audience="fd", leeway=5, clock=clock
    )


def test_round_trip_sets_type_kid_issuer_audience(access: TokenCodec, clock: ManualClock) -> None:
    token = access.encode(claims(clock))
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["alg"] == "HS256" and header["kid"].startswith("hs-")
    decoded = access.decode(token)
    assert decoded["sub"] == "u1" and decoded["iss"] == "fd" and decoded["aud"] == "api"


def test_access_and_refresh_are_never_accepted_as_each_other(
    access: TokenCodec, refresh: TokenCodec, clock: ManualClock
) -> None:
    with pytest.raises(InvalidToken):
        refresh.decode(access.encode(claims(clock)))
    with pytest.raises(InvalidToken):
        access.decode(refresh.encode(claims(clock)))


def test_same_type_signed_with_the_other_secret_is_refused(clock: ManualClock, access: TokenCodec) -> None:
    forged = TokenCodec(
        KeyRing(
            [
                SigningKey(
                    kid=access.keyring.signing_key().kid, algorithm="HS256", sign_key=b"r" * 40, verify_key=b"r" * 40
                )
            ]
        ),
        typ=ACCESS_TYP,
        issuer="fd",
        audience="api",
        clock=clock,
    )
    with pytest.raises(InvalidToken, match="signature"):
        access.decode(forged.encode(claims(clock)))


def test_expiry_with_leeway(access: TokenCodec, clock: ManualClock) -> None:
    token = access.encode(claims(clock))
    clock.advance(64)
    assert access.decode(token)["sub"] == "u1"  # inside exp + leeway, and served from the cache
    clock.advance(2)
    with pytest.raises(ExpiredToken):
        access.decode(token)


def test_not_yet_valid_and_future_iat(access: TokenCodec, clock: ManualClock) -> None:
    with pytest.raises(ExpiredToken, match="not yet valid"):
        access.decode(access.encode(claims(clock, nbf=int(clock()) + 30)))
    with pytest.raises(ExpiredToken, match="future"):
        access.decode(access.encode(claims(clock, iat=int(clock()) + 30)))


@pytest.mark.parametrize("missing", ["sub", "sid", "jti", "iat", "exp"])
def test_required_claims(access: TokenCodec, clock: ManualClock, missing: str) -> None:
    body = claims(clock)
    del body[missing]
    with pytest.raises(InvalidToken):
        access.decode(access.encode(body))


def test_wrong_issuer_and_audience(access: TokenCodec, clock: ManualClock) -> None:
    with pytest.raises(InvalidToken, match="audience"):
        access.decode(access.encode(claims(clock, aud="other")))
    with pytest.raises(InvalidToken, match="issuer"):
        access.decode(access.encode(claims(clock, iss="evil")))
    token = access.encode(claims(clock, aud="orders"))
    assert access.decode(token, audience="orders")["aud"] == "orders"
    with pytest.raises(InvalidToken):
        access.decode(token)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused(access: TokenCodec, clock: ManualClock) -> None:
    kid = access.keyring.signing_key().kid
    token = (
        _b64({"alg": "none", "typ": "at+jwt", "kid": kid})
        + "."
        + _b64({**claims(clock), "iss": "fd", "aud": "api"})
        + "."
    )
    with pytest.raises(InvalidToken):
        access.decode(token)


def test_unknown_kid_and_missing_kid(access: TokenCodec, clock: ManualClock) -> None:
    body = {**claims(clock), "iss": "fd", "aud": "api"}
    with pytest.raises(InvalidToken, match="unknown key"):
        access.decode(jwt.encode(body, ACCESS_SECRET, headers={"typ": "at+jwt", "kid": "nope"}))
    with pytest.raises(InvalidToken, match="unknown key"):
        access.decode(jwt.encode(body, ACCESS_SECRET, headers={"typ": "at+jwt"}))


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "Bearer", "." * 5, "x" * 10_000, "é.é.é"])
def test_garbage_is_invalid_not_a_crash(access: TokenCodec, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        access.decode(garbage)


def test_previous_secret_verifies_but_never_signs(clock: ManualClock) -> None:
    old = TokenCodec(KeyRing.from_secrets("o" * 40), typ=ACCESS_TYP, issuer="fd", audience="api", clock=clock)
    new = TokenCodec(
        KeyRing.from_secrets("n" * 40, previous=["o" * 40]),
        typ=ACCESS_TYP,
        issuer="fd",
        audience="api",
        clock=clock,
    )
    old_token = old.encode(claims(clock))
    assert new.decode(old_token)["sub"] == "u1"
    assert jwt.get_unverified_header(new.encode(claims(clock)))["kid"] == new.keyring.keys[0].kid


def test_retired_key_stops_working_even_when_cached(clock: ManualClock) -> None:
    key = SigningKey.from_secret("k" * 40)
    ring = KeyRing([key])
    codec = TokenCodec(ring, typ=ACCESS_TYP, issuer="fd", audience="api", clock=clock)
    token = codec.encode(claims(clock))
    codec.decode(token)
    ring.keys[0] = SigningKey(key.kid, key.algorithm, key.sign_key, key.verify_key, not_after=clock() + 1)
    clock.advance(2)
    with pytest.raises(InvalidToken, match="retired"):
        codec.decode(token)
