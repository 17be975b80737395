"""The README's first command, ``frontdesk demo``: it prints the demo user's credentials, and they open the SPA.

It runs with the repository's own ``config.toml`` (the demo configuration) in a temporary directory, on free
ports given as ``--port``/``--upstream-port``, so it neither needs ports 8000/9000 nor leaves files in the
checkout.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support import ServerProcess, free_port

from .helpers import Credentials, add_item, login, screenshot
from .servers import REPO, STATIC, Stack

CREDENTIALS = re.compile(r"sign in as\s+(\S+)\s+/\s+(\S+)")
START_TIMEOUT = 60.0


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Stack, Credentials]]:
    port, upstream_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    demo_config = (REPO / "config.toml").read_text()
    assert 'upstream = "http://127.0.0.1:9000"' in demo_config
    assert 'directory = "static"' in demo_config
    # The routes keep port 9000: --upstream-port must re-point them at the upstream the demo starts.
    config.write_text(demo_config.replace('directory = "static"', f'directory = "{STATIC.as_posix()}"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env["PYTHONUNBUFFERED"] = "1"
    args = [sys.executable, "-m", "frontdesk.gateway.cli", "demo", "--config", str(config)]
    args += ["--port", str(port), "--upstream-port", str(upstream_port)]
    with ServerProcess(args, tmp_path / "demo.log", cwd=tmp_path, env=env, name="frontdesk demo") as process:
        match = process.wait_until(
            lambda: CREDENTIALS.search(process.log()), timeout=START_TIMEOUT, what="the demo's credentials"
        )
        # The gateway may print its credentials a moment before it accepts connections.
        process.wait_answers(f"http://127.0.0.1:{port}/healthz", status=200, timeout=START_TIMEOUT)
        stack = Stack(
            base_url=f"http://localhost:{port}",
            port=port,
            upstream_url=f"http://127.0.0.1:{upstream_port}",
            workdir=tmp_path,
            config=config,
            env=env,
            access_ttl=15 * 60,
        )
        yield stack, Credentials(username=match.group(1), password=match.group(2))


def test_demo_command_prints_credentials_that_open_the_app(page: Page, demo: tuple[Stack, Credentials]) -> None:
    stack, creds = demo
    page.goto(stack.base_url + "/")
    login(page, stack, creds)
    expect(page.locator("#account-name")).to_have_text(creds.username)
    add_item(page, "Hello from the demo")
    expect(page.locator("#clock-status")).to_have_attribute("data-state", "live")
    screenshot(page, "00-demo-command")
