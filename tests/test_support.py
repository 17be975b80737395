"""tests/support itself: a server that dies or never answers fails the test with its log, stopping reaps
the whole process group, both wait flavours, both ways of serving an ASGI app, the log attached to a failed
test's report, and ``tests.support`` importable when one file is run from anywhere."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support import (
    LiveServer,
    ServerProcess,
    free_port,
    group_members,
    serve_in_loop,
    serve_in_thread,
    wait_until,
    wait_until_async,
)

REPO = Path(__file__).resolve().parents[1]


async def hello(scope: dict[str, object], receive: object, send: object) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"hello"})  # type: ignore[operator]


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_server_that_exits_fails_the_wait_at_once_with_its_log(tmp_path: Path) -> None:
    server = ServerProcess(python("print('bad config: no routes'); raise SystemExit(3)"), tmp_path / "s.log")
    with server, pytest.raises(pytest.fail.Exception) as failed:
        server.wait_answers(f"http://127.0.0.1:{free_port()}/", timeout=60)
    assert "exited with 3" in str(failed.value) and "bad config: no routes" in str(failed.value)


def test_a_server_that_never_answers_is_killed_and_fails_with_its_log(tmp_path: Path) -> None:
    code = "import time; print('listening nowhere', flush=True); time.sleep(600)"
    server = ServerProcess(python(code), tmp_path / "s.log", name="mute")
    server.start()
    server.wait_until(lambda: "listening" in server.log())
    with pytest.raises(pytest.fail.Exception) as failed:
        server.wait_answers(f"http://127.0.0.1:{free_port()}/", timeout=0.5)
    assert "timed out" in str(failed.value) and "listening nowhere" in str(failed.value)
    assert not server.running


def test_stop_reaps_every_process_of_the_group(tmp_path: Path) -> None:
    # A supervisor with a child, as uvicorn with workers: the child must not outlive stop().
    child = "[sys.executable, '-c', 'import time; time.sleep(600)']"
    code = f"import subprocess, sys, time; subprocess.Popen({child}); print('up', flush=True); time.sleep(600)"
    with ServerProcess(python(code), tmp_path / "s.log") as server:
        server.wait_until(lambda: "up" in server.log())
        assert server.proc is not None
        pgid = server.proc.pid
        wait_until(lambda: len(group_members(pgid)) == 2, what="the child to start")
    assert group_members(pgid) == []


def test_wait_until_returns_the_value_and_fails_naming_what_it_waited_for() -> None:
    values = iter([0, None, "", "done"])
    assert wait_until(lambda: next(values), interval=0.001) == "done"
    with pytest.raises(pytest.fail.Exception, match=r"timed out after 0\.05 s waiting for the moon"):
        wait_until(lambda: False, timeout=0.05, interval=0.01, what="the moon")


async def test_wait_until_async_takes_a_plain_or_an_async_condition() -> None:
    ready = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, ready.set)
    assert await wait_until_async(ready.is_set, interval=0.01)

    async def check() -> str:
        return "yes"

    assert await wait_until_async(check) == "yes"


def test_an_asgi_app_served_from_a_thread(live_server: Callable[..., LiveServer]) -> None:
    with serve_in_thread(hello) as url:
        assert httpx.get(url).text == "hello"
    with pytest.raises(httpx.TransportError):
        httpx.get(url)
    server = live_server(hello, port=free_port())  # the fixture: stopped when the test ends
    assert httpx.get(f"http://127.0.0.1:{server.port}/").text == "hello"


async def test_an_asgi_app_served_in_the_running_loop() -> None:
    async with serve_in_loop(hello) as server, httpx.AsyncClient() as client:
        assert isinstance(server, LiveServer)
        assert (await client.get(server.url)).text == "hello"


def test_a_failed_tests_report_carries_its_server_log(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_fails(server_process):
            code = "import time; print('hello from the toy server', flush=True); time.sleep(600)"
            server = server_process([sys.executable, "-c", code], name="toy")
            server.wait_until(lambda: "hello" in server.log())
            assert False, "the test fails"

        def test_passes(server_process):
            server_process([sys.executable, "-c", "print('quiet')"], name="other")
        """
    )
    quiet = ["-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function"]
    result = pytester.runpytest("-p", "tests.support.fixtures", *quiet)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*toy log*", "*hello from the toy server*"])
    assert "other log" not in result.stdout.str()


def test_one_file_runs_on_its_own_from_any_folder(tmp_path: Path) -> None:
    """``from tests.support import ...`` resolves without the repository root as the working directory."""
    target = REPO / "tests" / "gateway" / "proxy" / "test_proxy_tls.py"  # imports tests.support twice over
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(target)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 tests collected" in run.stdout, run.stdout  # trusted CA or not, on each server protocol
