"""Restart and ``kill -9`` survival: every session, rotation and logout the gateway acknowledged before it
went down is honoured by the next process on the same SQLite file."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from live_gateway import GatewayProcess, set_cookies

USERS = {"frank": "frank-password-1", "grace": "grace-password-2"}


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm-restart", "kill-9"])
def test_acknowledged_sessions_and_logouts_survive_a_restart(gateway_factory: Any, hard: bool) -> None:
    gw: GatewayProcess = gateway_factory("durable-kill" if hard else "durable-term", users=USERS)
    with gw.client() as kept, gw.client() as rotated, gw.client() as ended:
        # A session that is simply alive.
        assert kept.login("frank", USERS["frank"]).status_code == 200
        kept_sid = kept.claims()["sid"]
        # A session whose refresh token was rotated (the response, with the new cookie, was received).
        assert rotated.login("grace", USERS["grace"], remember=True).status_code == 200
        assert rotated.refresh().status_code == 200
        rotated_claims = rotated.claims()
        # A session that was logged out (204 received), the very last thing before going down.
        assert ended.login("frank", USERS["frank"]).status_code == 200
        ended_token = ended.cookie
        ended_sid = ended.claims()["sid"]
        assert ended.logout().status_code == 204

        first_pid = gw.proc.pid if gw.proc else None
        gw.restart(hard=hard)
        assert gw.proc is not None and gw.proc.pid != first_pid

        # The live session carries on (a new process mints a new access token and rotates once).
        r = kept.session()
        assert r.status_code == 200, r.text
        assert r.json()["user"]["username"] == "frank"
        assert kept.claims()["sid"] == kept_sid

        # The rotated session continues from the token it was handed, not the one before it.
        r = rotated.session()
        assert r.status_code == 200, r.text
        assert rotated.claims()["sid"] == rotated_claims["sid"]
        row = gw.session_row(rotated_claims["sid"])
        assert row is not None and row["revoked_at"] is None and bool(row["remember"]) is True

        # The logout is still a logout: the cookie is refused and the revocation is on record.
        r = ended.session(cookie=ended_token, follow=False)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "session_revoked"
        row = gw.session_row(ended_sid)
        assert row is not None and row["revoked_at"] is not None
        assert gw.query("SELECT COUNT(*) FROM revocations WHERE id = ?", (ended_sid,)) == [(1,)]

        # Logging in works as before.
        with gw.client() as fresh:
            assert fresh.login("grace", USERS["grace"]).status_code == 200
            assert fresh.session().status_code == 200

    gw.stop()
    db = sqlite3.connect(gw.db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        db.close()


def test_schema_is_migrated_once_and_kept_across_restarts(gateway_factory: Any) -> None:
    gw: GatewayProcess = gateway_factory("durable-schema", users={"frank": USERS["frank"]})
    version = gw.query("PRAGMA user_version")[0][0]
    assert version >= 1
    with gw.client() as client:
        assert client.login("frank", USERS["frank"]).status_code == 200
        gw.restart(hard=True)
        assert gw.query("PRAGMA user_version")[0][0] == version
        r = client.session()
        assert r.status_code == 200
        assert len(set_cookies(r)) <= 1
    gw.stop()
