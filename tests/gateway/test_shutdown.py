"""Graceful shutdown: SIGTERM to a real ``frontdesk serve`` (one worker and two) with exchanges in flight.

The upstream is a raw ASGI app under uvicorn in a thread of the test process, so the test can see what
reached it: an upload's every byte, the close code of a WebSocket. On SIGTERM the gateway stops accepting,
lets an upload in flight finish, ends an endless SSE stream cleanly (the chunked body is terminated, not reset),
closes WebSockets with 1001 Going Away, and exits 0 within ``[server] shutdown_timeout`` (a stream that is not
an event stream and never ends is cut when the timeout runs out).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from live_gateway import AuthClient, GatewayProcess
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support import answers, free_port, wait_until

PASSWORD = "alice-password-1"
SHUTDOWN_TIMEOUT = 6.0  # [server] shutdown_timeout of the servers below
MARGIN = 10.0  # start-up of nothing, just the exit: generous for a loaded 2-core machine
CHUNK = b"x" * 65536
CHUNKS = 16


@dataclass
class Recorder:
    """What the upstream saw."""

    uploads: list[int] = field(default_factory=list)  # bytes of each completed upload
    ws_close_codes: list[int] = field(default_factory=list)


def upstream_app(seen: Recorder) -> Callable[..., Any]:
    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "websocket":
            await receive()  # connect
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    seen.ws_close_codes.append(message.get("code", 0))
                    return
                await send({"type": "websocket.send", "text": message.get("text") or ""})
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path.endswith("/upload"):
            total = 0
            while True:
                message = await receive()
                total += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            seen.uploads.append(total)
            body = b'{"bytes": %d}' % total
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        # /events: an endless event stream; /endless: an endless stream that is not one
        kind = b"text/event-stream" if path.endswith("/events") else b"application/octet-stream"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
        while True:
            await send({"type": "http.response.body", "body": b"data: tick\n\n", "more_body": True})
            try:
                if (await asyncio.wait_for(receive(), 0.1))["type"] == "http.disconnect":
                    return
            except TimeoutError:
                pass

    return app


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, Recorder]]:
    seen = Recorder()
    port = free_port()
    config = uvicorn.Config(upstream_app(seen), host="127.0.0.1", port=port, lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="the upstream to start")
    yield f"http://127.0.0.1:{port}", seen
    server.should_exit = True
    server.force_exit = True
    thread.join(timeout=30)


@pytest.fixture
def start(
    gateway_factory: Callable[..., GatewayProcess], upstream: tuple[str, Recorder]
) -> Callable[..., GatewayProcess]:
    base, _ = upstream

    def make(workers: int = 1, **server: Any) -> GatewayProcess:
        routes = [
            {"prefix": "/api/", "upstream": base, "csrf": False},  # a session's
            {"prefix": "/open/", "upstream": base, "auth": "none", "csrf": False, "websocket": True},
        ]
        return gateway_factory(
            "shutdown",
            workers=workers,
            users={"alice": PASSWORD},
            routes=routes,
            server={"shutdown_timeout": f"{SHUTDOWN_TIMEOUT:g}s", **server},
        )

    return make


def sigterm(gw: GatewayProcess) -> float:
    assert gw.proc is not None
    os.killpg(gw.proc.pid, signal.SIGTERM)  # as a service manager does: the whole group, workers included
    return time.monotonic()


def exit_status(gw: GatewayProcess, limit: float) -> int:
    """The gateway's exit status; fails (and kills it) when it is still running after ``limit`` seconds."""
    assert gw.proc is not None
    try:
        return gw.proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        gw.kill()
        pytest.fail(f"the gateway was still running {limit:g} s after SIGTERM:\n{gw.log()}")


def logged_in(gw: GatewayProcess) -> dict[str, str]:
    with gw.client() as client:
        assert client.login("alice", PASSWORD).status_code == 200
        return client.headers(csrf=False)


def test_an_sse_stream_in_flight_ends_cleanly_and_the_process_exits_0(start: Callable[..., GatewayProcess]) -> None:
    gw = start()
    headers = logged_in(gw)
    with httpx.Client(base_url=gw.url, timeout=30) as client, client.stream("GET", "/api/events", headers=headers) as r:
        assert r.status_code == 200
        events = r.iter_bytes()
        assert b"tick" in next(events)
        began = sigterm(gw)
        # The stream ends, with its chunked body properly terminated: httpx raises RemoteProtocolError
        # ("peer closed connection without sending complete message body") on a reset.
        for _ in events:
            pass
    assert exit_status(gw, SHUTDOWN_TIMEOUT + MARGIN - (time.monotonic() - began)) == 0
    print(f"exited {time.monotonic() - began:.2f} s after SIGTERM")
    # The store was closed: SQLite folds its write-ahead log back into the file when the last connection closes.
    assert not (gw.workdir / "frontdesk.db-wal").exists()


def test_an_endless_stream_is_cut_at_the_shutdown_timeout_and_the_process_exits_0(
    start: Callable[..., GatewayProcess],
) -> None:
    gw = start(shutdown_timeout="2s")
    with httpx.Client(base_url=gw.url, timeout=30) as client, client.stream("GET", "/open/endless") as stream:
        chunks = stream.iter_bytes()
        assert b"tick" in next(chunks)
        began = sigterm(gw)
        assert exit_status(gw, 2 + MARGIN) == 0
        with pytest.raises(httpx.RemoteProtocolError):  # cut, not ended: it was not complete
            for _ in chunks:
                pass
    print(f"exited {time.monotonic() - began:.2f} s after SIGTERM")


def test_an_upload_in_flight_completes_while_new_connections_are_refused(
    start: Callable[..., GatewayProcess], upstream: tuple[str, Recorder]
) -> None:
    _, seen = upstream
    gw = start()
    half_sent, go_on = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        for i in range(CHUNKS):
            if i == CHUNKS // 2:
                half_sent.set()
                assert go_on.wait(timeout=60)
            yield CHUNK

    result: dict[str, Any] = {}

    def upload() -> None:
        with httpx.Client(base_url=gw.url, timeout=60) as client:
            result["response"] = client.post("/open/upload", content=body())

    uploader = threading.Thread(target=upload)
    uploader.start()
    try:
        assert half_sent.wait(timeout=30)
        began = sigterm(gw)

        def refused() -> bool:
            try:
                httpx.get(f"{gw.url}/healthz", timeout=2)
            except httpx.ConnectError:
                return True
            return False

        wait_until(refused, what="new connections to be refused")
        assert gw.running
    finally:
        go_on.set()
        uploader.join(timeout=60)
    response: httpx.Response = result["response"]
    assert response.status_code == 200, response.text
    assert response.json() == {"bytes": CHUNK_TOTAL}
    assert CHUNK_TOTAL in seen.uploads  # the upstream had every byte and answered 200
    assert exit_status(gw, SHUTDOWN_TIMEOUT + MARGIN - (time.monotonic() - began)) == 0


CHUNK_TOTAL = len(CHUNK) * CHUNKS


def test_a_websocket_is_closed_with_1001_going_away(
    start: Callable[..., GatewayProcess], upstream: tuple[str, Recorder]
) -> None:
    _, seen = upstream
    gw = start()
    before = len(seen.ws_close_codes)
    with connect(f"ws://127.0.0.1:{gw.port}/open/ws", origin=gw.url, open_timeout=30) as ws:  # type: ignore[arg-type]
        ws.send("hello")
        assert ws.recv(timeout=30) == "hello"
        began = sigterm(gw)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=SHUTDOWN_TIMEOUT + MARGIN)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001, closed.value
    assert exit_status(gw, SHUTDOWN_TIMEOUT + MARGIN - (time.monotonic() - began)) == 0
    wait_until(lambda: len(seen.ws_close_codes) > before, what="the upstream to see the socket close")
    assert seen.ws_close_codes[-1] == 1001  # the upstream is told the same


def test_two_workers_with_streams_open_stop_promptly(start: Callable[..., GatewayProcess]) -> None:
    gw = start(workers=2)
    headers = logged_in(gw)
    with httpx.Client(base_url=gw.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        streams = [client.stream("GET", "/api/events", headers=headers) for _ in range(4)]
        opened = [s.__enter__() for s in streams]
        try:
            iterators = [s.iter_bytes() for s in opened]
            for chunks in iterators:
                assert b"tick" in next(chunks)
            began = sigterm(gw)
            for chunks in iterators:
                for _ in chunks:  # every stream ends cleanly, whichever worker held it
                    pass
        finally:
            for s in streams:
                s.__exit__(None, None, None)
    assert exit_status(gw, SHUTDOWN_TIMEOUT + MARGIN - (time.monotonic() - began)) == 0


DEMO_CREDENTIALS = re.compile(r"sign in as\s+(\S+)\s+/\s+(\S+)")
DEMO_SHUTDOWN_TIMEOUT = 30.0  # the shipped config.toml's [server] shutdown_timeout, which the demo writes and uses


def test_the_demo_stops_promptly_with_its_clock_streaming(tmp_path: Path) -> None:
    """``frontdesk demo`` (the gateway and its demo upstream) with the SSE clock open, sent SIGTERM the way
    ``kill PID`` does: the clock ends cleanly, the demo exits 0, and its upstream is gone too."""
    port, upstream_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "frontdesk.gateway.cli", "demo", "--config", str(tmp_path / "config.toml")]
    command += ["--port", str(port), "--upstream-port", str(upstream_port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def credentials() -> re.Match[str] | None:
            assert proc.poll() is None, f"frontdesk demo exited:\n{log.read_text()}"
            return DEMO_CREDENTIALS.search(log.read_text())

        found = wait_until(credentials, timeout=60, what="the demo's credentials")
        wait_until(lambda: answers(f"{url}/healthz"), timeout=60, what="the demo gateway")
        with AuthClient(url) as client:
            assert client.login(found.group(1), found.group(2)).status_code == 200
            with client.http.stream("GET", "/api/clock", headers=client.headers(csrf=False)) as clock:
                assert clock.status_code == 200
                events = clock.iter_bytes()
                assert b"retry" in next(events)
                began = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                for _ in events:  # ends cleanly (a reset would raise)
                    pass
        try:
            status = proc.wait(timeout=DEMO_SHUTDOWN_TIMEOUT + MARGIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"frontdesk demo was still running {DEMO_SHUTDOWN_TIMEOUT + MARGIN:g} s after SIGTERM")
        print(f"demo exited {time.monotonic() - began:.2f} s after SIGTERM")
        assert status == 0, log.read_text()
        wait_until(lambda: not answers(f"http://127.0.0.1:{upstream_port}/"), what="the demo upstream to stop")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # an upstream left behind
