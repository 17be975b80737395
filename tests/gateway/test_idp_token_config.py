"""The configuration of the IdP tokens kept with sessions: the sealing keys from the environment (required with
``[[oidc]]``), ``[[oidc]] session_claims``, and ``[[routes]] token = "idp"``."""

from __future__ import annotations

from pathlib import Path

from test_oidc_config import CORP, ENV, problems, write

from frontdesk.gateway.config import load_config
from frontdesk.gateway.proxy.routes import IDP_AUDIENCE

SECRET = {"FRONTDESK_OIDC_CORP_CLIENT_SECRET": "s" * 40}
ROUTES = """
[[routes]]
prefix = "/idp-api/"
upstream = "http://127.0.0.1:9000/"
token = "idp"

[[routes]]
prefix = "/api/"
upstream = "http://127.0.0.1:9000/"
"""


def test_oidc_refuses_to_start_without_a_token_key(tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if k != "FRONTDESK_OIDC_TOKEN_KEY"}
    found = problems(write(tmp_path, CORP), {**env, **SECRET})
    (missing,) = [p for p in found if p.startswith("FRONTDESK_OIDC_TOKEN_KEY is not set")]
    assert "frontdesk keygen --write" in missing  # says exactly what to run
    short = problems(write(tmp_path, CORP), {**env, **SECRET, "FRONTDESK_OIDC_TOKEN_KEY": "short"})
    assert any("FRONTDESK_OIDC_TOKEN_KEY holds a key shorter than 32 bytes" in p for p in short), short
    # Without a provider nothing is sealed, so nothing is asked for.
    assert load_config(write(tmp_path, "[server]\nport = 8080\n"), env=env).oidc_token_keys == ()


def test_token_keys_are_oldest_first_and_never_shown(tmp_path: Path) -> None:
    env = {**ENV, **SECRET, "FRONTDESK_OIDC_TOKEN_KEY": "n" * 40, "FRONTDESK_OIDC_TOKEN_KEY_PREVIOUS": "o" * 40}
    config = load_config(write(tmp_path, CORP), env=env)
    assert config.oidc_token_keys == ("o" * 40, "n" * 40)  # the last one seals
    assert "n" * 40 not in repr(config)


def test_session_claims_and_idp_routes(tmp_path: Path) -> None:
    text = CORP + 'session_claims = ["email", "groups", "email"]\n' + ROUTES
    config = load_config(write(tmp_path, text), env={**ENV, **SECRET})
    assert config.oidc[0].session_claims == ("email", "groups")
    by_prefix = {route.prefix: route for route in config.routes}
    assert by_prefix["/idp-api/"].token == "idp" and by_prefix["/idp-api/"].audience == IDP_AUDIENCE
    assert by_prefix["/api/"].token == "frontdesk" and by_prefix["/api/"].audience != IDP_AUDIENCE


def test_bad_token_settings_are_all_reported(tmp_path: Path) -> None:
    text = CORP + "session_claims = \"email\"\n" + """
[[routes]]
prefix = "/a/"
upstream = "http://127.0.0.1:9000/"
token = "bearer"

[[routes]]
prefix = "/b/"
upstream = "http://127.0.0.1:9000/"
token = "idp"
audience = "orders"
"""
    found = problems(write(tmp_path, text), {**ENV, **SECRET})
    assert any(p.startswith("oidc[1].session_claims") for p in found), found
    assert any(p.startswith('routes[0].token: must be "frontdesk" or "idp"') for p in found), found
    assert any(p.startswith("routes[1].audience: a token = \"idp\" route") for p in found), found
