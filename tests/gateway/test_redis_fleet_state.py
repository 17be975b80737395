"""What several machines share through a Redis store: the users (``frontdesk users`` on one machine is seen at
once by a gateway on another), the login rate limits, and the audit trail.

Two gateways with their own directories and config files (two machines) share one redis-server."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from live_gateway import GatewayProcess
from test_cli import assert_no_traceback, clean_env, frontdesk

from frontdesk.middleware.events import Kind
from tests.support import wait_until

DB = 9  # a database of its own on the shared test server: the gateway's keys have no per-test prefix


@pytest.fixture
def store_url(redis_url: str) -> str:
    url = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    redis.Redis.from_url(url).flushdb()
    return url


def test_users_added_on_one_machine_log_in_on_another_and_removal_ends_their_sessions(
    gateway_factory: Any, store_url: str
) -> None:
    one: GatewayProcess = gateway_factory("redis-users-one", start=False, store={"url": store_url})
    other: GatewayProcess = gateway_factory("redis-users-two", store={"url": store_url})
    cfg, cwd = str(one.config_path), one.workdir

    added = frontdesk("users", "add", "Jules", "--password-stdin", "--config", cfg, cwd=cwd, stdin="jules-pw-1\n")
    assert added.returncode == 0, added.stderr
    assert not (one.workdir / "frontdesk.db").exists() and not (one.workdir / "users.db").exists()
    # Unique without regard to case, across machines.
    taken = frontdesk(
        "users", "add", "jules", "--password-stdin", "--config", str(other.config_path), cwd=other.workdir,
        stdin="another-pw-1\n",
    )  # fmt: skip
    assert taken.returncode == 1 and "already exists" in taken.stderr
    assert_no_traceback(taken)
    listed = frontdesk("users", "list", "--config", str(other.config_path), cwd=other.workdir, env=clean_env())
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["Jules"]

    with other.client() as client:
        assert client.login("Jules", "jules-pw-1").status_code == 200  # at once: no restart, no copy
        assert client.session().status_code == 200
        changed = frontdesk(
            "users", "passwd", "jules", "--password-stdin", "--config", cfg, cwd=cwd, stdin="jules-pw-2\n"
        )
        assert changed.returncode == 0 and "ended 1 session" in changed.stdout, changed.stdout + changed.stderr
        wait_until(lambda: client.session().status_code == 401, what="the session to end after passwd")
        assert client.login("Jules", "jules-pw-1").status_code == 401
        assert client.login("Jules", "jules-pw-2").status_code == 200

        removed = frontdesk("users", "remove", "JULES", "--config", cfg, cwd=cwd)
        assert removed.returncode == 0 and "ended 1 session" in removed.stdout, removed.stdout + removed.stderr
        wait_until(lambda: client.session().status_code == 401, what="the removed user's session to end")
        assert client.login("Jules", "jules-pw-2").status_code == 401


def test_login_limits_and_the_audit_trail_are_shared_by_the_machines(gateway_factory: Any, store_url: str) -> None:
    tables = {"store": {"url": store_url}, "login": {"max_attempts_per_user": 3, "window": "10m"}}
    one: GatewayProcess = gateway_factory("redis-limits-one", users={"vic": "vic-password-1"}, **tables)
    other: GatewayProcess = gateway_factory("redis-limits-two", **tables)
    with one.client() as attacker_one, other.client() as attacker_two:
        assert attacker_one.login("vic", "guess-1").status_code == 401
        assert attacker_two.login("vic", "guess-2").status_code == 401
        assert attacker_one.login("vic", "guess-3").status_code == 401
        # Three attempts across the fleet: the fourth is refused on either machine.
        assert attacker_two.login("vic", "guess-4").status_code == 429
        assert attacker_one.login("vic", "vic-password-1").status_code == 429

    def trail(gw: GatewayProcess) -> list[dict[str, Any]]:
        shown = frontdesk("audit", "--json", "--user", "vic", "--config", str(gw.config_path), cwd=gw.workdir)
        assert shown.returncode == 0, shown.stderr
        return [json.loads(line) for line in shown.stdout.splitlines()]

    # Each machine's events land in the one trail: either machine's `frontdesk audit` shows them all.
    def wrong_passwords(gw: GatewayProcess) -> int:
        return sum(r["kind"] == Kind.LOGIN_FAILED and r["reason"] == "bad_credentials" for r in trail(gw))

    wait_until(lambda: wrong_passwords(one) == 3, what="every wrong password, from both machines, in the trail")
    assert trail(other) == trail(one)
