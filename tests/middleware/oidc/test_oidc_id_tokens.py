"""ID-token validation with locally generated keys (the real provider's flow is tested in tests/gateway):
every way an ID token can be wrong, refused with the reason, and the JWKS refetched once on an unknown kid."""

from __future__ import annotations

import base64
import hashlib
import hmac as hmac_lib
import json
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import IdTokenRejected
from frontdesk.middleware.jwks import JwksSource
from frontdesk.middleware.oidc import IdTokenValidator

ISSUER = "https://idp.example.com"
CLIENT = "frontdesk"
SECRET = "the-client-secret-the-attacker-may-know"
NOW = 1_800_000_000.0
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ROTATED_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
    return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "alg": alg, "use": "sig"}


class Jwks:
    """The provider's JWKS endpoint, as an httpx transport: what it publishes can change, fetches are counted."""

    def __init__(self) -> None:
        self.keys = [jwk(RSA_KEY, "rsa-1", "RS256"), jwk(EC_KEY, "ec-1", "ES256")]
        self.fetches = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(200, json={"keys": self.keys})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def published() -> Jwks:
    return Jwks()


@pytest.fixture
def validator(clock: ManualClock, published: Jwks) -> IdTokenValidator:
    source = JwksSource(
        "https://idp.example.com/jwks", clock=clock, transport=httpx.MockTransport(published.handler),
        min_refetch_interval=30,
    )  # fmt: skip
    return IdTokenValidator(issuer=ISSUER, client_id=CLIENT, jwks=source, clock=clock)


def claims(**override: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "sub": "user-1", "aud": CLIENT, "exp": NOW + 300, "iat": NOW - 5, "nonce": "n-1"}
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


def rs256(payload: dict[str, Any], kid: str = "rsa-1", key: Any = RSA_KEY) -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


async def check(
    validator: IdTokenValidator, token: str, nonce: str = "n-1", algs: tuple[str, ...] = ("RS256", "ES256")
):
    return await validator.validate(token, nonce=nonce, algorithms=algs)


async def refused(validator: IdTokenValidator, token: str, why: str, **kwargs: Any) -> None:
    with pytest.raises(IdTokenRejected) as info:
        await check(validator, token, **kwargs)
    assert why in info.value.detail


async def test_a_good_token_of_either_algorithm(validator: IdTokenValidator) -> None:
    assert (await check(validator, rs256(claims())))["sub"] == "user-1"
    es = jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"})
    assert (await check(validator, es))["sub"] == "user-1"
    # A single audience in a list, and azp naming this client, are fine.
    assert await check(validator, rs256(claims(aud=[CLIENT], azp=CLIENT)))


async def test_alg_none_is_refused(validator: IdTokenValidator) -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")
    await refused(validator, unsigned, "'none' is not accepted", algs=("RS256", "none"))


async def test_hmac_with_the_client_secret_is_refused_even_if_announced(validator: IdTokenValidator) -> None:
    forged = jwt.encode(claims(), SECRET, algorithm="HS256", headers={"kid": "rsa-1"})
    await refused(validator, forged, "'HS256' is not accepted", algs=("RS256", "HS256"))


async def test_hmac_with_the_public_key_as_secret_is_refused(validator: IdTokenValidator) -> None:
    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = json.dumps({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}).encode()

    # The classic key-confusion forgery, by hand (pyjwt itself refuses to HMAC with a PEM public key).
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{b64(header)}.{b64(json.dumps(claims()).encode())}"
    signature = hmac_lib.new(pem, signing_input.encode(), hashlib.sha256).digest()
    await refused(validator, f"{signing_input}.{b64(signature)}", "'HS256' is not accepted", algs=("RS256", "HS256"))


async def test_an_algorithm_the_provider_does_not_announce_is_refused(validator: IdTokenValidator) -> None:
    es = jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"})
    await refused(validator, es, "'ES256' is not accepted", algs=("RS256",))


async def test_a_header_that_lies_about_the_keys_algorithm_is_refused(validator: IdTokenValidator) -> None:
    es = jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "rsa-1"})
    await refused(validator, es, "says ES256 but its key is a RS256 key")


async def test_a_signature_by_another_key_is_refused(validator: IdTokenValidator) -> None:
    await refused(validator, rs256(claims(), key=ROTATED_KEY), "signature does not verify")


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"aud": "someone-else"}, "not meant for this client"),
        ({"aud": ["someone-else", CLIENT]}, "another party (azp)"),
        ({"aud": [CLIENT, "other"], "azp": "other"}, "another party (azp)"),
        ({"azp": "other"}, "another party (azp)"),
        ({"iss": "https://evil.example.com"}, "another issuer"),
        ({"exp": NOW - 61}, "expired"),
        ({"iat": NOW + 120}, "in the future"),
        ({"iat": NOW - 700}, "too long ago"),
        ({"nonce": "n-2"}, "nonce does not match"),
        ({"nonce": None}, "nonce does not match"),
        ({"sub": None}, "lacks sub"),
        ({"sub": ""}, "sub is not a usable"),
        ({"exp": "soon"}, "must be numbers"),
    ],
)
async def test_bad_claims_are_refused(validator: IdTokenValidator, override: dict[str, Any], why: str) -> None:
    await refused(validator, rs256(claims(**override)), why)


async def test_garbage_is_refused(validator: IdTokenValidator) -> None:
    for token in ("", "not-a-jwt", "a.b.c", "x" * 20_000):
        await refused(validator, token, "")


async def test_an_unknown_kid_refetches_the_jwks_once_per_interval(
    validator: IdTokenValidator, published: Jwks, clock: ManualClock
) -> None:
    await check(validator, rs256(claims()))
    assert published.fetches == 1
    # The provider rotates in a new key: the first token signed with it triggers one refetch and passes.
    published.keys.append(jwk(ROTATED_KEY, "rsa-2", "RS256"))
    clock.advance(31)
    assert await check(validator, rs256(claims(iat=clock() - 5, exp=clock() + 300), "rsa-2", ROTATED_KEY))
    assert published.fetches == 2
    # Made-up kids right after: refused without another fetch (a flood cannot become a flood of fetches).
    for n in range(5):
        await refused(validator, rs256(claims(iat=clock() - 5, exp=clock() + 300), f"made-up-{n}"), "does not publish")
    assert published.fetches == 2


async def test_a_token_without_kid_needs_an_unambiguous_key(validator: IdTokenValidator) -> None:
    no_kid = jwt.encode(claims(), RSA_KEY, algorithm="RS256")
    assert await check(validator, no_kid)  # the only RS256 key


# Every algorithm family a provider may announce, with a locally generated key each (RSA keys published both
# with and without the optional JWK "alg" member, as providers differ).
ED_KEY = ed25519.Ed25519PrivateKey.generate()
EC_KEYS = {
    "ES256": EC_KEY,
    "ES384": ec.generate_private_key(ec.SECP384R1()),
    "ES512": ec.generate_private_key(ec.SECP521R1()),
}
SAFE_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


def family_key(alg: str) -> Any:
    return RSA_KEY if alg[:2] in ("RS", "PS") else EC_KEYS[alg] if alg.startswith("ES") else ED_KEY


def published_jwk(alg: str, *, name_alg: bool) -> dict[str, Any]:
    public = family_key(alg).public_key()
    if alg == "EdDSA":
        members = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))
    elif alg.startswith("ES"):
        members = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
    else:
        members = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    return {**members, "kid": f"k-{alg}", "use": "sig", **({"alg": alg} if name_alg else {})}


def validator_publishing(clock: ManualClock, *keys: dict[str, Any]) -> IdTokenValidator:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": list(keys)})

    source = JwksSource("https://idp.example.com/jwks", clock=clock, transport=httpx.MockTransport(handler))
    return IdTokenValidator(issuer=ISSUER, client_id=CLIENT, jwks=source, clock=clock)


@pytest.mark.parametrize("name_alg", [True, False], ids=["jwk-alg", "no-jwk-alg"])
@pytest.mark.parametrize("alg", SAFE_ALGORITHMS)
async def test_every_announced_safe_algorithm_is_accepted(clock: ManualClock, alg: str, name_alg: bool) -> None:
    v = validator_publishing(clock, published_jwk(alg, name_alg=name_alg))
    token = jwt.encode(claims(), family_key(alg), algorithm=alg, headers={"kid": f"k-{alg}"})
    assert (await v.validate(token, nonce="n-1", algorithms=[alg]))["sub"] == "user-1"
    # Not announced: refused, although the key could check it.
    with pytest.raises(IdTokenRejected, match="is not accepted"):
        await v.validate(token, nonce="n-1", algorithms=[a for a in SAFE_ALGORITHMS if a != alg])


async def test_a_jwk_that_names_its_alg_pins_the_key_to_it(clock: ManualClock) -> None:
    v = validator_publishing(clock, published_jwk("RS256", name_alg=True))
    token = jwt.encode(claims(), RSA_KEY, algorithm="PS256", headers={"kid": "k-RS256"})
    with pytest.raises(IdTokenRejected, match="says PS256 but its key is a RS256 key"):
        await v.validate(token, nonce="n-1", algorithms=SAFE_ALGORITHMS)


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "none"])
async def test_announced_unsafe_algorithms_stay_refused(clock: ManualClock, alg: str) -> None:
    v = validator_publishing(clock, published_jwk("RS256", name_alg=False))
    key = None if alg == "none" else SECRET * 2  # long enough for HS512: refused for the alg, not the key size
    forged = jwt.encode(claims(), key, algorithm=alg, headers={"kid": "k-RS256"})
    with pytest.raises(IdTokenRejected, match=f"'{alg}' is not accepted"):
        await v.validate(forged, nonce="n-1", algorithms=[*SAFE_ALGORITHMS, alg])
