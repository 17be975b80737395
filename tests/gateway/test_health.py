"""``/healthz`` (the process answers) and ``/readyz`` (store reachable and migrated, keys loaded, user directory
open), against a real ``frontdesk serve`` and its real SQLite file: the store is removed, locked by another
process and made unopenable while the gateway runs, and ``/readyz`` says so."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from live_gateway import GatewayProcess

from frontdesk.gateway.health import Health
from frontdesk.gateway.users import UserDirectory
from frontdesk.middleware.store import MemoryStore
from frontdesk.middleware.tokens import KeyRing
from tests.support import free_port, wait_until

SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy")


@pytest.fixture(scope="module")
def gw(gateway_factory: Callable[..., GatewayProcess]) -> GatewayProcess:
    # Routes to an address where nothing listens whose prefixes cover the health endpoints ("/" itself is refused
    # by the config): the gateway still answers them itself, they are never proxied.
    dead = f"http://127.0.0.1:{free_port()}"
    routes = [{"prefix": p, "upstream": dead, "auth": "none", "csrf": False} for p in ("/healthz", "/readyz", "/api/")]
    return gateway_factory("health", routes=routes)


def _readyz(gw: GatewayProcess) -> httpx.Response:
    return httpx.get(f"{gw.url}/readyz", timeout=10)


def _assert_secured(response: httpx.Response) -> None:
    for name in SECURITY_HEADERS:
        assert name in response.headers, f"{response.request.url.path} lacks {name}"
    assert response.headers["cache-control"] == "no-store"


def test_healthz_and_readyz_answer_ok_even_under_routes_covering_them(gw: GatewayProcess) -> None:
    health = httpx.get(f"{gw.url}/healthz", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json() == {"status": "ok"}
    _assert_secured(health)
    ready = _readyz(gw)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready"}
    _assert_secured(ready)
    # ... while the routes do go to the (dead) upstream
    assert httpx.get(f"{gw.url}/api/x", timeout=10).status_code == 502
    assert httpx.get(f"{gw.url}/readyz/x", timeout=10).status_code == 502


def test_head_works_and_other_methods_are_refused(gw: GatewayProcess) -> None:
    for path in ("/healthz", "/readyz"):
        head = httpx.head(f"{gw.url}{path}", timeout=10)
        assert head.status_code == 200
        assert head.content == b""
        refused = httpx.post(f"{gw.url}{path}", timeout=10)
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, HEAD"
        assert refused.json()["error"] == "method_not_allowed"
        _assert_secured(refused)


def test_never_rate_limited(gw: GatewayProcess) -> None:
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        statuses = {client.get(path).status_code for _ in range(100) for path in ("/healthz", "/readyz")}
    assert statuses == {200}


def _not_ready(gw: GatewayProcess, *words: str) -> dict[str, object]:
    def check() -> dict[str, object] | None:
        r = _readyz(gw)
        if r.status_code != 503:
            return None
        _assert_secured(r)
        body: dict[str, object] = r.json()
        return body

    body = wait_until(check, what="/readyz to answer 503")
    assert body["status"] == "not ready"
    reason = str(body["reason"])
    for word in words:
        assert word in reason, reason
    return body


def _ready_again(gw: GatewayProcess) -> None:
    wait_until(lambda: _readyz(gw).status_code == 200, what="/readyz to answer 200 again")


@pytest.fixture
def moved_aside(gw: GatewayProcess) -> Iterator[None]:
    aside = gw.db_path.with_suffix(".aside")
    os.rename(gw.db_path, aside)
    try:
        yield
    finally:
        os.rename(aside, gw.db_path)


def test_store_file_removed_is_not_ready(gw: GatewayProcess, moved_aside: None) -> None:
    _not_ready(gw, "store", "no longer exists")
    # ... and the process is still alive
    assert httpx.get(f"{gw.url}/healthz", timeout=10).status_code == 200


def test_store_back_in_place_is_ready(gw: GatewayProcess) -> None:
    _ready_again(gw)


def test_store_locked_by_another_process_is_not_ready(gw: GatewayProcess) -> None:
    _ready_again(gw)
    other = sqlite3.connect(gw.db_path, timeout=10, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock, as a stuck writer would
        _not_ready(gw, "store", "locked")
        other.execute("ROLLBACK")
        _ready_again(gw)
    finally:
        other.close()


def test_store_file_unopenable_is_not_ready(gw: GatewayProcess) -> None:
    # Something at the store's path that SQLite cannot open for reading and writing (the tests run as root, for
    # whom file modes do not apply, so a directory stands in for a file its user may not read).
    _ready_again(gw)
    aside = gw.db_path.with_suffix(".real")
    os.rename(gw.db_path, aside)
    try:
        gw.db_path.mkdir()
        _not_ready(gw, "store", "cannot be opened")
    finally:
        gw.db_path.rmdir()
        os.rename(aside, gw.db_path)
    _ready_again(gw)


def test_store_not_migrated_is_not_ready(gw: GatewayProcess) -> None:
    _ready_again(gw)
    db = sqlite3.connect(gw.db_path, timeout=10, isolation_level=None)
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        db.execute("PRAGMA user_version = 1")
        try:
            _not_ready(gw, "store", "schema")
        finally:
            db.execute(f"PRAGMA user_version = {int(version)}")
    finally:
        db.close()
    _ready_again(gw)


async def test_a_stopping_gateway_is_not_ready_but_still_healthy() -> None:
    health = Health(MemoryStore(), KeyRing.from_secrets("s" * 32), None)
    assert (await health.response("/readyz", "GET")).status == 200
    health.shutting_down = True  # what Gateway.begin_shutdown sets at SIGTERM
    stopping = await health.response("/readyz", "GET")
    assert (stopping.status, stopping.body) == (503, b'{"status":"not ready","reason":"shutting down"}')
    assert (await health.response("/healthz", "GET")).status == 200


async def test_no_signing_key_or_a_closed_user_directory_is_not_ready(tmp_path: Path) -> None:
    unsigned = Health(MemoryStore(), KeyRing([]), None)  # e.g. a [keys] directory whose keys all retired
    r = await unsigned.response("/readyz", "GET")
    assert (r.status, r.body) == (503, b'{"status":"not ready","reason":"no access-token signing key is loaded"}')
    users = UserDirectory(str(tmp_path / "users.db"))  # never opened (or closed at shutdown)
    closed = Health(MemoryStore(), KeyRing.from_secrets("s" * 32), users)
    r = await closed.response("/readyz", "HEAD")
    assert r.status == 503 and b"the user directory is not open" in r.body
