"""The one hand-off point for whoever keeps the provider's tokens: ``OidcLogin.on_session_started`` gets the new
session id, the provider, the token response and the validated ID-token claims before the browser gets its
cookie; if it fails, the session is revoked and no cookie is sent."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from live_gateway import AuthClient, make_secrets, set_cookies, write_config
from oidc_flow import gateway_tables, secrets_env, sign_in

from frontdesk.gateway.app import create_app
from frontdesk.gateway.config import load_config
from frontdesk.middleware.errors import StoreError
from frontdesk.middleware.oidc import RelyingParty
from tests.support import LiveServer
from tests.support.oidc_provider import OidcProvider

pytestmark = pytest.mark.slow


class Keeper:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[dict[str, Any]] = []

    async def __call__(
        self, *, sid: str, provider: RelyingParty, token_response: Mapping[str, Any], claims: Mapping[str, Any]
    ) -> None:
        self.calls.append({"sid": sid, "provider": provider.name, "tokens": token_response, "claims": claims})
        if self.fail:
            raise StoreError("the token store is down")


def test_the_hook_gets_the_tokens_and_a_failing_hook_starts_no_session(
    tmp_path: Path, oidc_provider: OidcProvider, live_server: Callable[..., LiveServer]
) -> None:
    env = {**make_secrets(), **secrets_env(oidc_provider)}
    config = load_config(write_config(tmp_path / "config.toml", **gateway_tables(oidc_provider)), env=env)
    app = create_app(config)
    assert app.oidc is not None
    keeper = Keeper()
    app.oidc.on_session_started = keeper
    server = live_server(app, lifespan="on")
    with AuthClient(server.url) as client:
        assert sign_in(client, "alice").status_code == 302
        sid = client.claims()["sid"]
        (call,) = keeper.calls
        assert call["sid"] == sid and call["provider"] == "corp"
        assert {"access_token", "id_token", "refresh_token"} <= set(call["tokens"])
        assert call["claims"]["sub"] == "alice" and call["claims"]["iss"] == oidc_provider.issuer
        assert call["claims"]["exp"] > time.time()

        keeper.fail = True
        refused = sign_in(client, "bob")
        assert refused.status_code == 503 and refused.json()["error"] == "store_unavailable"
        assert "__Host-frontdesk" not in {c.name for c in set_cookies(refused)}
        failed_sid = keeper.calls[-1]["sid"]
        assert client.session().status_code == 200  # the earlier session (alice) is untouched

    db = sqlite3.connect(tmp_path / "frontdesk.db")
    try:
        ((revoked_at,),) = db.execute("SELECT revoked_at FROM sessions WHERE sid = ?", (failed_sid,)).fetchall()
    finally:
        db.close()
    assert revoked_at is not None, "the session the hook could not complete must be revoked"
