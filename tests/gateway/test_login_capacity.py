"""Password hashing cannot be used to starve logins (issue 8, item 4), against a real ``frontdesk serve``.

Hashes run on a bounded pool with a bounded wait queue; a full queue answers 503 + ``Retry-After`` at once,
and one client address may have only ``login.max_concurrent_per_address`` logins in progress. The assertions
count hashes and order responses instead of timing them: "the legitimate login finished while the burst was
still being refused", "every 503 arrived before the first hashed answer".
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from live_gateway import GatewayProcess

WORKERS = 2
PER_ADDRESS = 2
ATTACKERS = 40  # concurrent connections of one address, each sending login after login


@pytest.fixture(scope="module")
def gw(gateway_factory: Any) -> GatewayProcess:
    return gateway_factory(
        "hashing",
        users={"erin": "erin-password-1"},
        login={"hash_workers": WORKERS, "hash_queue": 8, "max_concurrent_per_address": PER_ADDRESS},
    )


def _client(gw: GatewayProcess, address: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    transport = httpx.AsyncHTTPTransport(local_address=address, limits=limits)
    return httpx.AsyncClient(base_url=gw.url, transport=transport, timeout=120.0)


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/auth/login", json={"username": username, "password": password}, headers={"X-CSRF": "1"})


async def test_a_burst_from_one_address_does_not_starve_a_login_from_another(gw: GatewayProcess) -> None:
    answered = asyncio.Event()
    legit_done = asyncio.Event()
    statuses: list[int] = []
    hashed_during_legit = 0  # burst answers that needed a hash, counted while the legitimate login ran
    legit_running = False

    async def attacker(client: httpx.AsyncClient, number: int) -> None:
        nonlocal hashed_during_legit
        attempt = 0
        while not legit_done.is_set():
            # Unknown usernames (the dummy hash), a fresh one each time: no per-user limit gets involved.
            attempt += 1
            response = await _login(client, f"nobody-{number}-{attempt}", "wrong-password")
            statuses.append(response.status_code)
            answered.set()
            if response.status_code == 401 and legit_running:
                hashed_during_legit += 1
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["error"] == "rate_limited"
                await asyncio.sleep(0.01)  # a hot loop, but leave the shared test machine some air

    async with _client(gw, "127.0.0.2", ATTACKERS) as burst, _client(gw, "127.0.0.3", 1) as other:
        tasks = [asyncio.create_task(attacker(burst, n)) for n in range(ATTACKERS)]
        try:
            await asyncio.wait_for(answered.wait(), 60)  # the whole burst is in flight by now
            legit_running = True
            legit = await _login(other, "erin", "erin-password-1")
            legit_running = False
            legit_done.set()
            await asyncio.gather(*tasks)
        finally:
            legit_done.set()
            for task in tasks:
                task.cancel()
    assert legit.status_code == 200, legit.text
    # The legitimate login waited behind at most the burst's own share of the pool (its address cap, plus
    # what the other worker hashed meanwhile), never behind the whole burst (ATTACKERS hashes and more).
    assert hashed_during_legit <= 3 * PER_ADDRESS, statuses
    assert statuses.count(429) > statuses.count(401)


@pytest.fixture(scope="module")
def tiny(gateway_factory: Any) -> GatewayProcess:
    return gateway_factory(
        "hashing-tiny",
        users={"fay": "fay-password-1"},
        login={"hash_workers": 1, "hash_queue": 1, "max_concurrent_per_address": 100},
    )


async def test_a_full_hash_queue_answers_503_with_retry_after_at_once(tiny: GatewayProcess) -> None:
    order: list[int] = []

    async def one(client: httpx.AsyncClient) -> httpx.Response:
        response = await _login(client, "fay", "wrong-password")
        order.append(response.status_code)
        return response

    async with _client(tiny, "127.0.0.4", 12) as client:
        responses = await asyncio.gather(*(one(client) for _ in range(12)))
    overloaded = [r for r in responses if r.status_code == 503]
    hashed = [r for r in responses if r.status_code == 401]
    assert overloaded, order
    assert len(hashed) >= 2  # one hashing, one waiting: both admitted
    for response in overloaded:
        assert response.json()["error"] == "overloaded"
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["content-type"] == "application/json"
    # "At once": every refusal came back before the first answer that had to wait for a hash.
    assert order.index(401) > max(i for i, status in enumerate(order) if status == 503), order
    # And the gateway is fine afterwards.
    async with _client(tiny, "127.0.0.5", 1) as client:
        assert (await _login(client, "fay", "fay-password-1")).status_code == 200
