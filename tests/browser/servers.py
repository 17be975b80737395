"""Real servers for the browser tests: the gateway and the demo upstream in subprocesses, on free ports.

Subprocesses rather than threads so the gateway runs exactly as ``frontdesk serve`` runs it (its own event
loop, uvloop, lifespan), and so a hung server can always be killed.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import ServerProcess, free_port

__all__ = ["Stack", "running_stack", "add_user", "TEST_CONFIG"]

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "static"
START_TIMEOUT = 60.0  # generous: a shared 2-core machine can be slow to start Python + uvicorn

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
    workdir: Path,
    *,
    access_ttl: float = 3.0,
    remember_ttl: str = "1h",
    csrf_header: str = "X-CSRF",
    extra_config: str = "",
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """Start the demo upstream and the gateway with the test config (``csrf_header``: its ``[csrf] header``;
    ``extra_config`` appended to it, e.g. ``[[oidc]]`` tables, and ``extra_env`` added to the environment);
    stop both on exit."""
    port, upstream_port = free_port(), free_port()
    env = {
        **os.environ,
        "FRONTDESK_ACCESS_SECRET": secrets.token_urlsafe(48),
        "FRONTDESK_REFRESH_SECRET": secrets.token_urlsafe(48),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
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
        + extra_config
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
    with (
        ServerProcess(upstream_cmd, workdir / "upstream.log", cwd=workdir, env=env, name="demo upstream") as upstream,
        ServerProcess(gateway_cmd, workdir / "gateway.log", cwd=workdir, env=env, name="gateway") as gateway,
    ):
        upstream.wait_answers(f"{stack.upstream_url}/api/me", timeout=START_TIMEOUT)
        gateway.wait_answers(f"http://127.0.0.1:{port}/healthz", timeout=START_TIMEOUT)
        yield stack
