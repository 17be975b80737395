"""``token_endpoint_auth_method = "private_key_jwt"`` against a real OpenID Provider (npm oidc-provider): the
gateway authenticates at the token endpoint with a JWT signed by its own private key (no client secret
anywhere), and a key the provider does not know is refused like a wrong secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from live_gateway import GatewayProcess
from oidc_flow import provider_table, sign_in

from frontdesk.gateway.secret_files import create_private
from frontdesk.middleware.keys import generate_private_key, private_key_pem, public_jwk, signing_key_from_private
from tests.support.oidc_provider import TEST_TOKEN_KEY, OidcClient, loopback_uris, running_provider

pytestmark = pytest.mark.slow


def key_file(directory: Path, name: str, algorithm: str) -> tuple[Path, dict[str, object]]:
    key = generate_private_key(algorithm)
    path = directory / name
    create_private(path, private_key_pem(key).decode())
    return path, public_jwk(signing_key_from_private(key))


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_sign_in_with_private_key_jwt_client_authentication(
    gateway_factory: Callable[..., GatewayProcess],
    gateway_secrets: dict[str, str],
    tmp_path: Path,
    algorithm: str,
) -> None:
    registered, public = key_file(tmp_path, "client-key.pem", algorithm)
    unknown, _ = key_file(tmp_path, "unknown-key.pem", algorithm)
    client = OidcClient(
        client_id="frontdesk-jwt",
        auth_method="private_key_jwt",
        redirect_uris=loopback_uris("/auth/oidc/jwt/callback") + loopback_uris("/auth/oidc/impostor/callback"),
        post_logout_redirect_uris=loopback_uris("/"),
        jwks=(public,),
    )
    with running_provider(tmp_path, clients=[client]) as provider:
        method = {"token_endpoint_auth_method": "private_key_jwt"}
        gw = gateway_factory(
            f"oidc-pkjwt-{algorithm.lower()}",
            env={**gateway_secrets, "FRONTDESK_OIDC_TOKEN_KEY": TEST_TOKEN_KEY},  # no client secret at all
            oidc=[
                provider_table(provider, "jwt", "frontdesk-jwt", private_key_file=str(registered), **method),
                provider_table(provider, "impostor", "frontdesk-jwt", private_key_file=str(unknown), **method),
            ],
        )
        before = provider.counts()["grants"].get("authorization_code", 0)
        with gw.client() as browser:
            done = sign_in(browser, "alice", name="jwt")
            assert done.status_code == 302, done.text
            assert browser.session().json()["user"] == {"id": "oidc:jwt:alice", "username": "alice"}
            assert provider.counts()["grants"]["authorization_code"] == before + 1
            assert browser.logout().status_code == 200  # the revocation authenticates the same way
        with gw.client() as browser:
            refused = sign_in(browser, "alice", name="impostor")
            assert refused.status_code == 400 and refused.json()["error"] == "provider_refused", refused.text
            assert "invalid_client" in refused.json()["detail"]
        assert "PRIVATE KEY" not in gw.log()
