"""A login burst from one address against a real ``frontdesk serve``: how long does someone else's login take,
and how far does the gateway's memory grow? (issue 8, item 4)

    python tests/bench/login_burst_bench.py [--burst 100] [--addresses 1]

Sends ``--burst`` concurrent logins (unknown usernames, so no per-user limit interferes) from
``--addresses`` source addresses (127.0.0.2, ...), then, once they are all in flight, one legitimate login from
127.0.0.250, and a ``/.well-known/jwks.json`` fetch (EdDSA keys). Prints their latencies, the burst's answers
by status, and the server's RSS before and at its peak (VmHWM). Run it with another checkout first on
``PYTHONPATH`` to compare before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from live_gateway import GatewayProcess, make_secrets, write_config


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/auth/login", json={"username": username, "password": password}, headers={"X-CSRF": "1"})


async def burst(gw: GatewayProcess, size: int, addresses: int) -> None:
    clients = []
    for n in range(addresses):
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + n}", limits=limits)
        clients.append(httpx.AsyncClient(base_url=gw.url, transport=transport, timeout=300.0))
    legit_transport = httpx.AsyncHTTPTransport(local_address="127.0.0.250")
    legit_client = httpx.AsyncClient(base_url=gw.url, transport=legit_transport, timeout=300.0)
    pid = gw.worker_pids()[0]
    rss_before = rss_kib(pid, "VmRSS")
    started = time.perf_counter()
    tasks = [asyncio.create_task(login(clients[i % addresses], f"nobody-{i}", "wrong-password")) for i in range(size)]
    await asyncio.sleep(0.3)  # every burst request is on the wire
    burst_done = asyncio.Event()
    jwks_seconds: list[float] = []

    async def poll_jwks() -> None:  # a verifier refetching the JWKS every 0.2 s while the burst runs
        while not burst_done.is_set():
            start = time.perf_counter()
            assert (await legit_client.get("/.well-known/jwks.json")).status_code == 200
            jwks_seconds.append(time.perf_counter() - start)
            await asyncio.sleep(0.2)

    poller = asyncio.create_task(poll_jwks())
    legit_start = time.perf_counter()
    legit = await login(legit_client, "ada", "ada-password-1")
    legit_seconds = time.perf_counter() - legit_start
    answers = await asyncio.gather(*tasks)
    burst_seconds = time.perf_counter() - started
    burst_done.set()
    await poller
    statuses = collections.Counter(r.status_code for r in answers)
    jwks_seconds.sort()
    median, worst = jwks_seconds[len(jwks_seconds) // 2], jwks_seconds[-1]
    print(f"JWKS during the burst: {len(jwks_seconds)} fetches, median {median:.3f} s, worst {worst:.3f} s")
    print(f"legitimate login: {legit.status_code} in {legit_seconds:.2f} s")
    print(f"burst of {size} from {addresses} address(es): {dict(sorted(statuses.items()))} in {burst_seconds:.2f} s")
    print(f"server RSS: {rss_before / 1024:.0f} MiB before, peak {rss_kib(pid, 'VmHWM') / 1024:.0f} MiB")
    for client in [*clients, legit_client]:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--addresses", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = write_config(workdir / "config.toml", keys={"algorithm": "EdDSA"})
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")} | make_secrets()
        rotate = [sys.executable, "-m", "frontdesk.gateway.cli", "keys", "rotate", "--config", str(config)]
        subprocess.run(rotate, check=True)
        gw = GatewayProcess(workdir=workdir, config_path=config, env=env)
        gw.add_user("ada", "ada-password-1")
        gw.start()
        try:
            asyncio.run(burst(gw, args.burst, args.addresses))
        finally:
            gw.stop()


if __name__ == "__main__":
    main()
