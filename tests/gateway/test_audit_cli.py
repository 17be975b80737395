"""``frontdesk audit`` after a real flow on a served gateway: users added by the CLI, a failed login, a login, a
logout, a password change, a key rotation; the trail in the store, printed as text and as JSON lines."""

from __future__ import annotations

import json
import time
from typing import Any

from live_gateway import GatewayProcess
from test_cli import assert_no_traceback, clean_env, frontdesk

from frontdesk.middleware.events import Kind
from tests.support import wait_until

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def audit_rows(gw: GatewayProcess, *args: str) -> list[dict[str, Any]]:
    result = frontdesk("audit", "--json", "--config", str(gw.config_path), *args, cwd=gw.workdir)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_audit_trail_of_a_real_flow(gateway_factory: Any) -> None:
    gw: GatewayProcess = gateway_factory("audit-cli", start=False, keys={"algorithm": "EdDSA", "directory": "keys"})
    cfg, cwd = str(gw.config_path), gw.workdir
    assert frontdesk("keys", "rotate", "--config", cfg, cwd=cwd).returncode == 0
    added = frontdesk("users", "add", "alice", "--password-stdin", "--config", cfg, cwd=cwd, stdin="alice-pw-123\n")
    assert added.returncode == 0, added.stderr
    gw.start()
    with gw.client() as client:
        ua = {"User-Agent": BROWSER}
        assert client.login("alice", "not-her-password", headers=ua).status_code == 401
        assert client.login("alice", "alice-pw-123", headers=ua).status_code == 200
        sid = client.claims()["sid"]
        assert client.logout(headers=ua).status_code == 204

    # Written in the background: wait until the logout has reached the table.
    wait_until(lambda: any(r["kind"] == Kind.LOGOUT for r in audit_rows(gw)), what="the logout in the audit table")
    rows = audit_rows(gw, "--user", "alice")
    kinds = [r["kind"] for r in rows]
    assert kinds == [Kind.USER_ADDED, Kind.LOGIN_FAILED, Kind.LOGIN_OK, Kind.SESSION_REVOKED, Kind.LOGOUT], rows
    failed, ok, logout = rows[1], rows[2], rows[4]
    assert failed["reason"] == "bad_credentials" and failed["session"] is None
    for row in (failed, ok, logout):
        assert (row["address"], row["user_agent"]) == ("127.0.0.1", BROWSER), row
    assert ok["session"] == logout["session"] == sid and logout["actor"] == "user"
    assert rows[0]["actor"].startswith("admin")
    # Every row says when, as an ISO time and as the number it was stored as.
    assert all(abs(r["at"] - time.time()) < 600 and r["time"].endswith("Z") for r in rows)
    # The key rotation has no user; the unfiltered trail has it, first.
    assert audit_rows(gw)[0]["kind"] == Kind.KEY_ROTATED
    # Nothing secret in the trail.
    text = json.dumps(audit_rows(gw))
    assert "alice-pw-123" not in text and "not-her-password" not in text

    # A password change ends the session(s) and says so, by an admin.
    passwd = frontdesk("users", "passwd", "alice", "--password-stdin", "--config", cfg, cwd=cwd, stdin="alice-pw-456\n")
    assert passwd.returncode == 0, passwd.stderr
    assert [r["kind"] for r in audit_rows(gw, "--user", "alice")][-1] == Kind.PASSWORD_CHANGED

    # The text form: one line per event, oldest first; --since filters by age (parsed like the config's).
    text_out = frontdesk("audit", "--user", "alice", "--since", "1h", "--config", cfg, cwd=cwd, env=clean_env())
    assert text_out.returncode == 0, text_out.stderr
    lines = text_out.stdout.splitlines()
    assert len(lines) == 6 and "login.failed" in lines[1] and "bad_credentials" in lines[1] and BROWSER in lines[1]
    assert audit_rows(gw, "--since", "1ms") == []

    bad = frontdesk("audit", "--since", "yesterday", "--config", cfg, cwd=cwd)
    assert bad.returncode == 2 and "--since" in bad.stderr
    assert_no_traceback(bad)
