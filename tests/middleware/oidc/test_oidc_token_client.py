"""``private_key_jwt`` client authentication (RFC 7523) with a locally generated key: what the token endpoint
receives (the real provider checks it in tests/gateway/test_oidc_private_key_jwt.py)."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import jwt
import pytest

from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.keys import generate_private_key, thumbprint
from frontdesk.middleware.oidc.token_client import ASSERTION_TYPE, TokenClient

ISSUER = "https://idp.example.com"


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "RS256"])
async def test_every_request_carries_a_fresh_signed_assertion_and_no_secret(algorithm: str) -> None:
    key = generate_private_key(algorithm)
    forms: list[dict[str, list[str]]] = []

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        forms.append(parse_qs(request.content.decode()))
        assert "authorization" not in request.headers
        return httpx.Response(200, json={"access_token": "at"})

    clock = ManualClock(1_800_000_000)
    async with httpx.AsyncClient(transport=httpx.MockTransport(token_endpoint)) as http:
        client = TokenClient(
            client_id="frontdesk", client_secret="", auth_method="private_key_jwt", http=http,
            private_key=key, issuer=ISSUER, clock=clock,
        )  # fmt: skip
        await client.refresh(f"{ISSUER}/token", refresh_token="rt")
        await client.refresh(f"{ISSUER}/token", refresh_token="rt")
    jtis = set()
    for form in forms:
        assert form["client_id"] == ["frontdesk"] and form["client_assertion_type"] == [ASSERTION_TYPE]
        assert "client_secret" not in form
        (assertion,) = form["client_assertion"]
        header = jwt.get_unverified_header(assertion)
        assert header["alg"] == algorithm and header["kid"] == thumbprint(key.public_key())
        claims = jwt.decode(
            assertion,
            key.public_key(),
            algorithms=[algorithm],
            audience=ISSUER,
            options={"verify_exp": False, "verify_iat": False},
        )
        assert claims["iss"] == claims["sub"] == "frontdesk"
        assert claims["iat"] == 1_800_000_000 and claims["exp"] == claims["iat"] + 60
        jtis.add(claims["jti"])
    assert len(jtis) == 2  # single use: a new one per request


def test_private_key_jwt_without_a_key_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="private key"):
        TokenClient(client_id="c", client_secret="", auth_method="private_key_jwt", http=httpx.AsyncClient())
