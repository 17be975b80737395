"""Redis operations per login, per refresh and per proxied request, counted with MONITOR on a real redis-server.

Run from the repository root (takes about half a minute)::

    .venv/bin/python -m tests.bench.store_ops_bench [--logins 20] [--requests 1000]

One ``frontdesk serve`` (one worker) with ``[store] url = "redis://..."`` and a route to the demo upstream;
``redis-cli monitor`` records every command the server runs. Each phase is bracketed by ``ECHO`` markers;
a "round trip" is a command a client sent (one ``EVALSHA`` counts once), a "script op" one a Lua script ran.
The background work (the session watch re-reading rows, the live-session gauge) runs all along: an idle phase
of the same length as the proxied one is measured too, so the figures can be told apart.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))  # live_gateway, as the gateway tests import it

from live_gateway import AuthClient, GatewayProcess, make_secrets, write_config  # noqa: E402

from tests.support import ServerProcess, free_port, wait_until  # noqa: E402
from tests.support.redis_servers import redis_binary, redis_server  # noqa: E402

_LINE = re.compile(r'^\S+ \[\d+ (?P<who>[^\]]+)\] "(?P<cmd>[^"]+)"(?: "(?P<arg>[^"]*)")?')


def phases(monitor_log: Path) -> dict[str, tuple[Counter[str], Counter[str]]]:
    """Per phase (between ``ECHO start:NAME`` and ``ECHO end:NAME``): client commands and script commands."""
    found: dict[str, tuple[Counter[str], Counter[str]]] = {}
    current: str | None = None
    for line in monitor_log.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        cmd, arg = match["cmd"].upper(), match["arg"] or ""
        if cmd == "ECHO" and arg.startswith(("start:", "end:")):
            current = arg[len("start:") :] if arg.startswith("start:") else None
            if current is not None:
                found[current] = (Counter(), Counter())
            continue
        if current is not None:
            clients, scripts = found[current]
            (scripts if match["who"] == "lua" else clients)[cmd] += 1
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=20, help="logins (and refreshes) measured")
    parser.add_argument("--requests", type=int, default=1000, help="proxied GET /api/me measured")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="store-ops-"))
    port = free_port()
    secrets = make_secrets()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")} | secrets
    with redis_server(work / "redis", port):
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        up_port = free_port()
        upstream = ServerProcess(
            [sys.executable, "-m", "frontdesk.gateway.demo_upstream", "--port", str(up_port)],
            work / "upstream.log",
            env=env,
            name="demo upstream",
        )
        config = write_config(
            work / "config.toml",
            store={"url": url},
            routes=[{"prefix": "/api/", "upstream": f"http://127.0.0.1:{up_port}"}],
            login={"max_attempts_per_user": 10_000, "max_attempts_per_address": 10_000},
        )
        gw = GatewayProcess(workdir=work, config_path=config, env=env)
        with upstream:
            upstream.wait_answers(f"http://127.0.0.1:{up_port}/api/me")
            gw.add_user("alice", "alice-password")
            gw.start()
            monitor_log = work / "monitor.log"
            with (
                monitor_log.open("wb") as out,
                subprocess.Popen([redis_binary("redis-cli"), "-p", str(port), "monitor"], stdout=out) as monitor,
            ):
                wait_until(lambda: monitor_log.read_bytes().startswith(b"OK"), what="redis-cli monitor to start")
                try:
                    clients = [AuthClient(gw.url) for _ in range(args.logins)]
                    client.echo("start:login")
                    for each in clients:
                        assert each.login("alice", "alice-password").status_code == 200
                    client.echo("end:login")
                    time.sleep(1.1)  # /auth/refresh rotates at most once a second per session
                    client.echo("start:refresh")
                    for each in clients:
                        assert each.refresh().status_code == 200
                    client.echo("end:refresh")
                    browser = clients[0]
                    assert browser.request("GET", "/api/me").status_code == 200  # the access token is minted
                    started = time.monotonic()
                    client.echo("start:proxied")
                    for _ in range(args.requests):
                        assert browser.request("GET", "/api/me").status_code == 200
                    client.echo("end:proxied")
                    took = time.monotonic() - started
                    client.echo("start:idle")
                    time.sleep(took)
                    client.echo("end:idle")
                    wait_until(lambda: "end:idle" in monitor_log.read_text(errors="replace"), what="the log")
                finally:
                    monitor.terminate()
                    gw.stop()
    counts = {"login": args.logins, "refresh": args.logins, "proxied": args.requests, "idle": args.requests}
    print(f"redis-server {port}, one gateway worker; per operation (proxied/idle over {took:.1f} s):")
    for name, (sent, scripted) in phases(monitor_log).items():
        n = counts[name]
        shown = ", ".join(f"{cmd} {count / n:.3g}" for cmd, count in sent.most_common())
        print(
            f"  {name:8} round trips {sum(sent.values()) / n:6.3f}  script ops {sum(scripted.values()) / n:6.3f}"
            f"  ({shown or '-'})"
        )


if __name__ == "__main__":
    main()
