"""The test OpenID Provider itself (tests/oidc/provider.mjs + tests/support/oidc_provider.py): a plain
authorization-code + PKCE round trip by hand, with no frontdesk code involved, so a failure here points at the
harness and not at the gateway."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from tests.support.oidc_provider import OidcProvider, provider_login

pytestmark = pytest.mark.slow

REDIRECT = "http://127.0.0.1:1234/auth/oidc/corp/callback"  # never requested: provider_login stops before it


def _authorize(provider: OidcProvider, client_id: str, verifier: str, state: str, nonce: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT if client_id == "frontdesk" else REDIRECT.replace("corp", "partner"),
        "scope": "openid profile email groups offline_access",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{provider.metadata()['authorization_endpoint']}?{urlencode(query)}"


def test_code_flow_by_hand_gives_signed_id_token_and_refresh_token(oidc_provider: OidcProvider) -> None:
    verifier, state, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    back = provider_login(_authorize(oidc_provider, "frontdesk", verifier, state, nonce), "alice")
    params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    assert back.startswith(REDIRECT)
    assert params["state"] == state
    assert params["iss"] == oidc_provider.issuer  # RFC 9207

    meta = oidc_provider.metadata()
    client = oidc_provider.client("frontdesk")
    before = oidc_provider.counts()["grants"].get("authorization_code", 0)
    tokens = httpx.post(
        meta["token_endpoint"],
        data={"grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT,
              "code_verifier": verifier},
        auth=(client.client_id, client.client_secret),
    ).json()  # fmt: skip
    assert {"access_token", "id_token", "refresh_token"} <= tokens.keys(), tokens
    assert oidc_provider.counts()["grants"]["authorization_code"] == before + 1

    jwks = jwt.PyJWKClient(meta["jwks_uri"])
    key = jwks.get_signing_key_from_jwt(tokens["id_token"])
    claims = jwt.decode(
        tokens["id_token"], key.key, algorithms=meta["id_token_signing_alg_values_supported"],
        audience="frontdesk", issuer=oidc_provider.issuer,
    )  # fmt: skip
    assert claims["sub"] == "alice"
    assert claims["nonce"] == nonce
    assert claims["preferred_username"] == "alice"
    assert claims["groups"] == ["staff"]
    assert claims["email"] == "alice@example.com"


def test_client_secret_post_client(oidc_provider: OidcProvider) -> None:
    verifier = secrets.token_urlsafe(48)
    back = provider_login(_authorize(oidc_provider, "frontdesk-post", verifier, "s", "n"), "bob")
    code = parse_qs(urlsplit(back).query)["code"][0]
    client = oidc_provider.client("frontdesk-post")
    answer = httpx.post(
        oidc_provider.metadata()["token_endpoint"],
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
              "redirect_uri": REDIRECT.replace("corp", "partner"),
              "client_id": client.client_id, "client_secret": client.client_secret},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
