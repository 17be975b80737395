"""Fixtures for integration tests against a real gateway: ``frontdesk serve`` (uvicorn) in a subprocess.

Everything is real: the CLI, uvicorn (uvloop, httptools, lifespan), a SQLite file in a temp dir, argon2id
password hashes, secrets passed through the environment. The machinery lives in ``live_gateway.py`` beside
this file (import it as ``from live_gateway import ...``); this file only holds the fixtures. Typical use::

    @pytest.fixture(scope="module")
    def gw(gateway_factory):
        return gateway_factory("flow", tokens={"access_ttl": "2s"}, users={"alice": "alice-password"})

    def test_something(gw):
        with gw.client() as client:                   # carries the refresh cookie by hand
            assert client.login("alice", "alice-password").status_code == 200
            assert client.session().status_code == 200
            row = gw.session_row(client.claims()["sid"])   # the row in the server's SQLite file

What ``live_gateway`` offers:

- ``make_secrets``, ``write_config`` (a test ``config.toml`` with short lifetimes; override any key per
  table), ``jwt_claims``. Ports, ``wait_until`` and the subprocess machinery come from ``tests.support``.
- ``GatewayProcess``: start / stop (SIGTERM) / kill (SIGKILL of the process group, like ``kill -9``) /
  restart, waits until ``/healthz`` answers, reads the SQLite file, lists uvicorn worker pids and tells
  which worker serves a given connection (Linux ``/proc``).
- ``in_process_gateway(tmp_path, users=..., **tables)``: the same app in this process on a ``ManualClock``,
  driven through httpx's ASGI transport, for flows that wait for an expiry or a grace (``clock.advance``
  instead of sleeping); keep one real-server test per such flow.
- ``AuthClient`` / ``AsyncAuthClient``: httpx clients that send ``X-CSRF: 1`` and the refresh cookie
  themselves (httpx's jar never sends a ``Secure`` cookie over http), follow ``Set-Cookie``, can bind a
  source address (``local_address="127.0.0.7"``: a separate rate-limit bucket), and assert that no
  response body ever contains a token.
- ``SetCookie`` / ``set_cookies(response)``: parsed ``Set-Cookie`` headers.

Nothing here is autouse, so conftest files in sub-folders are unaffected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from live_gateway import GatewayProcess, make_secrets, write_config


@pytest.fixture(scope="session")
def gateway_secrets() -> dict[str, str]:
    """Two different 64-character secrets, shared by every server of the run (restarts keep them)."""
    return make_secrets()


@pytest.fixture(scope="module")
def gateway_factory(
    tmp_path_factory: pytest.TempPathFactory, gateway_secrets: dict[str, str]
) -> Iterator[Callable[..., GatewayProcess]]:
    """``make(name, *, workers=1, users={name: password}, start=True, env=None, **tables)`` -> a running
    ``GatewayProcess`` with its own temp dir, config, SQLite file and free port. ``tables`` override the
    test defaults per table, e.g. ``tokens={"access_ttl": "2s"}``; ``env`` replaces the secrets. Every
    server made here is stopped at the end of the module."""
    made: list[GatewayProcess] = []

    def make(
        name: str = "gateway",
        *,
        workers: int = 1,
        users: Mapping[str, str] | None = None,
        start: bool = True,
        env: Mapping[str, str] | None = None,
        **tables: Any,
    ) -> GatewayProcess:
        workdir = tmp_path_factory.mktemp(name)
        config = write_config(workdir / "config.toml", **tables)
        process_env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
        process_env.update(gateway_secrets if env is None else env)
        process_env["PYTHONUNBUFFERED"] = "1"
        gw = GatewayProcess(workdir=workdir, config_path=config, env=process_env, workers=workers)
        made.append(gw)
        for username, password in (users or {}).items():
            gw.add_user(username, password)
        if start:
            gw.start()
        return gw

    yield make
    for gw in made:
        gw.stop()
