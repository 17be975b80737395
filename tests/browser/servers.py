"""Real servers for the browser tests: the gateway and the demo upstream in subprocesses, on free ports.

Subprocesses rather than threads so the gateway runs exactly as ``frontdesk serve`` runs it (its own event
loop, uvloop, lifespan), and so a hung server can always be killed.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["Stack", "free_port", "running_stack", "add_user", "TEST_CONFIG"]

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "static"
START_TIMEOUT = 60.0

# Short lifetimes so that "several access-token lifetimes" take seconds. refresh_margin is small so the
# gateway really lets tokens run out before minting, and leeway is small so an expired token is refused.
TEST_CONFIG = """\
[tokens]
access_ttl = "{access_ttl}s"
refresh_ttl = "20m"
remember_ttl = "{remember_ttl}"
max_session_age = "{max_session_age}"
rotation_grace = "30s"
leeway = "1s"
refresh_margin = "1s"

[store]
url = "sqlite:///frontdesk.db"

[csrf]
header = "{csrf_header}"

[login]
max_attempts_per_user = 50
max_attempts_per_address = 1000

[static]
directory = "{static}"

[metrics]
address = ""  # off: browser stacks may run beside other gateways, which would contend for 127.0.0.1:9464

[[routes]]
prefix = "/api/"
upstream = "http://127.0.0.1:{upstream_port}"

# EventSource cannot send X-CSRF; the clock is a GET-only stream, and the refresh cookie is
# SameSite=Strict, so another site still cannot open it with the user's session.
[[routes]]
prefix = "/api/clock"
upstream = "http://127.0.0.1:{upstream_port}"
methods = ["GET"]
csrf = false
"""


@dataclass(frozen=True)
class Stack:
    """A running gateway (browsed as http://localhost:PORT) and its demo upstream."""

    base_url: str
    port: int
    upstream_url: str
    workdir: Path
    config: Path
    env: Mapping[str, str]
    access_ttl: float
    csrf_header: str = "X-CSRF"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``url`` answers anything at all; fail with the server's log if it dies or never answers."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer within {START_TIMEOUT:.0f} s:\n{log.read_text()}")


@contextmanager
def _process(args: list[str], *, env: Mapping[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        # The whole process group: uvicorn may have spawned workers.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def add_user(stack: Stack, username: str, password: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "frontdesk.gateway.cli",
            "users",
            "add",
            username,
            "--password-stdin",
            "--config",
            str(stack.config),
        ],
        input=password.encode(),
        env=dict(stack.env),
        cwd=stack.workdir,
        check=True,
        capture_output=True,
    )


@contextmanager
def running_stack(
    workdir: Path, *, access_ttl: float = 3.0, remember_ttl: str = "1h", csrf_header: str = "X-CSRF"
) -> Iterator[Stack]:
    """Start the demo upstream and the gateway with the test config (``csrf_header``: its ``[csrf] header``);
    stop both on exit."""
    port, upstream_port = free_port(), free_port()
    env = {
        **os.environ,
        "FRONTDESK_ACCESS_SECRET": secrets.token_urlsafe(48),
        "FRONTDESK_REFRESH_SECRET": secrets.token_urlsafe(48),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("FRONTDESK_CONFIG", None)
    config = workdir / "config.toml"
    config.write_text(
        TEST_CONFIG.format(
            access_ttl=int(access_ttl),
            remember_ttl=remember_ttl,
            max_session_age="1h" if remember_ttl == "1h" else "30d",  # a remembered login may last that long
            static=STATIC.as_posix(),
            upstream_port=upstream_port,
            csrf_header=csrf_header,
        )
    )
    stack = Stack(
        base_url=f"http://localhost:{port}",
        port=port,
        upstream_url=f"http://127.0.0.1:{upstream_port}",
        workdir=workdir,
        config=config,
        env=env,
        access_ttl=access_ttl,
        csrf_header=csrf_header,
    )
    upstream_cmd = [sys.executable, "-m", "frontdesk.gateway.demo_upstream", "--port", str(upstream_port)]
    gateway_cmd = [
        sys.executable, "-m", "frontdesk.gateway.cli", "serve", "--config", str(config),
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    up_log, gw_log = workdir / "upstream.log", workdir / "gateway.log"
    with (
        _process(upstream_cmd, env=env, cwd=workdir, log=up_log) as upstream,
        _process(gateway_cmd, env=env, cwd=workdir, log=gw_log) as gateway,
    ):
        _wait_http(f"{stack.upstream_url}/api/me", upstream, up_log)
        _wait_http(f"http://127.0.0.1:{port}/healthz", gateway, gw_log)
        yield stack
