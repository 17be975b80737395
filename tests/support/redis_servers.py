"""Real redis-servers for the tests: one server, or a 3-master Redis Cluster, on free loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from .ports import free_port
from .processes import ServerProcess

__all__ = ["CLUSTER_BUS_OFFSET", "redis_binary", "redis_cluster", "redis_server"]

CLUSTER_BUS_OFFSET = 10000  # a cluster node also listens on its port + 10000 (the cluster bus)


def redis_binary(name: str = "redis-server") -> str:
    binary = shutil.which(name)
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run installs it")
        pytest.skip(f"{name} is not installed (apt-get install redis-server)")
    return binary


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # a server asking for a password answers too
    except OSError:
        return False


@contextmanager
def redis_server(workdir: Path, port: int, *extra: str, answers_ping: bool = True) -> Iterator[ServerProcess]:
    """redis-server on 127.0.0.1:``port`` (no persistence: tests only), waited for until it answers PING
    (unless ``answers_ping`` is False: a TLS-only server is waited for by the caller)."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", str(workdir), *extra]
    with ServerProcess(args, workdir / "redis.log", cwd=workdir, name=f"redis-server :{port}") as redis:
        if answers_ping:
            redis.wait_until(lambda: _pong(port), what="redis-server to answer PING")
        yield redis


def _cluster_port() -> int:
    """A free port whose cluster-bus port is free too."""
    while True:
        port = free_port()
        if port + CLUSTER_BUS_OFFSET < 65536:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + CLUSTER_BUS_OFFSET))
                except OSError:
                    continue
            return port


@contextmanager
def redis_cluster(workdir: Path, masters: int = 3) -> Iterator[Sequence[int]]:
    """A Redis Cluster of ``masters`` masters and no replicas, every slot assigned and ``cluster_state:ok``;
    yields the nodes' ports."""
    ports = [_cluster_port() for _ in range(masters)]
    with ExitStack() as stack:
        clustered = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        nodes = [stack.enter_context(redis_server(workdir / str(port), port, *clustered)) for port in ports]
        create = [redis_binary("redis-cli"), "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports)]
        create += ["--cluster-replicas", "0", "--cluster-yes"]
        made = subprocess.run(create, capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stdout + made.stderr
        cli = redis_binary("redis-cli")

        def ok(port: int) -> bool:
            info = subprocess.run([cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True)
            return "cluster_state:ok" in info.stdout

        for node, port in zip(nodes, ports, strict=True):
            node.wait_until(lambda port=port: ok(port), what="the cluster to be ok")  # type: ignore[misc]
        yield ports
