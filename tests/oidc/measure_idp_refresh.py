"""Measure what keeping the provider's tokens costs: a real ``frontdesk serve --workers 2`` and the real test
provider on this machine, with a ``token = "idp"`` route to a small upstream. Not a test: numbers for the README.

1. Load: ``--sessions`` signed-in sessions each send requests back to back for ``--seconds`` through the route
   while the provider's access tokens last ``--ttl`` seconds; the provider counts its refresh grants. Printed:
   refreshes per session per hour at that TTL, the same extrapolated to a 300 s TTL (Keycloak's default), and
   the requests' latency (p50, p99, max: the requests that waited for a refresh are the tail).
2. The cost of one refresh, apart: ``--refreshes`` refresh-token grants in a row through frontdesk's own token
   client (what the worker holding the lease does), timed; the sealing and the store's compare-and-set that
   follow are timed too.

    .venv/bin/python -m tests.oidc.measure_idp_refresh --sessions 5 --seconds 40 --ttl 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))  # live_gateway, oidc_flow

import httpx
from live_gateway import GatewayProcess, make_secrets, write_config
from oidc_flow import finish_login, provider_table, start_login

from frontdesk.middleware.idp_tokens import TokenSealer
from frontdesk.middleware.oidc import TokenClient
from frontdesk.middleware.store import IdpTokenRecord
from frontdesk.middleware.store.sqlite import SqliteStore
from tests.support.live_server import serve_in_thread
from tests.support.oidc_provider import TEST_TOKEN_KEY, provider_login, running_provider


async def upstream(scope: dict[str, object], receive: object, send: object) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


def percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * q))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--ttl", type=int, default=8)
    parser.add_argument("--refreshes", type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(upstream) as up:
        workdir = Path(tmp)
        with running_provider(workdir, ttl={"AccessToken": args.ttl}) as provider:
            env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
            env.update(make_secrets(), **provider.secret_env("corp"), PYTHONUNBUFFERED="1")
            config = write_config(
                workdir / "config.toml",
                oidc=[provider_table(provider, "corp", "frontdesk")],
                routes=[{"prefix": "/idp-api/", "upstream": f"{up}/", "token": "idp"}],
            )
            gw = GatewayProcess(workdir=workdir, config_path=config, env=env, workers=2).start()
            try:
                load(gw, provider, args)
                one_refresh(gw, provider, args)
            finally:
                gw.stop()


def load(gw: GatewayProcess, provider: object, args: argparse.Namespace) -> None:
    cookies = []
    for _ in range(args.sessions):
        with gw.client() as client:
            started = start_login(client, "corp", "/")
            back = provider_login(started.authorize_url, "alice")
            assert finish_login(client, back, started.state_cookie.value).status_code == 302
            cookies.append(client.cookie)
    before = provider.counts()["grants"].get("refresh_token", 0)  # type: ignore[attr-defined]
    timings: list[float] = []
    failures: list[int] = []
    deadline = time.monotonic() + args.seconds

    def run(cookie: str) -> None:
        with gw.client() as client:
            client.cookie = cookie
            while time.monotonic() < deadline:
                began = time.perf_counter()
                r = client.request("GET", "/idp-api/x", follow=True)
                timings.append((time.perf_counter() - began) * 1000)
                if r.status_code != 200:
                    failures.append(r.status_code)

    threads = [threading.Thread(target=run, args=(c,)) for c in cookies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refreshed = provider.counts()["grants"].get("refresh_token", 0) - before  # type: ignore[attr-defined]
    per_hour = refreshed / args.sessions / (args.seconds / 3600)
    margin = min(30.0, args.ttl / 4)
    at_300 = 3600 / (300 - min(30.0, 300 / 4))
    rest = sorted(timings)
    print(
        f"load: {args.sessions} sessions x {args.seconds:g} s, {len(timings)} requests ({len(failures)} not 200),"
        f" IdP access-token TTL {args.ttl} s: {refreshed} refreshes at the provider ="
        f" {per_hour:.0f} per session per hour (one per {args.ttl - margin:g} s expected:"
        f" {3600 / (args.ttl - margin):.0f}); at a 300 s TTL that is {at_300:.1f} per session per hour"
    )
    print(
        f"request latency (ms): p50 {statistics.median(rest):.1f}  p99 {percentile(rest, 0.99):.1f}"
        f"  max {rest[-1]:.1f}"
    )


def one_refresh(gw: GatewayProcess, provider: object, args: argparse.Namespace) -> None:
    with gw.client() as client:
        started = start_login(client, "corp", "/")
        back = provider_login(started.authorize_url, "bob")
        assert finish_login(client, back, started.state_cookie.value).status_code == 302
        sid = client.claims()["sid"]
    db = sqlite3.connect(gw.db_path)
    (sealed,) = db.execute("SELECT sealed FROM idp_tokens WHERE sid = ?", (sid,)).fetchone()
    db.close()
    sealer = TokenSealer([TEST_TOKEN_KEY])
    tokens = sealer.open(sealed, sid=sid)
    token_endpoint = provider.metadata()["token_endpoint"]  # type: ignore[attr-defined]
    secret = provider.client("frontdesk").client_secret  # type: ignore[attr-defined]

    async def measure() -> tuple[list[float], list[float]]:
        refresh_token = tokens.refresh_token
        assert refresh_token is not None
        calls, local = [], []
        store = SqliteStore(Path(tempfile.mkdtemp()) / "m.db")
        await store.open()
        record = IdpTokenRecord("m", "corp", "bob", None, sealer.seal(tokens, sid="m"), time.time() + 3600)
        await store.save_idp_tokens(record)
        async with httpx.AsyncClient(timeout=10) as http:
            client = TokenClient(
                client_id="frontdesk", client_secret=secret, auth_method="client_secret_basic", http=http
            )
            warm = await client.refresh(token_endpoint, refresh_token=refresh_token)  # opens the connection
            refresh_token = warm.get("refresh_token") or refresh_token
            for _ in range(args.refreshes):
                began = time.perf_counter()
                answer = await client.refresh(token_endpoint, refresh_token=refresh_token)
                calls.append((time.perf_counter() - began) * 1000)
                refresh_token = answer.get("refresh_token") or refresh_token
                began = time.perf_counter()
                new = sealer.seal(tokens, sid="m")
                assert await store.replace_idp_tokens("m", expected=record.sealed, sealed=new)
                record = IdpTokenRecord("m", "corp", "bob", None, new, record.expires_at)
                local.append((time.perf_counter() - began) * 1000)
        await store.close()
        return sorted(calls), sorted(local)

    calls, local = asyncio.run(measure())
    print(
        f"one IdP refresh over {len(calls)} in a row (ms): provider round trip p50 {statistics.median(calls):.1f}"
        f"  p90 {percentile(calls, 0.9):.1f}  max {calls[-1]:.1f}; then seal + store compare-and-set"
        f" p50 {statistics.median(local):.2f}  max {local[-1]:.2f}"
    )


if __name__ == "__main__":
    main()
