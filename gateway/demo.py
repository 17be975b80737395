"""``frontdesk demo``: the gateway, the demo upstream API and a demo user, in one command.

Secrets are generated into a ``.env`` beside the config on first run (never printed), the demo user's
password is fresh on every run and printed, and the demo upstream runs as a child process that ends
with the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import uvicorn

from .app import create_app
from .backends import users_for
from .config import SECRET_ENV, GatewayConfig, config_path, dotenv_paths, load_config, read_dotenv
from .keys import JWKS_PATH
from .proxy.routes import Route
from .secret_files import append_private, warn_about_exposed
from .serving import exit_zero_after_sigterm, uvicorn_options
from .users import UserExists

__all__ = ["run_demo", "ensure_config", "ensure_secrets", "route_to_demo_upstream"]

DEMO_USER = "demo"
# Where the demo config's [[routes]] send /api/*: the demo upstream's default --upstream-port.
DEMO_UPSTREAM_HOSTS = ("127.0.0.1", "localhost")
DEMO_UPSTREAM_PORT = 9000
# The repository's config.toml (gateway/demo_config.toml is a link to it; a wheel holds a copy).
SHIPPED_CONFIG = Path(__file__).resolve().parent / "demo_config.toml"


def ensure_secrets(dotenv: Path) -> None:
    """Make sure both secrets exist in the environment or in ``dotenv``; create the file if needed."""
    known = read_dotenv(dotenv)
    missing = [name for name in SECRET_ENV if not (os.environ.get(name) or known.get(name))]
    if not missing:
        return
    # Created (or first made) 0600 before any secret is written: never a moment readable by others.
    append_private(dotenv, "".join(f"{name}={secrets.token_urlsafe(48)}\n" for name in missing))
    print(f"wrote fresh secrets for {', '.join(missing)} to {dotenv}")


def route_to_demo_upstream(config: GatewayConfig, port: int) -> GatewayConfig:
    """``config`` with every route written for the demo upstream's default address (loopback, port 9000)
    pointed at ``port`` instead, path kept, so ``--upstream-port`` reaches the upstream this command started.
    Routes to anything else are left alone."""
    routes: list[Route] = []
    for route in config.routes:
        up = route.upstream
        if up.scheme == "http" and up.host in DEMO_UPSTREAM_HOSTS and up.port == DEMO_UPSTREAM_PORT:
            route = dataclasses.replace(route, upstream=up.at_port(port))
        routes.append(route)
    return dataclasses.replace(config, routes=tuple(routes))


async def _demo_user(config: GatewayConfig) -> str:
    password = secrets.token_urlsafe(9)
    users = users_for(config)  # the SQLite file, or the Redis store when store.url names one
    await users.open()
    try:
        try:
            await users.add(DEMO_USER, password)
        except UserExists:
            await users.set_password(DEMO_USER, password)
    finally:
        await users.close()
    return password


def _wait_for(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (our own loopback URL)
                return True
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error status still means it is up
                return True
            time.sleep(0.1)
    return False


def ensure_config(path: Path) -> None:
    """Outside a checkout there is no config.toml yet: write the demo's (the repository's config.toml, shipped
    in the package), which lists every key with its default. An existing file is never replaced."""
    try:
        with path.open("x") as out:
            out.write(SHIPPED_CONFIG.read_text())
    except FileExistsError:
        return
    print(f"wrote the demo configuration to {path}")


def run_demo(args: argparse.Namespace) -> int:
    path = config_path(args.config, os.environ).resolve()
    ensure_config(path)
    ensure_secrets(path.parent / ".env")
    warn_about_exposed(dotenv_paths(path.parent))  # a .env the user wrote earlier may still be 0644
    config = route_to_demo_upstream(load_config(path), args.upstream_port)
    password = asyncio.run(_demo_user(config))

    # The upstream verifies exactly what this gateway mints: same issuer and audience, and the same keys
    # (the shared secret and any previous ones, or the published JWKS when [keys] is asymmetric).
    env = dict(os.environ)
    env["FRONTDESK_ACCESS_SECRET"] = config.tokens.access_secret
    env["FRONTDESK_ACCESS_SECRET_PREVIOUS"] = ",".join(config.tokens.access_previous)
    command = [sys.executable, "-m", "frontdesk.gateway.demo_upstream", "--port", str(args.upstream_port)]
    command += ["--audience", config.tokens.audience, "--issuer", config.tokens.issuer]
    if config.keys.asymmetric:
        command += ["--jwks-url", f"http://127.0.0.1:{args.port}{JWKS_PATH}"]
    upstream = subprocess.Popen(command, env=env)
    exit_zero_after_sigterm()  # and the finally below still stops the upstream
    try:
        if not _wait_for(f"http://127.0.0.1:{args.upstream_port}/", time.monotonic() + 15):
            print("frontdesk: the demo upstream did not start", file=sys.stderr)
            return 1
        print(
            f"\n  frontdesk demo is running:  http://localhost:{args.port}\n  sign in as  {DEMO_USER}  /  {password}\n",
            flush=True,
        )
        uvicorn.run(
            create_app(config),
            host="127.0.0.1",
            port=args.port,
            # uvicorn's own chatter stays quiet; frontdesk's rare INFO lines (key reloads, purges) still show.
            **uvicorn_options(config, log_level="warning", frontdesk_log_level="info"),
        )
    finally:
        upstream.terminate()
        try:
            upstream.wait(timeout=5)
        except subprocess.TimeoutExpired:
            upstream.kill()
    return 0
