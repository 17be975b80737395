"""Fixtures shared by the whole suite: real backing services. Ports, waits and servers live in
``tests/support`` (its fixtures are loaded here)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess, free_port

pytest_plugins = ["tests.support.fixtures", "pytester"]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, for the whole run (no persistence: tests only)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run installs it")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", str(workdir)]

    def pong() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    with ServerProcess(args, workdir / "redis.log", cwd=workdir, name="redis-server") as redis:
        redis.wait_until(pong, what="redis-server to answer PING")
        yield f"redis://127.0.0.1:{port}/0"


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def frontdesk_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built into a wheel, as ``pip install frontdesk`` would get it (once per run)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(REPO)],
        check=True,
        timeout=600,
    )
    (wheel,) = out.glob("frontdesk-*.whl")
    return wheel


@pytest.fixture
def fresh_venv(tmp_path: Path) -> Callable[..., Path]:
    """Make a virtual environment that sees nothing of this machine's site-packages, with the given
    requirements installed from the index; returns its python."""

    def make(*requirements: str) -> Path:
        where = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=300)
        python = where / "bin" / "python"
        install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements]
        subprocess.run(install, check=True, timeout=900, cwd=tmp_path)
        return python

    return make
