"""Prometheus metrics (issue 10, item 2): a real ``frontdesk serve --workers 2`` behind a real upstream, scraped
over HTTP on its own address and parsed with ``prometheus_client.parser``.

The counts must add up across both workers (each request goes over a connection pinned to a known worker), no
request can add a label value, the gateway's own port never serves the metrics, and a bad or taken
``[metrics] address`` stops the start with a plain message.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from live_gateway import GatewayProcess, make_secrets, write_config
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from frontdesk.gateway.config import load_config
from frontdesk.gateway.metrics.definitions import GatewayMetrics, revocation_reason, upstream_error_kind
from frontdesk.gateway.metrics.store import metered_store
from frontdesk.gateway.proxy.errors import (
    BrowserGone,
    PayloadTooLarge,
    SessionEnded,
    UpstreamClosed,
    UpstreamConnectTimeout,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from frontdesk.middleware.errors import FrontdeskError, StoreError
from frontdesk.middleware.store import MemoryStore, SessionRecord, Store
from frontdesk.middleware.store.base import CountsSessions
from tests.support import free_port, wait_until

USERS = {"mia": "mia-password-1"}
PER_WORKER = 3  # proxied GETs sent over each worker's pinned connection

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# --- a real upstream: JSON, an event stream and a WebSocket echo -----------------------------------------


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text") or ""})
    if scope["path"] == "/api/events":
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: hello\n\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        return
    body = json.dumps({"path": scope["path"]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(upstream_app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="the test upstream")
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def routes(upstream: int) -> list[dict[str, Any]]:
    return [
        {"prefix": "/api/", "upstream": f"http://127.0.0.1:{upstream}"},
        {"prefix": "/ws/", "upstream": f"http://127.0.0.1:{upstream}", "websocket": True},
        {"prefix": "/dead/", "upstream": f"http://127.0.0.1:{free_port()}", "auth": "none", "csrf": False},
    ]


# --- scraping --------------------------------------------------------------------------------------------


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_values(samples: Samples, label: str) -> set[str]:
    return {v for (_, labels) in samples for k, v in labels if k == label}


def listening_ports(pid: int) -> set[int]:
    """TCP ports process ``pid`` listens on (Linux /proc: its socket inodes in the LISTEN state)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:  # 0A: LISTEN
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


# --- two workers -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def gw(gateway_factory: Any, upstream: int, metrics_port: int) -> GatewayProcess:
    return gateway_factory(
        "metrics",
        workers=2,
        users=USERS,
        routes=routes(upstream),
        metrics={"address": f"127.0.0.1:{metrics_port}"},
    )


def test_two_workers_report_one_view_that_adds_up(gw: GatewayProcess, metrics_port: int) -> None:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    before = scrape(url)
    clients = gw.clients_per_worker(1)
    (pid_a, (a,)), (pid_b, (b,)) = sorted(clients.items())
    try:
        # A login on worker A, a bad one on worker B.
        assert a.login("mia", USERS["mia"]).status_code == 200
        assert gw.worker_of(a.responses[-1]) == pid_a
        assert b.login("mia", "not-the-password").status_code == 401
        assert gw.worker_of(b.responses[-1]) == pid_b
        # Proxied requests on both workers, with the one session.
        b.cookie = a.cookie
        for client, pid in ((a, pid_a), (b, pid_b)):
            for i in range(PER_WORKER):
                r = client.request("GET", f"/api/items/{i}")
                assert r.status_code == 200, r.text
                assert gw.worker_of(r) == pid, "the pinned connection was re-opened to another worker"
        # An unreachable upstream.
        assert httpx.get(gw.url + "/dead/x").status_code == 502
    finally:
        a.close()
        b.close()

    after = scrape(url)

    def added(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert added("frontdesk_requests_total", route="/api/", method="GET", status="2xx") == 2 * PER_WORKER
    assert added("frontdesk_requests_total", route="/auth/", method="POST", status="2xx") == 1
    assert added("frontdesk_requests_total", route="/auth/", method="POST", status="4xx") == 1
    assert added("frontdesk_requests_total", route="/dead/", method="GET", status="5xx") == 1
    assert added("frontdesk_upstream_response_seconds_count", route="/api/") == 2 * PER_WORKER
    assert added("frontdesk_upstream_errors_total", route="/dead/", kind="connect") == 1
    assert added("frontdesk_upstream_errors_total", route="/api/", kind="connect") == 0
    # From the session engine's events: one login each way; worker A minted at login, worker B for its
    # first proxied request (access tokens are cached per worker).
    assert added("frontdesk_logins_total", outcome="ok") == 1
    assert added("frontdesk_logins_total", outcome="bad_credentials") == 1
    assert added("frontdesk_access_tokens_minted_total") == 2
    # The timed store: the login created one session, on worker A.
    assert added("frontdesk_store_operation_seconds_count", operation="create_session") == 1
    assert added("frontdesk_store_errors_total", operation="create_session") == 0
    # Sampled by each worker: both caches hold the session now, and the store has one live session.
    wait_until(
        lambda: value(scrape(url), "frontdesk_cache_entries", cache="session_states") >= 2,
        what="both workers' cache samples",
    )
    # ... and the cookie's verified grant, memoised by every worker that answered a proxied request with it
    wait_until(lambda: value(scrape(url), "frontdesk_cache_entries", cache="grants") >= 1, what="the grant memo")
    wait_until(lambda: value(scrape(url), "frontdesk_sessions_active") == 1, what="the live-session sample")


def test_rotation_reuse_and_logout_are_counted_from_the_events(gw: GatewayProcess, metrics_port: int) -> None:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    before = scrape(url)
    with gw.client() as client:
        assert client.login("mia", USERS["mia"]).status_code == 200
        first = client.cookie
        # /auth/refresh rotates (a second after the last rotation at the earliest).
        wait_until(lambda: client.refresh().status_code == 200 and client.cookie != first, what="a rotation")
        # The superseded token, once past the rotation grace, is reuse: the session is revoked.
        wait_until(lambda: client.session(cookie=first, follow=False).status_code == 401, what="reuse detection")
    with gw.client() as client:
        assert client.login("mia", USERS["mia"]).status_code == 200
        assert client.logout().status_code == 204
    after = scrape(url)

    def added(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert added("frontdesk_refresh_rotations_total") == 1
    assert added("frontdesk_refresh_reuse_detected_total") == 1
    assert added("frontdesk_sessions_revoked_total", reason="reuse") == 1
    assert added("frontdesk_sessions_revoked_total", reason="logout") == 1
    assert added("frontdesk_logins_total", outcome="ok") == 2


def test_random_paths_add_no_label_values(gw: GatewayProcess, metrics_port: int) -> None:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    junk = secrets.token_hex(8)
    for path in (f"/{junk}", f"/api/{junk}", f"/auth/{junk}", f"/dead/{junk}"):
        httpx.request("PROPFIND", gw.url + path)
        httpx.get(gw.url + path, headers={"X-CSRF": "1"})
    samples = scrape(url)
    assert not any(junk in v for v in label_values(samples, "route") | label_values(samples, "method"))
    assert label_values(samples, "route") <= {"/api/", "/ws/", "/dead/", "/auth/", "internal", "static"}
    assert label_values(samples, "method") <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert label_values(samples, "status") <= {"1xx", "2xx", "3xx", "4xx", "5xx", "none"}
    assert value(samples, "frontdesk_requests_total", route="static", method="other", status="4xx") >= 1


def test_open_websockets_and_event_streams_are_gauged(gw: GatewayProcess, metrics_port: int) -> None:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with gw.client() as client:
        assert client.login("mia", USERS["mia"]).status_code == 200
        cookie = f"__Host-frontdesk={client.cookie}"
        ws_url = gw.url.replace("http://", "ws://") + "/ws/echo"
        with connect(ws_url, origin=gw.url, additional_headers={"Cookie": cookie}, open_timeout=20) as ws:  # type: ignore[arg-type]
            ws.send("ping")
            assert ws.recv(timeout=10) == "ping"
            assert value(scrape(url), "frontdesk_websockets_open") == 1
        wait_until(lambda: value(scrape(url), "frontdesk_websockets_open") == 0, what="the WebSocket gauge to drop")

        headers = {"Cookie": cookie, "X-CSRF": "1"}
        with httpx.stream("GET", gw.url + "/api/events", headers=headers, timeout=20) as stream:
            assert stream.status_code == 200
            chunks = stream.iter_raw()  # held: a dropped iterator would close the stream
            assert next(chunks).startswith(b"data: hello")  # the first event arrived: the stream is open
            wait_until(lambda: value(scrape(url), "frontdesk_sse_streams_open") == 1, what="the SSE gauge")
        wait_until(lambda: value(scrape(url), "frontdesk_sse_streams_open") == 0, what="the SSE gauge to drop")


def test_the_gateway_port_never_serves_the_metrics(gw: GatewayProcess, metrics_port: int) -> None:
    for path in ("/metrics", "/metrics?format=prometheus"):
        r = httpx.get(gw.url + path)
        assert r.status_code == 404, r.text
        assert "frontdesk_" not in r.text
    # One listener, in the parent process, whatever the number of workers.
    assert gw.proc is not None
    assert metrics_port in listening_ports(gw.proc.pid)
    assert all(metrics_port not in listening_ports(pid) for pid in gw.worker_pids())


def test_a_dead_worker_keeps_its_counts_and_drops_its_open_sockets(gw: GatewayProcess, metrics_port: int) -> None:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with gw.client() as client:
        assert client.login("mia", USERS["mia"]).status_code == 200
        cookie = f"__Host-frontdesk={client.cookie}"
    ws_url = gw.url.replace("http://", "ws://") + "/ws/echo"
    with connect(ws_url, origin=gw.url, additional_headers={"Cookie": cookie}, open_timeout=20) as ws:  # type: ignore[arg-type]
        ws.send("ping")
        assert ws.recv(timeout=10) == "ping"
        before = scrape(url)
        assert value(before, "frontdesk_websockets_open") == 1
        worker = gw.serving_pid(ws.socket.getsockname()[1])
        assert worker is not None
        os.kill(worker, signal.SIGKILL)  # uvicorn's supervisor starts another in its place
        wait_until(lambda: value(scrape(url), "frontdesk_websockets_open") == 0, what="the dead worker's socket to go")
        after = scrape(url)
        for key, count in before.items():
            if key[0].endswith("_total"):
                assert after.get(key, 0.0) >= count, f"{key} went down when a worker died"


# --- one worker, and metrics off -------------------------------------------------------------------------


def test_one_worker_serves_its_own_registry(gateway_factory: Any, upstream: int) -> None:
    port = free_port()
    gw = gateway_factory("metrics-one", users=USERS, routes=routes(upstream), metrics={"address": f"127.0.0.1:{port}"})
    with gw.client() as client:
        assert client.login("mia", USERS["mia"]).status_code == 200
        assert client.request("GET", "/api/one").status_code == 200
    samples = scrape(f"http://127.0.0.1:{port}/metrics")
    assert value(samples, "frontdesk_logins_total", outcome="ok") == 1
    assert value(samples, "frontdesk_requests_total", route="/api/", method="GET", status="2xx") == 1
    gw.stop()


def test_an_empty_address_turns_metrics_off(gateway_factory: Any, upstream: int) -> None:
    gw = gateway_factory("metrics-off", workers=2, routes=routes(upstream), metrics={"address": ""})
    assert gw.proc is not None
    wait_until(lambda: len(gw.worker_pids()) == 2, what="both workers")
    assert listening_ports(gw.proc.pid) <= {gw.port}
    for pid in gw.worker_pids():
        assert b"PROMETHEUS_MULTIPROC_DIR" not in Path(f"/proc/{pid}/environ").read_bytes()
    gw.stop()


# --- refused at start ------------------------------------------------------------------------------------


def serve(tmp_path: Path, address: str) -> subprocess.CompletedProcess[str]:
    config = write_config(tmp_path / "config.toml", metrics={"address": address})
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")} | make_secrets()
    args = [sys.executable, "-m", "frontdesk.gateway.cli", "serve", "--config", str(config), "--port", str(free_port())]
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("address", ["localhost:9464", "127.0.0.1", "127.0.0.1:99999", "0.0.0.0:http"])
def test_a_bad_address_is_refused_at_start(tmp_path: Path, address: str) -> None:
    result = serve(tmp_path, address)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "metrics.address" in result.stderr


def test_an_address_in_use_is_refused_at_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path, f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"metrics.address 127.0.0.1:{port}: cannot listen there" in result.stderr


def test_the_config_names_every_metrics_problem(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml", metrics={"address": "127.0.0.1:8000", "path": "/m"})
    with pytest.raises(Exception) as refused:
        load_config(config, env=make_secrets())
    text = str(refused.value)
    assert "metrics.path: unknown key" in text
    assert "is the gateway's own address" in text


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("refresh token reuse", "reuse"),
        ("logout", "logout"),
        ("replaced by a new login", "replaced"),
        ("password changed", "password_changed"),
        ("user removed", "user_removed"),
        ("anything else an operator typed", "other"),
        (None, "other"),
    ],
)
def test_revocation_reasons_map_to_a_fixed_set(reason: str | None, label: str) -> None:
    assert revocation_reason(reason) == label


# --- the parts, in process -------------------------------------------------------------------------------


class FailingReads(MemoryStore):
    async def get_session(self, sid: str) -> SessionRecord | None:
        raise StoreError("the disk is gone")

    def backend_extra(self) -> str:
        return "passed through"


async def test_the_timed_store_counts_calls_and_errors_and_passes_extras_through() -> None:
    metrics = GatewayMetrics([])
    store = metered_store(FailingReads(), metrics)
    assert isinstance(store, Store) and isinstance(store, CountsSessions)
    await store.open()
    assert await store.count_live_sessions(now=0.0) == 0
    with pytest.raises(StoreError):
        await store.get_session("s1")
    sample = metrics.registry.get_sample_value
    assert sample("frontdesk_store_operation_seconds_count", {"operation": "get_session"}) == 1
    assert sample("frontdesk_store_errors_total", {"operation": "get_session"}) == 1
    assert sample("frontdesk_store_operation_seconds_count", {"operation": "count_live_sessions"}) == 1
    assert sample("frontdesk_store_errors_total", {"operation": "count_live_sessions"}) == 0
    assert store.backend_extra() == "passed through"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (UpstreamUnavailable("refused"), "connect"),
        (UpstreamConnectTimeout("no connection in 5 s"), "connect"),
        (UpstreamTimeout("no answer in 30 s"), "timeout"),
        (UpstreamClosed("reset"), "reset"),
        (UpstreamProtocolError("not HTTP"), "protocol"),
        (BrowserGone("the browser left"), None),
        (SessionEnded("logged out"), None),
        (PayloadTooLarge("too big"), None),
    ],
)
def test_upstream_errors_map_to_a_fixed_set(error: FrontdeskError, kind: str | None) -> None:
    assert upstream_error_kind(error) == kind
