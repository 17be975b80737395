"""The README's ``[[oidc]]`` examples (Keycloak and a generic provider): each loads and validates as it stands,
and the generic one, pointed at the real test provider, signs a user in."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from live_gateway import GatewayProcess
from oidc_flow import sign_in

from frontdesk.gateway.config import load_config
from tests.support.oidc_provider import OidcProvider

README = Path(__file__).resolve().parents[2] / "README.md"
ENV = {"FRONTDESK_ACCESS_SECRET": "a" * 32, "FRONTDESK_REFRESH_SECRET": "b" * 32, "FRONTDESK_OIDC_TOKEN_KEY": "k" * 32}


def example(title: str) -> str:
    found = re.search(
        rf"```toml\n(# frontdesk OIDC example: {re.escape(title)}\n.*?)```", README.read_text(), re.DOTALL
    )
    assert found, f"the README lost its {title} [[oidc]] example"
    return found.group(1)


@pytest.mark.parametrize("title", ["Keycloak", "generic provider"])
def test_each_example_loads_as_it_stands(tmp_path: Path, title: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(example(title))
    config = load_config(path, env={**ENV, "FRONTDESK_OIDC_CORP_CLIENT_SECRET": "the-secret-from-the-provider"})
    (corp,) = config.oidc
    assert corp.name == "corp" and corp.client_id == "frontdesk"
    assert corp.issuer.startswith("https://") and "openid" in corp.scopes


@pytest.mark.slow
def test_the_generic_example_signs_in_at_a_real_provider(
    gateway_factory: Callable[..., GatewayProcess], gateway_secrets: dict[str, str], oidc_provider: OidcProvider
) -> None:
    gw = gateway_factory("oidc-readme", start=False, env={**gateway_secrets, **oidc_provider.secret_env("corp")})
    text = example("generic provider")
    assert text.count('issuer = "https://login.example.com"') == 1
    with gw.config_path.open("a") as config:
        config.write("\n" + text.replace("https://login.example.com", oidc_provider.issuer))
    gw.start()
    with gw.client() as client:
        assert sign_in(client, "alice").status_code == 302  # alice@example.com
        assert client.session().json()["user"] == {"id": "oidc:corp:alice", "username": "alice"}
        refused = sign_in(client, "bob")  # bob@elsewhere.test: outside allowed_email_domains
        assert refused.status_code == 403 and refused.json()["error"] == "access_denied"
