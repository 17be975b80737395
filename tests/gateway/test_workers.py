"""Two uvicorn workers (``frontdesk serve --workers 2``) on one SQLite file.

uvicorn's workers share one listening socket, so which worker answers is up to the kernel. The tests open
fresh connections until they hold keep-alive connections accepted by each worker (found through Linux
``/proc``), then send each request over a connection whose worker is known, and check after every request
that it was still that worker.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from live_gateway import AuthClient, GatewayProcess, set_cookies

from tests.support import wait_until

USERS = {"hana": "hana-password-1", "ivan": "ivan-password-2", "jo": "jo-password-333"}
ACCESS_TTL = 2.0
LOGOUT_DEADLINE = 10.0  # generous; the engine promises ~1 s (session rows cached at most 0.5 s per worker)
BURST = 50
PER_USER = 3


@pytest.fixture(scope="module")
def gw(gateway_factory: Any) -> GatewayProcess:
    return gateway_factory(
        "workers",
        workers=2,
        users=USERS,
        tokens={"access_ttl": f"{ACCESS_TTL:g}s", "refresh_margin": "1s", "rotation_grace": "30s"},
        login={"max_attempts_per_user": PER_USER},
    )


def on_worker(gw: GatewayProcess, client: AuthClient, pid: int, method: str, path: str, **kw: Any) -> httpx.Response:
    response = client.request(method, path, **kw)
    assert gw.worker_of(response) == pid, "the pinned connection was re-opened to another worker"
    return response


def test_a_logout_in_one_worker_is_honoured_by_the_other(gw: GatewayProcess) -> None:
    clients = gw.clients_per_worker(1)
    (pid_a, (a,)), (pid_b, (b,)) = sorted(clients.items())
    try:
        # Log in on worker A; worker B accepts the session and caches it (state and access token).
        login = {"username": "hana", "password": USERS["hana"]}
        assert on_worker(gw, a, pid_a, "POST", "/auth/login", json=login).status_code == 200
        b.cookie = a.cookie
        for _ in range(3):
            r = on_worker(gw, b, pid_b, "GET", "/auth/session")
            assert r.status_code == 200, r.text
        a.cookie = b.cookie  # B may have rotated the cookie (short access tokens): one browser, one cookie
        assert on_worker(gw, a, pid_a, "GET", "/auth/session").status_code == 200
        token = a.cookie
        b.cookie = token

        # Log out on worker A ...
        assert on_worker(gw, a, pid_a, "POST", "/auth/logout").status_code == 204
        # ... and worker B stops honouring the session (poll with a generous deadline; no timing asserted).
        started = time.monotonic()

        def refused() -> httpx.Response | None:
            r = on_worker(gw, b, pid_b, "GET", "/auth/session", cookie=token, follow=False)
            assert r.status_code in (200, 401), r.text
            return r if r.status_code == 401 else None

        r = wait_until(refused, timeout=LOGOUT_DEADLINE, interval=0.02, what="worker B to refuse the session")
        print(f"logout honoured by the other worker after {time.monotonic() - started:.3f} s")
        assert r.json()["error"] == "session_revoked"

        # From then on, every worker refuses it, on fresh connections too.
        for _ in range(20):
            with gw.client() as fresh:
                assert fresh.session(cookie=token, follow=False).status_code == 401
    finally:
        a.close()
        b.close()


def test_burst_at_expiry_across_two_workers_rotates_once(gw: GatewayProcess) -> None:
    with gw.client() as client:
        assert client.login("ivan", USERS["ivan"]).status_code == 200
        logged_in = time.time()
        token = client.cookie
        start_claims = client.claims()
    assert token is not None
    # Connections to both workers, 25 each; then let the access token minted at login run out.
    clients = gw.clients_per_worker(BURST // 2)
    everyone = [c for cs in clients.values() for c in cs]
    try:
        time.sleep(max(0.0, logged_in + ACCESS_TTL + 0.3 - time.time()))
        barrier = threading.Barrier(len(everyone))

        def one(client: AuthClient) -> httpx.Response:
            barrier.wait(timeout=60)
            return client.request("GET", "/auth/session", cookie=token, follow=False)

        with ThreadPoolExecutor(max_workers=len(everyone)) as pool:
            results = list(pool.map(one, everyone))

        assert [r.status_code for r in results] == [200] * len(results), [
            r.text for r in results if r.status_code != 200
        ]
        # Which worker really answered each request (the connections are still open).
        answered_by = {gw.worker_of(r) for r in results}
        assert answered_by == set(clients), "both workers must have served part of the burst"
        new = [c for r in results for c in set_cookies(r)]
        assert new, "the burst at expiry must rotate the refresh token"
        jtis = {c.claims()["jti"] for c in new}
        assert len(jtis) == 1, f"{len(jtis)} different refresh tokens: the session rotated more than once"
        row = gw.session_row(start_claims["sid"])
        assert row is not None and row["revoked_at"] is None
        assert (row["previous_jti"], row["current_jti"]) == (start_claims["jti"], jtis.pop())
    finally:
        for c in everyone:
            c.close()


def test_login_rate_limit_is_shared_by_the_workers(gw: GatewayProcess) -> None:
    clients = gw.clients_per_worker(1)
    (pid_a, (a,)), (pid_b, (b,)) = sorted(clients.items())
    wrong = {"username": "jo", "password": "not-jos-password"}
    try:
        # Wrong passwords, alternating between the workers: one counter for both.
        for i in range(PER_USER):
            client, pid = (a, pid_a) if i % 2 == 0 else (b, pid_b)
            assert on_worker(gw, client, pid, "POST", "/auth/login", json=wrong).status_code == 401
        for client, pid in ((a, pid_a), (b, pid_b)):
            r = on_worker(gw, client, pid, "POST", "/auth/login", json={"username": "jo", "password": USERS["jo"]})
            assert r.status_code == 429, r.text
            assert int(r.headers["retry-after"]) >= 1
        # Another user is not affected, on either worker.
        hana = {"username": "hana", "password": USERS["hana"]}
        assert on_worker(gw, a, pid_a, "POST", "/auth/login", json=hana).status_code == 200
        assert on_worker(gw, b, pid_b, "POST", "/auth/login", json=hana).status_code == 200
    finally:
        a.close()
        b.close()
