"""Login limits that cannot be turned against the user, and refused logins that write nothing (issue 8, items
3 and 5), against a real server and its SQLite file.

Seen before: an address already refused with 429 for its own limit could still push any username's counter over
its limit (every request counted against the username first), so the real user got 429 for up to a window;
and 3,000 refused logins added 3,000 rows to the ``attempts`` table.

Each test speaks from its own loopback addresses and uses its own usernames.
"""

from __future__ import annotations

import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_gateway import AuthClient, GatewayProcess, SetCookie, set_cookies

from frontdesk.gateway.config import load_config
from frontdesk.gateway.errors import ConfigError

USERS = {name: f"{name}-password-123" for name in ("victim", "vera", "walt", "bob")}
PER_USER = 3
PER_ADDRESS = 6
# The counters are per fixed window, aligned to multiples of it since the epoch (``store.base.window_bounds``):
# a day, so that a test's requests almost never straddle a boundary, and the fixture below for when they would.
WINDOW = 86_400
DEVICE = "__Host-frontdesk-device"


@pytest.fixture(scope="module")
def gw(gateway_factory: Any) -> GatewayProcess:
    return gateway_factory(
        "login-limits",
        users=USERS,
        login={"max_attempts_per_user": PER_USER, "max_attempts_per_address": PER_ADDRESS, "window": f"{WINDOW}s"},
    )


@pytest.fixture(autouse=True)
def _inside_one_window() -> None:
    """A test whose requests straddled a window's end would see its counts start again halfway (a flood refused
    with 429 got a 401 once the window turned): each test starts at least two minutes before the end."""
    left = WINDOW - time.time() % WINDOW
    if left < 120:
        time.sleep(left + 1)


def status(response: httpx.Response) -> int:
    if response.status_code == 429:
        assert response.json()["error"] == "rate_limited"
        assert 1 <= int(response.headers["retry-after"]) <= WINDOW + 1
    return response.status_code


def device_cookie(response: httpx.Response) -> SetCookie:
    found = [c for c in set_cookies(response) if c.name == DEVICE]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def counters(gw: GatewayProcess, pattern: str) -> dict[str, int]:
    return dict(gw.query("SELECT key, count FROM attempts WHERE key LIKE ?", (pattern,)))


def test_an_address_over_its_limit_cannot_lock_out_anyone(gw: GatewayProcess) -> None:
    with gw.client(local_address="127.0.0.50") as attacker, gw.client(local_address="127.0.0.51") as real:
        for i in range(PER_ADDRESS):  # the address's own budget, spent on made-up names
            assert status(attacker.login(f"nobody{i}", "guess-guess-1")) == 401
        # Then the attack of the report: 11 quick requests for one username, all refused by the address limit.
        assert [status(attacker.login("victim", "guess-guess-1")) for _ in range(11)] == [429] * 11
        # They counted against nothing: no counter for the username, the address's stays at its limit.
        assert counters(gw, "login:user:victim") == {}
        assert counters(gw, "login:addr:127.0.0.50") == {"login:addr:127.0.0.50": PER_ADDRESS}
        # The real user, from elsewhere, is not locked out.
        assert real.login("victim", USERS["victim"]).status_code == 200
        assert real.session().status_code == 200


def test_a_known_device_gets_in_while_the_username_is_under_attack(gw: GatewayProcess) -> None:
    with gw.client(local_address="127.0.0.60") as home:
        first = home.login("vera", USERS["vera"])
        assert first.status_code == 200
        device = device_cookie(first)
        assert device.attrs.keys() >= {"httponly", "secure", "path", "samesite", "max-age"}
        assert (device.attrs["path"], device.attrs["samesite"], "domain" in device.attrs) == ("/", "Strict", False)
        assert device.max_age is not None and device.max_age > 30 * 86400
        # The session cookie is still the one refresh cookie of the response.
        assert [c.name for c in set_cookies(first) if c.name != DEVICE] == ["__Host-frontdesk"]
    # An attacker spends vera's per-username budget from three addresses.
    for i in range(PER_USER):
        with gw.client(local_address=f"127.0.0.{61 + i}") as attacker:
            assert status(attacker.login("vera", "guess-guess-1")) == 401
    # Unknown clients are refused even with the right password; so is a device cookie of another user.
    with gw.client(local_address="127.0.0.64") as stranger, gw.client(local_address="127.0.0.65") as walts:
        assert status(stranger.login("vera", USERS["vera"])) == 429
        walts_device = device_cookie(walts.login("walt", USERS["walt"]))
        other = {"Cookie": f"{DEVICE}={walts_device.value}"}
        assert status(walts.login("vera", USERS["vera"], cookie=None, headers=other)) == 429
    # Vera, from the browser she logged in from before (on another network now), gets in.
    with gw.client(local_address="127.0.0.66") as laptop:
        known = {"Cookie": f"{DEVICE}={device.value}"}
        again = laptop.login("vera", USERS["vera"], cookie=None, headers=known)
        assert again.status_code == 200, again.text
        assert device_cookie(again).claims()["sid"] == device.claims()["sid"]  # the same device, re-signed
        assert laptop.session().status_code == 200


def test_refused_logins_leave_the_attempts_table_bounded(gw: GatewayProcess) -> None:
    # 3,000 refused logins, each for a new username (before: 3,000 new rows, one per username).
    address = "127.0.0.70"
    with AuthClient(gw.url, local_address=address, pinned=True) as flood:
        for i in range(PER_ADDRESS):
            assert status(flood.login(f"flood{i}", "guess-guess-1")) == 401
        before = gw.query("SELECT COUNT(*) FROM attempts")[0][0]
        refused = [status(flood.login(f"flood-{i}", "guess-guess-1")) for i in range(3000)]
        assert set(refused) == {429}
    assert gw.query("SELECT COUNT(*) FROM attempts")[0][0] == before
    assert counters(gw, "login:user:flood-%") == {}
    assert counters(gw, f"login:addr:{address}") == {f"login:addr:{address}": PER_ADDRESS}


def test_the_database_files_are_private(gw: GatewayProcess) -> None:
    for suffix in ("", "-wal", "-shm"):
        path = gw.db_path.with_name(gw.db_path.name + suffix)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_device_ttl_is_a_login_setting(tmp_path: Path) -> None:
    env = {"FRONTDESK_ACCESS_SECRET": "a" * 40, "FRONTDESK_REFRESH_SECRET": "r" * 40}
    path = tmp_path / "config.toml"
    path.write_text('[login]\ndevice_ttl = "30d"\n')
    assert load_config(path, env=env).sessions.login_device_ttl == 30 * 86400
    assert load_config(None, env=env).sessions.login_device_ttl == 365 * 86400  # the default
    path.write_text('[login]\ndevice_ttl = "soon"\nmax_attempts_per_user = 0\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    assert any("device_ttl" in p for p in info.value.problems) and len(info.value.problems) == 2
