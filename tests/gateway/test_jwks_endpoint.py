"""``/.well-known/jwks.json`` is a cached document that never waits for a thread (issue 8, item 7).

In-process: with Python's default thread pool completely blocked the JWKS still answers. Live: during a login
burst that saturates the hashing pool of a real ``frontdesk serve``, the JWKS answers before the burst's next
hash completes, and after ``frontdesk keys rotate`` the document changes (the key watcher rebuilt it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_gateway import GatewayProcess, run_in_thread

from frontdesk.gateway.app import create_app
from frontdesk.gateway.cli import main as cli_main
from frontdesk.gateway.config import load_config
from frontdesk.gateway.key_settings import KeySettings
from frontdesk.gateway.keys import access_keyring, watch_keys
from tests.support import wait_until, wait_until_async

SECRETS = {"FRONTDESK_ACCESS_SECRET": "a" * 40, "FRONTDESK_REFRESH_SECRET": "r" * 40}
WORKERS = 2


def _kids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {k["kid"] for k in response.json()["keys"]}


async def test_jwks_answers_while_the_default_thread_pool_is_blocked(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text('[store]\nurl = "memory://"\n[keys]\nalgorithm = "EdDSA"\n')
    assert cli_main(["keys", "rotate", "--config", str(config_path)]) == 0
    gateway = create_app(load_config(config_path, env=SECRETS))
    loop = asyncio.get_running_loop()
    blocked, release = concurrent.futures.ThreadPoolExecutor(1), threading.Event()
    loop.set_default_executor(blocked)
    busy = loop.run_in_executor(None, release.wait, 30)  # the only default thread is taken
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client:
            # wait_for only turns a hang into a failure; a working endpoint answers without any thread.
            response = await asyncio.wait_for(client.get("/.well-known/jwks.json"), 20)
        assert len(_kids(response)) == 1
        assert response.headers["cache-control"].startswith("public")
    finally:
        release.set()
        await busy
        blocked.shutdown()


def _watch_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "frontdesk-keys"]


async def test_the_key_watcher_is_a_pair_of_start_and_stop_hooks(tmp_path: Path) -> None:
    """``watch_keys`` returns hooks and touches nothing else; the gateway runs them in its lifespan."""
    config_path = tmp_path / "config.toml"
    config_path.write_text('[store]\nurl = "memory://"\n[keys]\nalgorithm = "EdDSA"\npublish_ahead = "0s"\n')
    assert cli_main(["keys", "rotate", "--config", str(config_path)]) == 0
    config = load_config(config_path, env=SECRETS)
    ring = access_keyring(config.keys, config.tokens.access_secret)
    start, stop = watch_keys(ring, 0.05)
    assert _watch_tasks() == []  # nothing runs until the caller starts it
    await start()
    assert len(_watch_tasks()) == 1
    assert cli_main(["keys", "rotate", "--config", str(config_path)]) == 0
    # the watcher reloads the directory: the new key appears in the ring
    await wait_until_async(lambda: len(ring.keys) == 2, what="the rotated key in the ring")
    await stop()
    assert _watch_tasks() == []
    # A shared-secret ring has nothing to reload: both hooks do nothing.
    start, stop = watch_keys(access_keyring(KeySettings(), "s" * 40), 0.05)
    await start()
    assert _watch_tasks() == []
    await stop()
    gateway = create_app(config)
    # the watcher's hooks, the engine's invalidation watch, the proxy's close, and the metrics sampler's pair
    # ([metrics] is on by default)
    assert len(gateway.on_startup) == 3 and len(gateway.on_shutdown) == 4


@pytest.fixture(scope="module")
def gw(gateway_factory: Any) -> GatewayProcess:
    made = gateway_factory(
        "jwks",
        start=False,
        keys={"algorithm": "EdDSA", "reload_interval": "200ms", "publish_ahead": "1s"},
        login={"hash_workers": WORKERS, "hash_queue": 8, "max_concurrent_per_address": 4},
    )
    # In a thread: the command writes its audit row with asyncio.run, and this fixture may run inside a loop.
    assert run_in_thread(lambda: cli_main(["keys", "rotate", "--config", str(made.config_path)])) == 0
    return made.start()


async def test_jwks_answers_during_a_login_burst_and_changes_after_a_rotation(gw: GatewayProcess) -> None:
    limits = httpx.Limits(max_connections=40, max_keepalive_connections=40)
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2", limits=limits)
    stop, answered = asyncio.Event(), asyncio.Event()
    hashed = 0  # burst answers that needed a hash

    async def attacker(client: httpx.AsyncClient, number: int) -> None:
        nonlocal hashed
        attempt = 0
        while not stop.is_set():
            attempt += 1
            body = {"username": f"nobody-{number}-{attempt}", "password": "wrong-password"}
            response = await client.post("/auth/login", json=body, headers={"X-CSRF": "1"})
            hashed += response.status_code == 401
            answered.set()
            if response.status_code != 401:
                await asyncio.sleep(0.01)

    async with (
        httpx.AsyncClient(base_url=gw.url, transport=transport, timeout=120) as burst,
        httpx.AsyncClient(base_url=gw.url, timeout=30) as verifier,
    ):
        tasks = [asyncio.create_task(attacker(burst, n)) for n in range(40)]
        try:
            await asyncio.wait_for(answered.wait(), 60)  # the hashing pool is busy from here on
            for _ in range(3):
                before = hashed
                jwks = await verifier.get("/.well-known/jwks.json")
                # No queueing behind the hashes: at most the ones already running finished meanwhile.
                assert hashed - before <= WORKERS
                assert len(_kids(jwks)) == 1
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    first = _kids(httpx.get(f"{gw.url}/.well-known/jwks.json"))
    assert run_in_thread(lambda: cli_main(["keys", "rotate", "--config", str(gw.config_path)])) == 0
    both = wait_until(
        lambda: (kids := _kids(httpx.get(f"{gw.url}/.well-known/jwks.json"))) != first and kids,
        what="the rotated key in the JWKS",
    )
    assert first < both and len(both) == 2
