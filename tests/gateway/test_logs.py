"""The log of a real ``frontdesk serve``: JSON lines (or text) from every logger, a request id per request, and
THE secret-leak test: the whole flow at DEBUG with the access log on, then every log line and every response body
searched for every secret the flow handled."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from live_gateway import GatewayProcess

from tests.support import free_port, wait_until

PASSWORD = "correct-Horse-battery-41"  # a test user's password
WRONG_PASSWORD = "wrong-Horse-battery-42"
QUERY_SECRET = "query-secret-5b1f0e"  # a token an app carries in a query string (?token=...)
GRACE = 1.0  # rotation_grace: a replay after it is reuse


class RecordingUpstream:
    """An upstream that records what it receives (the access tokens the gateway sends are secrets to look for),
    echoes the request id, and can crash halfway through a response."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        self.seen.append({n.decode("latin-1"): v.decode("latin-1") for n, v in scope["headers"]})
        if scope["path"].endswith("/crash"):
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
            await send({"type": "http.response.body", "body": b"half", "more_body": True})
            await asyncio.sleep(0.2)  # the head and the first half are on the wire before the crash
            raise RuntimeError("the upstream crashes mid-response (this test wants that)")
        body = json.dumps({"ok": True}).encode()
        headers = [(b"content-type", b"application/json"), (b"x-request-id", b"upstream-says-otherwise")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def access_tokens(self) -> set[str]:
        return {h["authorization"].removeprefix("Bearer ") for h in self.seen if "authorization" in h}


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[RecordingUpstream, int]]:
    app, port = RecordingUpstream(), free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="the recording upstream")
    yield app, port
    server.should_exit = True
    thread.join(timeout=10)


def make_gateway(factory: Any, name: str, up_port: int, fmt: str) -> GatewayProcess:
    gw: GatewayProcess = factory(
        name,
        start=False,
        users={"alice": PASSWORD},
        tokens={"rotation_grace": f"{GRACE:g}s"},
        routes=[{"prefix": "/api/", "upstream": f"http://127.0.0.1:{up_port}/"}],
        server={"trusted_proxies": ["127.0.0.1"]},  # a client on 127.0.0.2 is not a trusted proxy
        log={"format": fmt, "level": "debug", "access_log": True},
    )
    gw.log_level = "debug"
    return gw.start()


def json_lines(gw: GatewayProcess) -> list[dict[str, Any]]:
    """Every line of the server's output, each of which must be one JSON object."""
    lines = []
    for text in gw.log().splitlines():
        if text.strip():
            line = json.loads(text)  # fails the test on any line that is not JSON
            assert isinstance(line, dict), text
            lines.append(line)
    return lines


# --- request ids -----------------------------------------------------------------------------------------


def test_request_ids_from_trusted_proxies_only_sent_upstream_and_back(
    gateway_factory: Any, upstream: tuple[RecordingUpstream, int]
) -> None:
    app, up_port = upstream
    gw = make_gateway(gateway_factory, "request-ids", up_port, "json")
    with gw.client(local_address="127.0.0.2") as browser, gw.client() as behind_proxy:
        assert browser.login("alice", PASSWORD).status_code == 200
        assert behind_proxy.login("alice", PASSWORD).status_code == 200

        # A client that is not a trusted proxy cannot choose its id, nor smuggle one upstream.
        r = browser.request("GET", "/api/items", headers={"X-Request-ID": "forged-by-the-client"})
        assert r.status_code == 200
        rid = r.headers["x-request-id"]
        assert rid != "forged-by-the-client" and len(rid) == 32 and int(rid, 16) >= 0
        assert r.headers.get_list("x-request-id") == [rid]  # the upstream's own id is replaced, not added
        assert app.seen[-1]["x-request-id"] == rid

        # A trusted proxy's id is kept when it is sane, and replaced when it is not.
        r = behind_proxy.request("GET", "/api/items", headers={"X-Request-ID": "nginx-7f3a:01"})
        assert r.headers["x-request-id"] == "nginx-7f3a:01" and app.seen[-1]["x-request-id"] == "nginx-7f3a:01"
        for insane in ("x" * 129, "two words", "a\\b"):
            r = behind_proxy.request("GET", "/api/items", headers={"X-Request-ID": insane})
            assert r.headers["x-request-id"] != insane and len(r.headers["x-request-id"]) == 32

        # Every response carries one: /auth/*, errors, health, the SPA.
        for method, path, status in (
            ("GET", "/auth/session", 200),
            ("POST", "/auth/nowhere", 404),
            ("GET", "/healthz", 200),
            ("GET", "/", 200),
        ):
            r = browser.request(method, path)
            assert r.status_code == status and len(r.headers["x-request-id"]) == 32, (path, r.headers)
        r = browser.request("GET", "/api/items", cookie=None)
        assert r.status_code == 401 and len(r.headers["x-request-id"]) == 32

    # The id is on the lines written while handling that request: here uvicorn's access line.
    wait_until(lambda: any(line.get("request_id") == rid for line in json_lines(gw)), what="the request's log line")
    access = [line for line in json_lines(gw) if line["logger"] == "uvicorn.access" and line.get("request_id") == rid]
    assert access and access[0]["path"] == "/api/items" and access[0]["status"] == 200


# --- THE secret-leak test ----------------------------------------------------------------------------------


def websocket_handshake(port: int, target: str, cookie: str) -> str:
    """Send a WebSocket upgrade; return the response's status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{port}\r\nCookie: __Host-frontdesk={cookie}\r\n\r\n".encode()
        )
        return sock.recv(4096).decode("latin-1").split("\r\n")[0]


def run_the_whole_flow(gw: GatewayProcess, app: RecordingUpstream) -> tuple[set[str], list[httpx.Response]]:
    """Login (failed and ok), proxied requests, refresh, reuse detection, bad inputs, an upstream crash, a forced
    traceback, logout. Returns every secret the flow handled and every response it got."""
    secrets = {PASSWORD, WRONG_PASSWORD, QUERY_SECRET, *(v for k, v in gw.env.items() if k.startswith("FRONTDESK_"))}
    responses: list[httpx.Response] = []
    ua = {"User-Agent": "LeakTest/1.0"}

    def keep(r: httpx.Response) -> httpx.Response:
        responses.append(r)
        for header in r.headers.get_list("set-cookie"):
            value = header.split(";")[0].split("=", 1)[1]
            if value:
                secrets.add(value)  # refresh cookies (each rotation) and the device cookie
        return r

    with gw.client() as client, gw.client(local_address="127.0.0.3") as other:
        assert keep(client.login("alice", WRONG_PASSWORD, headers=ua)).status_code == 401
        assert keep(client.login("alice", PASSWORD, headers=ua)).status_code == 200
        first_cookie = client.cookie
        assert keep(client.request("GET", f"/api/items?token={QUERY_SECRET}&page=2")).status_code == 200
        assert keep(client.request("POST", "/api/items", json={"text": "milk"})).status_code == 200
        time.sleep(1.1)  # /auth/refresh coalesces rotations less than a second apart
        assert keep(client.refresh()).status_code == 200
        assert client.cookie != first_cookie
        assert keep(client.request("GET", "/api/items")).status_code == 200

        # Bad inputs and refusals: every one a 4xx with a JSON body.
        for r in (
            other.request("POST", "/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}),
            other.request("POST", "/auth/login", json={"username": "alice", "password": PASSWORD, "extra": 1}),
            other.request("POST", "/auth/login", json={"username": "alice", "password": "x" * 2000}),
            other.request("POST", "/auth/login", data={"username": "alice", "password": PASSWORD}),
            other.request("GET", "/auth/session", cookie="not.a.token"),
            other.request("GET", "/auth/session", cookie=first_cookie + "tampered"),
            other.request("GET", "/api/items", headers={"Authorization": f"Bearer {first_cookie}"}, cookie=None),
            other.request("POST", "/api/items", csrf=False, cookie=client.cookie, follow=False),
            other.request("GET", "/api/%2e%2e/secret"),
        ):
            keep(r)
            assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith("application/json"), r

        # A WebSocket handshake with a token in its query string (refused: this route takes no WebSockets).
        status_line = websocket_handshake(gw.port, f"/api/socket?token={QUERY_SECRET}", client.cookie or "")
        assert status_line.split()[1].startswith("4"), status_line

        # The upstream dies halfway through a response: a 502, or a cut connection once the body has begun.
        with contextlib.suppress(httpx.HTTPError):
            assert keep(client.request("GET", "/api/crash")).status_code == 502

        # Refresh-token reuse: the first cookie, replayed once the grace is over, ends the whole session.
        time.sleep(GRACE + 0.5)
        r = keep(other.request("GET", "/auth/session", cookie=first_cookie, follow=False))
        assert r.status_code == 401 and r.json()["error"] == "token_reused"

        # Log in again and log out.
        assert keep(client.login("alice", PASSWORD, headers=ua)).status_code == 200
        assert keep(client.request("GET", "/api/items")).status_code == 200
        assert keep(client.logout(headers=ua)).status_code == 204

        # A forced traceback: the users table is gone (an operator's mistake), so a login fails deep inside.
        db = sqlite3.connect(gw.db_path)
        db.execute("DROP TABLE users")
        db.commit()
        db.close()
        r = keep(client.login("alice", PASSWORD, headers=ua))
        assert r.status_code == 500 and r.json()["error"] == "internal_error"

    secrets |= app.access_tokens()
    assert app.access_tokens(), "the upstream never received an access token"
    # A token's signature alone is as good as the token for a forger's purposes: look for it on its own too.
    secrets |= {token.rsplit(".", 1)[1] for token in list(secrets) if token.count(".") == 2}
    return secrets, responses


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_no_secret_reaches_a_log_line_or_an_error_body(
    gateway_factory: Any, upstream: tuple[RecordingUpstream, int], fmt: str
) -> None:
    app, up_port = upstream
    gw = make_gateway(gateway_factory, f"leaks-{fmt}", up_port, fmt)
    secrets, responses = run_the_whole_flow(gw, app)
    wait_until(lambda: "internal_error" in gw.log() or "no such table" in gw.log(), what="the traceback")
    gw.stop()  # everything flushed: the audit writer's last lines, the shutdown lines
    log = gw.log()

    leaks = [(secret, line) for line in log.splitlines() for secret in secrets if secret in line]
    assert not leaks, f"secrets in the log: {leaks[:3]}"
    for r in responses:
        if r.status_code >= 400:
            assert not [s for s in secrets if s in r.text], (r.request.url, r.text)

    # The flow was really logged: DEBUG lines, the access log, the audit trail, the traceback, the crash.
    assert "Traceback (most recent call last)" in log and "no such table: users" in log
    assert "login.failed" in log and "refresh.reuse_detected" in log and "logout" in log
    assert "GET /api/items?..." in log or '"path": "/api/items?..."' in log
    if fmt == "json":
        lines = json_lines(gw)
        assert {"DEBUG", "INFO", "WARNING", "ERROR"} <= {line["level"] for line in lines}
        loggers = {line["logger"] for line in lines}
        assert {"uvicorn.access", "uvicorn.error", "frontdesk.audit", "frontdesk.auth"} <= loggers
        (trace,) = [line for line in lines if "no such table" in line.get("exc", "")]
        assert trace.get("request_id"), trace  # the traceback says which request it belongs to
        failed = next(line for line in lines if line.get("audit", {}).get("kind") == "login.failed")
        assert failed["request_id"] and failed["audit"]["user_agent"] == "LeakTest/1.0", failed
    else:
        assert "DEBUG:" in log and "ERROR:" in log

