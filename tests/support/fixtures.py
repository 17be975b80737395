"""The support package's fixtures, loaded for the whole suite by ``pytest_plugins`` in ``tests/conftest.py``.

- ``live_server(app, **uvicorn_options)`` -> a :class:`LiveServer` serving ``app`` from a thread until the
  test ends.
- ``server_process(args, *, name, cwd=None, env=None)`` -> a started :class:`ServerProcess` (call its
  ``wait_answers(url)``), stopped when the test ends; if the test fails, its log is attached to the report.
- ``oidc_provider`` (session) -> an :class:`~tests.support.oidc_provider.OidcProvider`: the real OpenID
  Provider (npm oidc-provider) with the default clients and users, for the whole run.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from .live_server import LiveServer
from .oidc_provider import OidcProvider, running_provider
from .processes import ServerProcess

__all__ = ["live_server", "oidc_provider", "pytest_runtest_makereport", "server_process"]

_PROCESSES = pytest.StashKey[list[ServerProcess]]()


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def start(app: Any, **options: Any) -> LiveServer:
        server = LiveServer(app, **options).start_thread()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop_thread()


@pytest.fixture
def server_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started = request.node.stash.setdefault(_PROCESSES, [])

    def start(
        args: Sequence[str], *, name: str = "server", cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> ServerProcess:
        process = ServerProcess(args, tmp_path / f"{name}.log", cwd=cwd or tmp_path, env=env, name=name)
        started.append(process)
        return process.start()

    yield start
    for process in reversed(started):
        process.stop()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    with running_provider(tmp_path_factory.mktemp("oidc-provider")) as provider:
        yield provider


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """A failed test's report carries the log of every server process it started (shown under the failure)."""
    report = yield
    if report.failed:
        for process in item.stash.get(_PROCESSES, []):
            report.sections.append((f"{process.name} log ({process.log_path})", process.log() or "(empty)"))
    return report
