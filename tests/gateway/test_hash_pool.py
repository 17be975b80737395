"""The bounded hashing pool and its ``[login]`` settings, in-process (the live behaviour is in
``test_login_capacity.py``)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from frontdesk.gateway.config import LoginCapacity, load_config
from frontdesk.gateway.errors import ConfigError
from frontdesk.gateway.hash_pool import HashPool, default_hash_workers
from frontdesk.gateway.users import UserDirectory
from frontdesk.middleware.auth_api import AuthAPI
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import Overloaded
from frontdesk.middleware.http import HttpRequest
from frontdesk.middleware.sessions import SessionEngine, User
from frontdesk.middleware.store import MemoryStore
from frontdesk.middleware.tokens import KeyRing

GOOD_ENV = {"FRONTDESK_ACCESS_SECRET": "a" * 32, "FRONTDESK_REFRESH_SECRET": "b" * 32}


class Gate:
    """A blocking function the test releases by hand, so "running" and "waiting" are exact, not timed."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def __call__(self, value: int) -> int:
        self.started.release()
        self.release.wait(30)
        return value


async def test_beyond_workers_plus_queue_is_refused_at_once_and_slots_come_back() -> None:
    pool, gate = HashPool(workers=2, queue=1), Gate()
    try:
        admitted = [asyncio.create_task(pool.run(gate, n)) for n in range(3)]
        await asyncio.sleep(0)
        assert pool.admitted == 3
        with pytest.raises(Overloaded) as info:
            await pool.run(gate, 99)
        assert info.value.status == 503 and info.value.retry_after >= 1
        gate.release.set()
        assert await asyncio.gather(*admitted) == [0, 1, 2]
        assert pool.admitted == 0
        assert await pool.run(gate, 4) == 4
    finally:
        gate.release.set()
        pool.close()


async def test_a_caller_that_gives_up_keeps_its_slot_until_the_hash_really_ends() -> None:
    pool, gate = HashPool(workers=1, queue=0), Gate()
    try:
        task = asyncio.create_task(pool.run(gate, 1))
        await asyncio.to_thread(gate.started.acquire)  # the hash is running
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(Overloaded):  # the thread still hashes: its memory is still in use
            await pool.run(gate, 2)
        gate.release.set()
        for _ in range(500):  # until the thread has finished and given the slot back
            if pool.admitted == 0:
                break
            await asyncio.sleep(0.01)
        assert await pool.run(gate, 3) == 3
    finally:
        gate.release.set()
        pool.close()


async def test_the_unknown_user_dummy_hash_goes_through_the_same_pool(tmp_path: Path) -> None:
    pool = HashPool(workers=1, queue=0)
    users = UserDirectory(str(tmp_path / "users.db"), hash_pool=pool)
    await users.open()
    gate = Gate()
    try:
        blocker = asyncio.create_task(pool.run(gate, 0))
        await asyncio.to_thread(gate.started.acquire)
        with pytest.raises(Overloaded):
            await users("nobody-at-all", "some-password")
        gate.release.set()
        await blocker
        assert await users("nobody-at-all", "some-password") is None
    finally:
        gate.release.set()
        await users.close()


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.hits: list[str] = []

    async def attempt(self, limits: Sequence[tuple[str, int]], *, window: float, now: float) -> str | None:
        self.hits.extend(key for key, _ in limits)
        return await super().attempt(limits, window=window, now=now)


async def test_logins_over_the_address_cap_are_refused_before_any_hash_or_count() -> None:
    release, calls = asyncio.Event(), []

    async def slow_check(username: str, password: str) -> User | None:
        calls.append(username)
        await release.wait()  # "hashing"
        return User("u1", username) if password == "right-password" else None

    store = CountingStore()
    engine = SessionEngine.from_keys(
        access_keyring=KeyRing.from_secrets("a" * 40),
        refresh_keyring=KeyRing.from_secrets("r" * 40),
        store=store,
        authenticator=slow_check,
        clock=ManualClock(),
    )
    api = AuthAPI(engine, max_concurrent_logins_per_address=2)

    def login(address: str, password: str = "wrong-password") -> HttpRequest:
        body = json.dumps({"username": "ada", "password": password}).encode()
        headers = {"x-csrf": "1", "content-type": "application/json", "host": "gw"}
        return HttpRequest("POST", "/auth/login", headers, body, client=address)

    running = [asyncio.create_task(api.handle(login("10.0.0.1"))) for _ in range(2)]
    while len(calls) < 2:
        await asyncio.sleep(0)
    hits_before = list(store.hits)
    assert hits_before  # the admitted logins were counted, so "no counter" below is a real observation
    refused = await api.handle(login("10.0.0.1"))
    assert refused.status == 429 and ("retry-after", "1") in refused.headers
    assert b'"rate_limited"' in refused.body
    assert len(calls) == 2 and store.hits == hits_before  # no hash, no counter
    other = asyncio.create_task(api.handle(login("10.0.0.2", "right-password")))  # another address: admitted
    release.set()
    assert [r.status for r in await asyncio.gather(*running)] == [401, 401]
    assert (await other).status == 200
    assert (await api.handle(login("10.0.0.1"))).status == 401  # slots given back
    assert api.logins_in_progress is not None and api.logins_in_progress._counts == {}


def test_login_capacity_defaults_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("")
    config = load_config(path, env=GOOD_ENV)
    assert config.login_capacity == LoginCapacity(default_hash_workers(), 16, 4)
    path.write_text("[login]\nhash_workers = 3\nhash_queue = 0\nmax_concurrent_per_address = 1\n")
    assert load_config(path, env=GOOD_ENV).login_capacity == LoginCapacity(3, 0, 1)


def test_bad_login_capacity_is_reported_in_plain_words(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[login]\nhash_workers = 0\nhash_queue = -1\nmax_concurrent_per_address = "many"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env=GOOD_ENV)
    text = "\n".join(info.value.problems)
    assert "login.hash_workers: 0 must be a whole number above zero" in text
    assert "login.hash_queue: -1 must be a whole number, zero or more" in text
    assert "login.max_concurrent_per_address: 'many' must be a whole number above zero" in text
