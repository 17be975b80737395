"""``[store]`` connection settings: every Redis URL form, TLS files, the password from the environment, and
every bad URL reported at start-up with the other config problems. Real redis-servers: one asking for a
password, one speaking TLS only (with client certificates)."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
from live_gateway import make_secrets, toml_text

from frontdesk.gateway.backends import store_for, users_for
from frontdesk.gateway.config import GatewayConfig, load_config
from frontdesk.gateway.errors import ConfigError
from frontdesk.middleware.errors import StoreError
from frontdesk.middleware.store.redis import RedisStore
from frontdesk.middleware.store.redis_urls import RedisOptions, parse_redis_url
from tests.support import free_port, wait_until
from tests.support.certificates import self_signed
from tests.support.redis_servers import redis_server


def config_problems(tmp_path: Path, store: dict[str, object], env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(toml_text({"store": store}))
    try:
        load_config(path, env={**make_secrets(), **(env or {})})
    except ConfigError as exc:
        return exc.problems
    return []


def load(tmp_path: Path, store: dict[str, object], env: dict[str, str] | None = None) -> GatewayConfig:
    path = tmp_path / "config.toml"
    path.write_text(toml_text({"store": store}))
    return load_config(path, env={**make_secrets(), **(env or {})})


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("redis://cache.internal:6379/2", ("single", False, (), "", 0)),
        ("rediss://cache.internal:6380/0", ("single", True, (), "", 0)),
        ("unix:///run/redis/redis.sock?db=1", ("single", False, (), "", 0)),
        (
            "redis+sentinel://s1:26379,s2:26380,s3/mymaster/3",
            ("sentinel", False, (("s1", 26379), ("s2", 26380), ("s3", 26379)), "mymaster", 3),
        ),
        ("rediss+sentinel://s1:26379/mymaster", ("sentinel", True, (("s1", 26379),), "mymaster", 0)),
        ("redis+cluster://n1:7000,n2:7001", ("cluster", False, (("n1", 7000), ("n2", 7001)), "", 0)),
        ("rediss+cluster://n1", ("cluster", True, (("n1", 6379),), "", 0)),
    ],
)
def test_every_url_form_is_understood(url: str, target: tuple[object, ...]) -> None:
    got = parse_redis_url(url)
    assert (got.kind, got.tls, got.hosts, got.service, got.db) == target


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("redis://cache:99999/0", "not a port number"),
        ("redis://cache:6379/zero", "not a number"),
        ("redis://a:6379,b:6379/0", "redis+sentinel://"),
        ("redis+sentinel://s1:26379", "service_name"),
        ("redis+sentinel://s1:26379/mymaster/2/extra", "service_name"),
        ("redis+sentinel://s1:26379/mymaster/two", "not a number"),
        ("redis+cluster://n1:7000/3", "only database 0"),
        ("redis+cluster://n1:7000?timeout=1", "no ?query"),
        ("redis+cluster://:7000", "not host:port"),
        ("redis+cluster://n1:port", "not a port number"),
        ("mysql://db/frontdesk", "not supported"),
        ("redis//cache:6379", "not supported"),
    ],
)
def test_a_bad_url_is_refused_at_start_up_in_plain_words(tmp_path: Path, url: str, needle: str) -> None:
    problems = config_problems(tmp_path, {"url": url, "purge_interval": "soon"})
    # One message with every problem: the bad URL and the other key's.
    assert len(problems) == 2, problems
    assert needle in problems[0] and problems[0].startswith("store.url")
    assert problems[1].startswith("store.purge_interval")


def test_a_password_in_the_file_is_refused_and_never_repeated(tmp_path: Path) -> None:
    (problem,) = config_problems(tmp_path, {"url": "redis://frontdesk:s3cret-pw@cache:6379/0"})
    assert "FRONTDESK_REDIS_PASSWORD" in problem and "s3cret-pw" not in problem
    (problem,) = config_problems(tmp_path, {"url": "redis+cluster://:s3cret-pw@n1:7000,n2:7000"})
    assert "FRONTDESK_REDIS_PASSWORD" in problem and "s3cret-pw" not in problem


def test_tls_settings_are_checked(tmp_path: Path) -> None:
    ca, _ = self_signed(tmp_path)
    problems = config_problems(
        tmp_path,
        {"url": "rediss://cache:6380/0", "ca_file": "missing-ca.pem", "cert_reqs": "maybe", "key_file": str(ca)},
    )
    assert len(problems) == 3, problems
    assert "store.ca_file" in problems[0] and "missing-ca.pem" in problems[0]
    assert "store.cert_reqs" in problems[1] and "'required'" in problems[1]
    assert "store.key_file needs store.cert_file" in problems[2]
    (plain,) = config_problems(tmp_path, {"url": "redis+cluster://n1:7000", "ca_file": str(ca)})
    assert "rediss+cluster://" in plain
    (sqlite,) = config_problems(tmp_path, {"url": "sqlite:///frontdesk.db", "cert_reqs": "none"})
    assert "rediss://" in sqlite
    config = load(tmp_path, {"url": "rediss://cache:6380/0", "ca_file": ca.name, "cert_reqs": "optional"})
    assert config.redis == RedisOptions(ca_file=str(ca), cert_reqs="optional")


async def test_the_password_comes_from_the_environment(tmp_path: Path) -> None:
    secret = "pw-" + uuid.uuid4().hex
    port = free_port()
    with redis_server(tmp_path / "locked", port, "--requirepass", secret):
        store = {"url": f"redis://127.0.0.1:{port}/0"}
        config = load(tmp_path, store, env={"FRONTDESK_REDIS_PASSWORD": secret})
        assert config.redis.password == secret
        assert secret not in repr(config)  # configs end up in tracebacks and logs

        users = users_for(config)
        await users.open()
        try:
            await users.add("pat", "pat-password")
            assert await users("pat", "pat-password") is not None
        finally:
            await users.close()
        refused = store_for(load(tmp_path, store))  # no password in the environment
        with pytest.raises(StoreError, match="cannot reach") as caught:
            await refused.open()
        assert secret not in str(caught.value)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def test_rediss_with_a_ca_file_and_a_client_certificate(tmp_path: Path) -> None:
    """A redis-server that speaks TLS only and wants a client certificate: the store and the users work with
    the configured CA and certificate, and refuse a server their CA does not vouch for."""
    cert, key = self_signed(tmp_path, "frontdesk-test-redis")
    port = free_port()
    tls = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    tls += ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "yes"]
    # redis_server's own --port comes first; the second one (0: no plain-text port) wins.
    with redis_server(tmp_path / "tls", free_port(), *tls, answers_ping=False):
        wait_until(lambda: _accepts(port), what="the TLS redis-server to listen")
        url = f"rediss://127.0.0.1:{port}/0"
        trusted = RedisOptions(ca_file=str(cert), cert_file=str(cert), key_file=str(key))
        store = RedisStore(url, prefix=f"t{uuid.uuid4().hex}:", options=trusted)
        await store.open()
        try:
            await store.record_audit([])
            assert await store.attempt([("k", 1)], window=60, now=1_800_000_000.0) is None
            assert await store.attempt([("k", 1)], window=60, now=1_800_000_001.0) == "k"
        finally:
            await store.close()

        for refused in (
            RedisOptions(cert_file=str(cert), key_file=str(key)),  # the system CAs do not know this server
            RedisOptions(ca_file=str(cert)),  # no client certificate
        ):
            with pytest.raises(StoreError, match="cannot reach"):
                await RedisStore(url, options=refused).open()
