"""Real parts for the fleet test: a redis-server with AOF that can be killed and restarted on its port, the
README's load-balancer config for N instances, and sessions shared by several clients the way tabs share them.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from live_gateway import jwt_claims, set_cookies

from tests.support import ServerProcess, free_port

__all__ = ["FLEET_CONF", "AofRedis", "SharedSession", "fleet_conf"]

REPO = Path(__file__).resolve().parents[3]
FLEET_CONF = REPO / "deploy" / "nginx-fleet.conf"
README_PORTS = (8001, 8002, 8003)


def fleet_conf(instances: list[int], listen: int) -> str:
    """``deploy/nginx-fleet.conf`` (the very file the README shows) with only its ports changed."""
    conf = FLEET_CONF.read_text()
    assert len(instances) == len(README_PORTS), "the config lists three instances"
    for shown, port in zip(README_PORTS, instances, strict=True):
        conf = conf.replace(f"server 127.0.0.1:{shown} ", f"server 127.0.0.1:{port} ", 1)
    return conf.replace("listen 8080;", f"listen 127.0.0.1:{listen};", 1)


@dataclass
class AofRedis:
    """redis-server with ``appendonly yes`` and ``appendfsync always``: what was acknowledged survives kill -9."""

    workdir: Path
    port: int = field(default_factory=free_port)
    server: ServerProcess | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.starts += 1
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"]
        args += ["--appendfsync", "always", "--dir", str(self.workdir)]
        log = self.workdir / f"redis-{self.starts}.log"
        self.server = ServerProcess(args, log, cwd=self.workdir, name="redis-server").start()
        self.server.wait_until(self.pong, what="redis-server to answer PING")

    def pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        assert self.server is not None
        self.server.kill()

    def stop(self) -> None:
        if self.server is not None and self.server.running:
            self.server.stop()


class SharedSession:
    """One browser's refresh cookie, used by several clients at once (tabs): every Set-Cookie any of them gets
    replaces it; every refresh-token id ever handed out is remembered (one per rotation, plus the login's)."""

    def __init__(self, name: str, cookie: str) -> None:
        self.name = name
        self._cookie = cookie
        self._lock = threading.Lock()
        self.jtis: set[str] = {jwt_claims(cookie)["jti"]}

    @property
    def cookie(self) -> str:
        with self._lock:
            return self._cookie

    def observe(self, response: httpx.Response) -> None:
        for sc in set_cookies(response):
            if sc.name == self.name and not sc.clears:
                with self._lock:
                    self._cookie = sc.value
                    self.jtis.add(sc.claims()["jti"])

    def send(self, client: httpx.Client, method: str, path: str) -> tuple[httpx.Response, float]:
        """The request with this session's cookie; the response and when the request was sent (monotonic)."""
        sent = time.monotonic()
        response = client.request(method, path, headers={"X-CSRF": "1", "Cookie": f"{self.name}={self.cookie}"})
        self.observe(response)
        return response, sent
