"""Fixtures shared by the whole suite: real backing services. Ports, waits and servers live in
``tests/support`` (its fixtures are loaded here)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import free_port
from tests.support.redis_servers import redis_cluster, redis_server

pytest_plugins = ["tests.support.fixtures", "pytester"]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, for the whole run (no persistence: tests only)."""
    port = free_port()
    with redis_server(tmp_path_factory.mktemp("redis"), port):
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real 3-master Redis Cluster (no replicas) on free loopback ports, for the whole run."""
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as ports:
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports)


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
