"""``[[oidc]]`` providers and ``[login] password``: parsed into settings, every problem reported at once, the
client secret only ever from the environment or .env."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from frontdesk.gateway.config import load_config
from frontdesk.gateway.errors import ConfigError
from frontdesk.gateway.secret_files import create_private
from frontdesk.middleware.keys import generate_private_key, private_key_pem

ENV = {"FRONTDESK_ACCESS_SECRET": "a" * 32, "FRONTDESK_REFRESH_SECRET": "b" * 32, "FRONTDESK_OIDC_TOKEN_KEY": "k" * 32}
CORP = """
[[oidc]]
name = "corp"
issuer = "https://idp.example.com/realms/corp"
client_id = "frontdesk"
scopes = ["openid", "profile", "email", "offline_access"]
username_claim = "preferred_username"
allowed_groups = ["staff"]
allowed_email_domains = ["example.com"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def problems(path: Path, env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    return info.value.problems


def test_a_provider_with_its_secret_from_the_environment(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CORP), env={**ENV, "FRONTDESK_OIDC_CORP_CLIENT_SECRET": "s" * 40})
    (corp,) = config.oidc
    assert corp.name == "corp"
    assert corp.issuer == "https://idp.example.com/realms/corp"
    assert corp.client_id == "frontdesk" and corp.client_secret == "s" * 40
    assert corp.scopes == ("openid", "profile", "email", "offline_access")
    assert corp.allowed_groups == ("staff",) and corp.allowed_email_domains == ("example.com",)
    assert corp.token_endpoint_auth_method == "client_secret_basic"
    assert "s" * 40 not in repr(corp)  # never in a log line or a traceback
    assert config.password_login is True


def test_defaults_and_the_secret_from_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FRONTDESK_OIDC_HOME_IDP_CLIENT_SECRET=from-dotenv-secret\n")
    text = '[[oidc]]\nname = "home-idp"\nissuer = "https://login.example.org"\nclient_id = "fd"\n'
    config = load_config(write(tmp_path, text), env=ENV)
    (home,) = config.oidc
    assert home.client_secret == "from-dotenv-secret"
    assert home.scopes == ("openid", "profile", "email")
    assert home.username_claim == "preferred_username"
    assert home.allowed_groups == () and home.allowed_email_domains == ()


def test_two_providers_and_password_login_switched_off(tmp_path: Path) -> None:
    text = CORP + '[[oidc]]\nname = "partner"\nissuer = "https://partner.example.net"\nclient_id = "fd"\n'
    text += 'token_endpoint_auth_method = "client_secret_post"\n[login]\npassword = false\n'
    env = {**ENV, "FRONTDESK_OIDC_CORP_CLIENT_SECRET": "x" * 20, "FRONTDESK_OIDC_PARTNER_CLIENT_SECRET": "y" * 20}
    config = load_config(write(tmp_path, text), env=env)
    assert [p.name for p in config.oidc] == ["corp", "partner"]
    assert config.oidc[1].token_endpoint_auth_method == "client_secret_post"
    assert config.password_login is False


def test_every_problem_at_once(tmp_path: Path) -> None:
    text = """
[login]
password = "no"

[[oidc]]
name = "Corp IdP"
issuer = "http://idp.example.com/realms/corp"
client_id = ""
client_secret = "in-the-file"
scopes = ["profile"]
username_claim = 7
allowed_groups = "staff"
token_endpoint_auth_method = "client_secret_jwt"
colour = "blue"

[[oidc]]
name = "dup"
issuer = "https://idp.example.com/?x=1"
client_id = "a"

[[oidc]]
name = "dup"
issuer = "not a url"
client_id = "b"
"""
    found = problems(write(tmp_path, text), ENV)
    text_of = "\n".join(found)
    assert "login.password" in text_of
    assert "oidc[1].name" in text_of and "lower-case" in text_of
    assert "oidc[1].issuer" in text_of and "https" in text_of
    assert "oidc[1].client_id" in text_of
    assert "oidc[1].client_secret" in text_of and "FRONTDESK_OIDC_" in text_of  # never from the file
    assert "oidc[1].scopes" in text_of and "openid" in text_of
    assert "oidc[1].username_claim" in text_of
    assert "oidc[1].allowed_groups" in text_of
    assert "oidc[1].token_endpoint_auth_method" in text_of
    assert "oidc[1].colour: unknown key" in text_of
    assert "oidc[2].issuer" in text_of and "query" in text_of
    assert "oidc[3].name" in text_of and "dup" in text_of and "more than once" in text_of
    assert "oidc[3].issuer" in text_of
    assert "FRONTDESK_OIDC_DUP_CLIENT_SECRET is not set" in text_of
    assert "in-the-file" not in text_of


def test_http_issuers_only_on_loopback_or_when_allowed(tmp_path: Path) -> None:
    env = {**ENV, "FRONTDESK_OIDC_LOCAL_CLIENT_SECRET": "z" * 20}
    for issuer in ("http://127.0.0.1:8080", "http://localhost:9000/realms/dev", "http://[::1]:8080"):
        text = f'[[oidc]]\nname = "local"\nissuer = "{issuer}"\nclient_id = "fd"\n'
        assert load_config(write(tmp_path, text), env=env).oidc[0].issuer == issuer
    text = '[[oidc]]\nname = "local"\nissuer = "http://keycloak:8080/realms/dev"\nclient_id = "fd"\n'
    assert any("https" in p for p in problems(write(tmp_path, text), env))
    text += "allow_http = true\n"
    assert load_config(write(tmp_path, text), env=env).oidc[0].issuer == "http://keycloak:8080/realms/dev"


def test_password_login_off_needs_a_provider(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "[login]\npassword = false\n"), ENV)
    assert any("login.password" in p and "[[oidc]]" in p for p in found)


def test_private_key_jwt_needs_a_key_file_and_no_secret(tmp_path: Path) -> None:
    create_private(tmp_path / "client-key.pem", private_key_pem(generate_private_key("ES256")).decode())
    jwt_corp = CORP + 'token_endpoint_auth_method = "private_key_jwt"\nprivate_key_file = "client-key.pem"\n'
    (corp,) = load_config(write(tmp_path, jwt_corp), env=ENV).oidc  # relative to the config's directory
    assert corp.token_endpoint_auth_method == "private_key_jwt" and corp.private_key is not None
    assert corp.client_secret == "" and "PRIVATE" not in repr(corp) and "private_key=" not in repr(corp)

    (tmp_path / "not-a-key.pem").write_text("hello")
    method = 'token_endpoint_auth_method = "private_key_jwt"\n'
    cases = {
        method: "private_key_file is missing",
        method + 'private_key_file = "nowhere.pem"\n': "cannot be read",
        method + 'private_key_file = "not-a-key.pem"\n': "not an unencrypted PEM",
        'private_key_file = "client-key.pem"\n': 'only used with token_endpoint_auth_method = "private_key_jwt"',
    }
    for extra, why in cases.items():
        found = problems(write(tmp_path, CORP + extra), {**ENV, "FRONTDESK_OIDC_CORP_CLIENT_SECRET": "s" * 40})
        assert any(why in p for p in found), (extra, found)


JWT_CORP = CORP + 'token_endpoint_auth_method = "private_key_jwt"\nprivate_key_file = "client-key.pem"\n'


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o606])
def test_a_private_key_file_others_can_access_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "client-key.pem"
    create_private(key, private_key_pem(generate_private_key("EdDSA")).decode())
    key.chmod(mode)
    text = JWT_CORP + '[server]\nport = "eighty"\n'  # a second, unrelated problem: both are reported at once
    found = problems(write(tmp_path, text), ENV)
    (loose,) = [p for p in found if "private_key_file" in p]
    assert loose == (
        f"oidc[1].private_key_file {str(key.resolve())!r} holds a private key but other users can access it"
        f" (mode {mode:04o}); make it private to the user frontdesk runs as: chmod 600 {key.resolve()}"
    )
    assert any(p.startswith("server.port") for p in found), found
    assert stat.S_IMODE(key.stat().st_mode) == mode  # reported, never changed behind the operator's back


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_key_file_only_its_owner_can_access_is_accepted(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "client-key.pem"
    create_private(key, private_key_pem(generate_private_key("EdDSA")).decode())
    key.chmod(mode)
    (corp,) = load_config(write(tmp_path, JWT_CORP), env=ENV).oidc
    assert corp.private_key is not None


def test_a_loose_key_that_is_also_not_a_key_gets_both_problems(tmp_path: Path) -> None:
    (tmp_path / "client-key.pem").write_text("hello")
    (tmp_path / "client-key.pem").chmod(0o644)
    found = [p for p in problems(write(tmp_path, JWT_CORP), ENV) if "private_key_file" in p]
    assert len(found) == 2 and "chmod 600" in found[0] and "not an unencrypted PEM" in found[1], found


def test_the_readme_states_the_key_file_rule() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    found = re.search(r"\*\*`private_key_jwt`\.\*\*(.*?)\n\n", readme, re.DOTALL)
    assert found, "the README lost its private_key_jwt paragraph"
    text = " ".join(found.group(1).split())
    assert "chmod 600" in text and "group or other users" in text and "refuses to start" in text
