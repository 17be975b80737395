"""Fleet benchmark: req/s of 1 vs 2 ``frontdesk serve`` instances sharing one Redis, behind the README's nginx
config, and the Redis commands each proxied request, login and refresh costs.

Run from the repository root (about a minute)::

    python tests/bench/fleet_bench.py                    # 1 and 2 instances, 10 s each, 16 connections, 20 sessions
    python tests/bench/fleet_bench.py --instances 1,2,3 --duration 20 --conns 64
    python tests/bench/fleet_bench.py --sizing           # also: Redis memory per session (10,000 sessions)

It starts a redis-server (no persistence), the raw upstream of ``proxy_bench.py``, N instances (one worker each,
``[store] url`` = that Redis, users in Redis too) and nginx with ``deploy/nginx-fleet.conf`` (only
its ``server`` lines and its port changed), logs one user in, and drives ``GET /api/ping`` through nginx with
the refresh cookie (wrk when installed, else a Python load generator). Store commands are counted by Redis itself
(``INFO commandstats``, before and after), so they include every worker's reads: session rows (HGETALL), the
revocation epoch (GET, a few a second per worker whatever the load) and scripts (EVALSHA/EVAL).

This is a benchmark, not a test: nothing here asserts; read the table. On a 2-core machine the load generator,
nginx, Redis and the instances share the cores, so a second instance mostly shows what it costs, not a speed-up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from proxy_bench import ROOT, free_port, run_load, serve_cmd, started, wait_port
from redis import Redis

FLEET_CONF = ROOT / "deploy" / "nginx-fleet.conf"
USER, PASSWORD = "bench", "bench-password-1"
SECRETS = {
    "FRONTDESK_ACCESS_SECRET": "fleet-bench-access-secret-0123456789abcdef0123456789",
    "FRONTDESK_REFRESH_SECRET": "fleet-bench-refresh-secret-0123456789abcdef012345678",
}


def nginx_conf(instances: list[int], listen: int, tmp: Path) -> str:
    """The README's fleet config with its three ``server`` lines replaced by one per instance."""
    lines = FLEET_CONF.read_text().splitlines(keepends=True)
    servers = [i for i, line in enumerate(lines) if line.strip().startswith("server 127.0.0.1:")]
    indent = lines[servers[0]][: len(lines[servers[0]]) - len(lines[servers[0]].lstrip())]
    ours = [f"{indent}server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n" for port in instances]
    text = "".join(lines[: servers[0]] + ours + lines[servers[-1] + 1 :])
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    private = "".join(f"    {n}_temp_path {tmp / n};\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return text.replace("http {\n", f"http {{\n    access_log off;\n{private}", 1)


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    binary = shutil.which("redis-server") or sys.exit("redis-server is not installed")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)]
    with started(args, port):
        yield f"redis://127.0.0.1:{port}/0"


def write_config(workdir: Path, redis_url: str, upstream: int) -> Path:
    config = workdir / "config.toml"
    config.write_text(
        f'[store]\nurl = "{redis_url}"\n\n'
        '[server]\ntrusted_proxies = ["127.0.0.1"]\n\n[metrics]\naddress = ""\n\n'
        "[login]\nmax_attempts_per_address = 100000\nmax_attempts_per_user = 100000\n\n"
        f'[[routes]]\nprefix = "/api/"\nupstream = "http://127.0.0.1:{upstream}"\n'
    )
    return config


def add_user(config: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from frontdesk.gateway.backends import users_for
    from frontdesk.gateway.config import load_config

    async def add() -> None:
        directory = users_for(load_config(config, env=SECRETS, require_secrets=False))
        await directory.open()
        try:
            await directory.add(USER, PASSWORD)
        finally:
            await directory.close()

    asyncio.run(add())


@contextlib.contextmanager
def instance(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, **SECRETS}
    cmd = [sys.executable, "-m", "frontdesk.gateway.cli", "serve", "--config", str(config), "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1", "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=config.parent, env=env, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, proc, timeout=60)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_sessions(port: int, cookies: list[str], conns: int, duration: float, tmp: Path) -> tuple[float, int]:
    """wrk with each request carrying the next of ``cookies`` (many active sessions, as in production): req/s
    and the count of errors (non-2xx and socket errors)."""
    script = tmp / "sessions.lua"
    listed = ", ".join(f'"{c}"' for c in cookies)
    script.write_text(
        f"local cookies = {{{listed}}}\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n"
        '  return wrk.format(nil, nil, {["Cookie"] = cookies[i % #cookies + 1], ["X-CSRF"] = "1"})\nend\n'
    )
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s", "--timeout", "10s", "-s", str(script)]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}/api/ping"], capture_output=True, text=True, check=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    counted = re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout):? (\d+)", out.stdout)
    errors = sum(int(n) for n in counted)
    return rps, errors


def commandstats(redis: Redis) -> dict[str, int]:
    stats = redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


def store_cost(redis: Redis, action: object) -> dict[str, int]:
    before = commandstats(redis)
    action()  # type: ignore[operator]
    stats = delta(commandstats(redis), before)
    stats.pop("info", None)
    stats.pop("get", None)  # epoch reads happen on the clock, not per action
    return stats


def run(count: int, args: argparse.Namespace, tmp: Path, redis_url: str, upstream: int) -> None:
    configs = []
    for i in range(count):
        (tmp / f"i{count}-{i}").mkdir()
        configs.append(write_config(tmp / f"i{count}-{i}", redis_url, upstream))
    if count == min(int(n) for n in args.instances.split(",")):
        add_user(configs[0])  # into Redis: every instance of every round logs it in
    ports = [free_port() for _ in configs]
    listen = free_port()
    nginx_tmp = tmp / f"nginx{count}"
    nginx_tmp.mkdir()
    conf = nginx_tmp / "nginx.conf"
    conf.write_text(nginx_conf(ports, listen, nginx_tmp))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    nginx_cmd = [binary, "-p", str(nginx_tmp), "-c", str(conf), "-e", str(nginx_tmp / "error.log"),
                 "-g", f"daemon off; pid {nginx_tmp / 'nginx.pid'};"]  # fmt: skip
    redis = Redis.from_url(redis_url, decode_responses=True)
    with contextlib.ExitStack() as stack:
        for config, port in zip(configs, ports, strict=True):
            stack.enter_context(instance(config, port))
        stack.enter_context(started(nginx_cmd, listen))
        base = f"http://127.0.0.1:{listen}"
        cookie: dict[str, str] = {}

        def login() -> None:
            r = httpx.post(base + "/auth/login", json={"username": USER, "password": PASSWORD}, headers={"X-CSRF": "1"})
            r.raise_for_status()
            cookie["value"] = r.headers["set-cookie"].split(";", 1)[0]

        def refresh() -> None:
            r = httpx.post(base + "/auth/refresh", headers={"X-CSRF": "1", "Cookie": cookie["value"]})
            r.raise_for_status()
            cookie["value"] = r.headers["set-cookie"].split(";", 1)[0]

        login_cost = store_cost(redis, login)
        time.sleep(1.1)  # past the refresh coalescing second, so the refresh really rotates
        refresh_cost = store_cost(redis, refresh)
        headers = {"Cookie": cookie["value"], "X-CSRF": "1"}
        probe = httpx.get(base + "/api/ping", headers=headers)
        if probe.status_code != 200:
            sys.exit(f"GET /api/ping answered {probe.status_code}: {probe.text[:300]}")
        cookies = [cookie["value"]]
        use_wrk = shutil.which("wrk") is not None
        while use_wrk and len(cookies) < args.sessions:  # many active sessions (wrk picks one per request)
            login()
            cookies.append(cookie["value"])
        # wrk never follows Set-Cookie: let every instance mint for every session now (a mint more than the
        # rotation grace after the last rotation rotates the refresh token), keeping the cookies current, so the
        # measured load runs on current tokens as browsers' would.
        with httpx.Client(base_url=base, headers={"X-CSRF": "1"}) as http:
            for i, value in enumerate(cookies):
                for _ in range(2 * count):
                    r = http.get("/api/ping", headers={"Cookie": value})
                    r.raise_for_status()
                    if "set-cookie" in r.headers:
                        value = r.headers["set-cookie"].split(";", 1)[0]
                cookies[i] = value

        def load(seconds: float) -> tuple[float, int]:
            if use_wrk:
                return run_sessions(listen, cookies, args.conns, seconds, tmp)
            result = run_load(listen, "/api/ping", args.conns, seconds, headers, use_wrk)
            return result.rps, result.errors

        load(2.0)  # warm every worker's caches
        before, started_at = commandstats(redis), time.monotonic()
        rps, errors = load(args.duration)
        elapsed = time.monotonic() - started_at
        ops = delta(commandstats(redis), before)
        requests = max(1, round(rps * args.duration))
        reads = ops.get("hgetall", 0)
        columns = [f"{count:>9}", f"{rps:>8.0f}", f"{errors:>6}", f"{len(cookies):>8}", f"{reads / elapsed:>15.1f}"]
        columns += [f"{reads / requests:>17.5f}", f"{ops.get('get', 0) / elapsed:>13.1f}"]
        print(" | ".join(columns))
        print(f"{'':>9}   store commands per login {login_cost}, per refresh {refresh_cost}")


def sizing(redis_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    from frontdesk.middleware.store.base import SessionRecord
    from frontdesk.middleware.store.redis import RedisStore

    redis = Redis.from_url(redis_url, decode_responses=True)
    count = 10_000

    async def fill() -> None:
        store = RedisStore(redis_url, prefix="sizing:")
        await store.open()
        now = time.time()
        for i in range(count):
            await store.create_session(
                SessionRecord(
                    sid=f"{i:024d}", user_id=f"user-{i % 1000:06d}", username=f"user{i % 1000}", created_at=now,
                    last_seen=now, expires_at=now + 86400, idle_expires_at=now + 3600, remember=False,
                    current_jti="j" * 22, previous_jti=None, rotated_at=now, client_address="203.0.113.7",
                    user_agent="Chrome 131 on Linux",
                )
            )
        for i in range(0, count, 10):  # some have rotated: their superseded list is filled in
            await store.rotate(f"{i:024d}", expected_jti="j" * 22, new_jti="k" * 22, now=now + 1,
                               idle_expires_at=now + 3600, remember_for=30)  # fmt: skip
        await store.close()

    before = int(redis.info("memory")["used_memory"])
    asyncio.run(fill())
    after = int(redis.info("memory")["used_memory"])
    print(f"\nRedis memory per session: {(after - before) / count:.0f} bytes ({count} sessions, 1000 users)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", default="1,2", help="comma-separated instance counts (default 1,2)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per count")
    parser.add_argument("--conns", type=int, default=16, help="concurrent connections")
    parser.add_argument("--sessions", type=int, default=20, help="active sessions in the load (needs wrk)")
    parser.add_argument("--sizing", action="store_true", help="also measure Redis memory per session")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fd-fleet-bench-") as name:
        tmp = Path(name)
        (tmp / "redis").mkdir()
        upstream = free_port()
        with redis_server(tmp / "redis") as redis_url, started(serve_cmd("raw", upstream), upstream):
            print(f"GET /api/ping via nginx, {args.conns} connections, {args.duration:g} s, one worker per instance")
            print("instances |    req/s | errors | sessions | session reads/s | session reads/req | epoch reads/s")
            for count in (int(n) for n in args.instances.split(",")):
                run(count, args, tmp, redis_url, upstream)
            if args.sizing:
                sizing(redis_url)


if __name__ == "__main__":
    main()
