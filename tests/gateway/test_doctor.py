"""``frontdesk doctor``, run as the real command against real files: a good deployment exits 0 with every line
ok; each thing broken on its own exits non-zero (or warns) with the fix, and no secret ever appears in the
output."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_gateway import make_secrets, run_in_thread, write_config

from frontdesk.gateway.secret_files import create_private
from frontdesk.middleware.keys import generate_private_key, private_key_pem
from frontdesk.middleware.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.support.oidc_provider import OidcProvider


@pytest.fixture
def upstream() -> Iterator[int]:
    """Something listening, as an upstream would."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


class Setup:
    def __init__(self, workdir: Path, upstream_port: int) -> None:
        self.workdir = workdir
        self.secrets = make_secrets()
        self.upstream = f"http://127.0.0.1:{upstream_port}"
        self.tables: dict[str, Any] = {
            "server": {"hsts": "365d"},
            "routes": [{"prefix": "/api/", "upstream": self.upstream}],
        }
        self.db = workdir / "frontdesk.db"

        async def create() -> None:  # the store as a gateway that ran leaves it: migrated, 0600
            store = SqliteStore(self.db)
            await store.open()
            await store.close()

        run_in_thread(lambda: asyncio.run(create()))

    def run(self, *extra: str, env: dict[str, str] | None = None, **tables: Any) -> subprocess.CompletedProcess[str]:
        merged = {**self.tables, **tables}
        config = write_config(self.workdir / "config.toml", **merged)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
        environ.update(self.secrets if env is None else env)
        result = subprocess.run(
            [sys.executable, "-m", "frontdesk.gateway.cli", "doctor", "--config", str(config), *extra],
            cwd=self.workdir,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )
        for secret in (env or self.secrets).values():
            assert secret not in result.stdout + result.stderr, "a secret was printed"
        assert "Traceback" not in result.stderr, result.stderr
        return result


@pytest.fixture
def setup(tmp_path: Path, upstream: int) -> Setup:
    return Setup(tmp_path, upstream)


def lines(result: subprocess.CompletedProcess[str], level: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(level)]


def assert_fails_with(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result.stdout
    text = result.stdout
    for word in words:
        assert word in text, text
    assert "fix:" in text


def test_a_good_deployment_is_all_ok_and_exits_0(setup: Setup) -> None:
    result = setup.run()
    assert result.returncode == 0, result.stdout
    assert lines(result, "FAIL") == [] and lines(result, "warn") == [], result.stdout
    for check in ("config", "secrets", "store", "clock", "upstream", "cookie"):
        assert any(line.split()[1] == check for line in lines(result, "ok")), (check, result.stdout)
    assert f"schema version {SCHEMA_VERSION}" in result.stdout


def test_a_config_problem_fails_with_what_to_change(setup: Setup) -> None:
    assert_fails_with(setup.run(tokens={"acess_ttl": "5m"}), "FAIL", "tokens.acess_ttl: unknown key")


def test_a_weak_secret_fails_and_is_never_printed(setup: Setup) -> None:
    weak = dict(setup.secrets, FRONTDESK_ACCESS_SECRET="ab" * 20)  # long enough, but two characters repeated
    assert_fails_with(setup.run(env=weak), "FRONTDESK_ACCESS_SECRET looks weak", "frontdesk keygen")


def test_equal_secrets_fail(setup: Setup) -> None:
    same = dict(setup.secrets, FRONTDESK_REFRESH_SECRET=setup.secrets["FRONTDESK_ACCESS_SECRET"])
    assert_fails_with(setup.run(env=same), "must be different")


def test_an_unreachable_upstream_fails(setup: Setup) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]  # bound, never listening: connections are refused
        result = setup.run(routes=[{"prefix": "/api/", "upstream": f"http://127.0.0.1:{dead}"}])
    assert_fails_with(result, f"cannot connect to 127.0.0.1:{dead} (routes /api/)", "start it")


def test_a_store_from_a_newer_version_fails(setup: Setup) -> None:
    db = sqlite3.connect(setup.db, isolation_level=None)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    assert_fails_with(setup.run(), "newer than this frontdesk's")


def test_a_locked_store_fails(setup: Setup) -> None:
    other = sqlite3.connect(setup.db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        assert_fails_with(setup.run(), "locked")
    finally:
        other.close()


def test_a_store_readable_by_others_fails(setup: Setup) -> None:
    setup.db.chmod(0o644)
    assert_fails_with(setup.run(), "other users can access it (mode 0644)", f"chmod 600 {setup.db}")


def test_sessions_from_the_future_mean_a_clock_behind(setup: Setup) -> None:
    db = sqlite3.connect(setup.db, isolation_level=None)
    future = 4_000_000_000.0  # year 2096
    db.execute(
        "INSERT INTO sessions (sid, user_id, username, created_at, last_seen, expires_at, idle_expires_at, remember,"
        " current_jti, rotated_at) VALUES ('s', 'u', 'alice', ?, ?, ?, ?, 0, 'j', ?)",
        (future, future, future + 10, future + 10, future),
    )
    db.close()
    assert_fails_with(setup.run(), "FAIL  clock", "in the future", "NTP")


def test_key_directory_open_to_others_fails(setup: Setup) -> None:
    keys = {"algorithm": "EdDSA", "directory": "keys"}
    write_config(setup.workdir / "config.toml", **setup.tables, keys=keys)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update(setup.secrets)
    rotate = [sys.executable, "-m", "frontdesk.gateway.cli", "keys", "rotate", "--config", "config.toml"]
    subprocess.run(rotate, cwd=setup.workdir, env=env, check=True, capture_output=True, timeout=120)
    assert setup.run(keys=keys).returncode == 0  # as `keys rotate` made it: 0700 / 0600
    directory = setup.workdir / "keys"
    directory.chmod(0o755)
    (key,) = [p for p in directory.iterdir() if p.is_file()]
    key.chmod(0o644)
    assert_fails_with(setup.run(keys=keys), f"chmod 700 {directory}", f"chmod 600 {key}")


def test_same_site_none_fails_and_lax_warns(setup: Setup) -> None:
    assert_fails_with(setup.run(cookie={"same_site": "None"}), "cross-site requests", 'same_site = "Strict"')
    lax = setup.run(cookie={"same_site": "Lax"})
    assert lax.returncode == 0, lax.stdout  # a warning alone does not fail ...
    assert any("Lax" in line for line in lines(lax, "warn")), lax.stdout
    assert setup.run("--strict", cookie={"same_site": "Lax"}).returncode == 1  # ... unless --strict


def test_behind_a_proxy_without_origins_warns(setup: Setup) -> None:
    result = setup.run(server={"hsts": "365d", "trusted_proxies": ["10.0.0.0/8"]})
    assert result.returncode == 0
    assert any("server.origins is empty" in line for line in lines(result, "warn")), result.stdout
    assert "fix: list the public origin" in result.stdout


def test_no_hsts_warns(setup: Setup) -> None:
    result = setup.run(server={"hsts": False})
    assert result.returncode == 0
    assert any("hsts is off" in line for line in lines(result, "warn")), result.stdout


def test_an_exposed_dotenv_fails(setup: Setup) -> None:
    dotenv = setup.workdir / ".env"
    dotenv.write_text("".join(f"{k}={v}\n" for k, v in setup.secrets.items()))
    dotenv.chmod(0o644)
    assert_fails_with(setup.run(), f"{dotenv} holds secrets", f"chmod 600 {dotenv}")


def test_a_redis_store_is_checked_for_answer_and_clock(setup: Setup, redis_url: str) -> None:
    result = setup.run(store={"url": redis_url})
    assert result.returncode == 0, result.stdout
    assert any("the Redis store answers" in line for line in lines(result, "ok")), result.stdout
    assert any("of the Redis server's" in line for line in lines(result, "ok")), result.stdout
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
        assert_fails_with(setup.run(store={"url": f"redis://127.0.0.1:{dead}/0"}), "FAIL  store", "start Redis")


def test_a_separate_users_database_readable_by_others_fails(setup: Setup) -> None:
    users = setup.workdir / "users.db"
    sqlite3.connect(users).close()
    users.chmod(0o644)
    assert_fails_with(setup.run(users={"database": "users.db"}), "FAIL  users", f"chmod 600 {users}")


def test_a_private_key_jwt_key_file_readable_by_others_fails(setup: Setup) -> None:
    key = setup.workdir / "oidc-client-key.pem"
    create_private(key, private_key_pem(generate_private_key("EdDSA")).decode())
    key.chmod(0o644)
    provider = {
        "name": "corp",
        "issuer": "https://idp.example.com",
        "client_id": "frontdesk",
        "token_endpoint_auth_method": "private_key_jwt",
        "private_key_file": key.name,
    }
    env = {**setup.secrets, "FRONTDESK_OIDC_TOKEN_KEY": secrets.token_urlsafe(48)}
    result = setup.run(env=env, oidc=[provider])
    assert_fails_with(result, "FAIL  config", "oidc[1].private_key_file", "(mode 0644)", f"chmod 600 {key}")
    assert "PRIVATE KEY" not in result.stdout


def test_oidc_providers_are_checked_by_their_discovery_document(setup: Setup, oidc_provider: OidcProvider) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
        providers = [
            {"name": "corp", "issuer": oidc_provider.issuer, "client_id": "frontdesk"},
            {"name": "slash", "issuer": oidc_provider.issuer + "/", "client_id": "frontdesk"},  # not its issuer
            {"name": "down", "issuer": f"http://127.0.0.1:{dead}", "client_id": "frontdesk"},
        ]
        env = {
            **setup.secrets,
            **{f"FRONTDESK_OIDC_{n}_CLIENT_SECRET": f"secret-of-{n}" for n in ("CORP", "SLASH", "DOWN")},
        }
        result = setup.run(env=env, oidc=providers)
    assert any(f"corp: {oidc_provider.issuer} answers discovery" in line for line in lines(result, "ok")), result.stdout
    assert_fails_with(result, "slash: no usable discovery document", "names issuer", "down: no usable discovery")
