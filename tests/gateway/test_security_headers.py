"""Security headers on every response the gateway writes, and caching rules on proxied ones (issue 8, item 10).

A real ``frontdesk serve`` with ``[server] hsts`` in front of a real upstream (uvicorn in a subprocess) that
answers with and without headers of its own. Every response the gateway writes itself (``/auth/*``,
``/healthz``, the JWKS, static files and their 404s and redirects, proxy refusals, a refused WebSocket
upgrade) carries ``nosniff``, a framing ban, a ``Referrer-Policy`` and HSTS; a proxied response gets the
same defaults where the upstream set none (the upstream's own always win); an authenticated proxied response
gets ``Cache-Control: private`` unless the upstream chose its own caching, and ``Vary: Cookie``.
"""

from __future__ import annotations

import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_gateway import AuthClient, GatewayProcess
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from frontdesk.gateway.config import load_config
from frontdesk.gateway.errors import ConfigError
from tests.support import ServerProcess, free_port

USERS = {"alice": "alice-password-123"}
HSTS = "max-age=31536000"

UPSTREAM = textwrap.dedent(
    """
    import json

    HEADERS = {
        "/api/plain": [],
        "/api/cached": [(b"cache-control", b"public, max-age=60"), (b"vary", b"Accept-Encoding")],
        "/api/framed": [
            (b"x-frame-options", b"SAMEORIGIN"),
            (b"referrer-policy", b"origin"),
            (b"x-content-type-options", b"nosniff"),
            (b"strict-transport-security", b"max-age=60"),
        ],
        "/api/csp": [(b"content-security-policy", b"default-src 'self'")],
        "/api/csp-framed": [(b"content-security-policy", b"default-src 'self'; frame-ancestors https://a.example")],
    }


    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = json.dumps({"path": scope["path"]}).encode()
        headers = [(b"content-type", b"application/json"), *HEADERS.get(scope["path"], [])]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["path"] == "/api/stream":
            for _ in range(3):
                await send({"type": "http.response.body", "body": b"data: x\\n\\n", "more_body": True})
        await send({"type": "http.response.body", "body": body})
    """
)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    workdir = tmp_path_factory.mktemp("headers-upstream")
    (workdir / "header_upstream.py").write_text(UPSTREAM)
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "header_upstream:app", "--port", str(port), "--log-level", "warning"]
    with ServerProcess(args, workdir / "upstream.log", cwd=workdir, name="header upstream") as upstream:
        upstream.wait_answers(f"http://127.0.0.1:{port}/api/plain")
        yield port


@pytest.fixture(scope="module")
def gw(gateway_factory: Any, upstream: int) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        "security-headers",
        users=USERS,
        server={"hsts": "365d"},
        static={"directory": "site"},
        routes=[
            {"prefix": "/api/", "upstream": f"http://127.0.0.1:{upstream}"},
            {"prefix": "/pub/", "upstream": f"http://127.0.0.1:{upstream}/api/", "auth": "none", "csrf": False},
            {"prefix": "/dead/", "upstream": f"http://127.0.0.1:{free_port()}", "auth": "none", "csrf": False},
        ],
        start=False,
    )
    site = gw.workdir / "site"
    (site / "docs").mkdir(parents=True)
    (site / "docs" / "index.html").write_text("<!doctype html><title>docs</title>")
    (site / "index.html").write_text("<!doctype html><title>app</title>")
    (site / "app.js").write_text("export {};")
    return gw.start()


@pytest.fixture(scope="module")
def alice(gw: GatewayProcess) -> Iterator[AuthClient]:
    with gw.client() as client:
        assert client.login("alice", USERS["alice"]).status_code == 200
        yield client


def assert_secured(r: httpx.Response, *, hsts: str | None = HSTS) -> None:
    where = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
    assert r.headers.get_list("x-content-type-options") == ["nosniff"], where
    assert r.headers.get_list("x-frame-options") == ["DENY"], where
    (csp,) = r.headers.get_list("content-security-policy")
    assert "frame-ancestors 'none'" in csp, where
    assert len(r.headers.get_list("referrer-policy")) == 1, where
    assert r.headers.get_list("strict-transport-security") == ([hsts] if hsts else []), where


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/auth/session", 401),
        ("GET", "/auth/nope", 404),
        ("POST", "/auth/login", 403),  # no CSRF header
        ("GET", "/.well-known/jwks.json", None),
        ("GET", "/", 200),
        ("GET", "/app.js", 200),
        ("GET", "/some/client/route", 200),
        ("GET", "/missing.js", 404),
        ("GET", "/.env", 404),
        ("GET", "/docs", 307),
        ("POST", "/app.js", 405),
        ("GET", "/api/plain", 401),  # the proxy refuses: no session
        ("GET", "/api/%2e%2e/x", 400),
        ("GET", "/dead/x", 502),
    ],
)
def test_every_response_the_gateway_writes_is_secured(gw: GatewayProcess, method: str, path: str, status: int) -> None:
    headers = {} if path == "/auth/login" else {"X-CSRF": "1"}
    r = httpx.request(method, gw.url + path, headers=headers)
    if status is not None:
        assert r.status_code == status, r.text
    assert_secured(r)


def test_the_spa_keeps_its_own_policy(gw: GatewayProcess) -> None:
    r = httpx.get(gw.url + "/")
    (csp,) = r.headers.get_list("content-security-policy")
    assert "script-src 'self'" in csp  # the SPA's full policy, not replaced by the bare framing one
    assert r.headers["referrer-policy"] == "no-referrer"


def test_a_refused_websocket_upgrade_is_secured(gw: GatewayProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(gw.url.replace("http://", "ws://") + "/pub/socket", origin=gw.url, open_timeout=10)  # type: ignore[arg-type]
    response = refused.value.response
    assert response.status_code == 403
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["strict-transport-security"] == HSTS


@pytest.mark.parametrize("path", ["/api/plain", "/api/stream"])
def test_an_authenticated_proxied_response_is_private_and_varies_by_cookie(alice: AuthClient, path: str) -> None:
    r = alice.request("GET", path)
    assert r.status_code == 200, r.text
    assert r.headers.get_list("cache-control") == ["private"]
    assert r.headers.get_list("vary") == ["Cookie"]
    assert_secured(r)  # the upstream set nothing: the gateway's defaults apply


def test_the_upstreams_own_caching_is_kept_and_vary_is_extended(alice: AuthClient) -> None:
    r = alice.request("GET", "/api/cached")
    assert r.headers.get_list("cache-control") == ["public, max-age=60"]
    assert ", ".join(r.headers.get_list("vary")) == "Accept-Encoding, Cookie"


def test_the_upstreams_own_security_headers_win(alice: AuthClient) -> None:
    r = alice.request("GET", "/api/framed")
    assert r.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert r.headers.get_list("content-security-policy") == []  # framing was decided upstream: left alone
    assert r.headers.get_list("referrer-policy") == ["origin"]
    assert r.headers.get_list("x-content-type-options") == ["nosniff"]
    assert r.headers.get_list("strict-transport-security") == ["max-age=60"]
    r = alice.request("GET", "/api/csp")
    assert r.headers.get_list("content-security-policy") == ["default-src 'self'"]  # never rewritten
    assert r.headers.get_list("x-frame-options") == ["DENY"]  # its policy says nothing about framing
    r = alice.request("GET", "/api/csp-framed")
    assert r.headers.get_list("x-frame-options") == []  # frame-ancestors decides: no contradicting DENY


def test_an_anonymous_proxied_response_keeps_its_caching(gw: GatewayProcess) -> None:
    r = httpx.get(gw.url + "/pub/plain")
    assert r.status_code == 200
    assert "cache-control" not in r.headers and "vary" not in r.headers
    assert_secured(r)


def test_hsts_is_off_by_default(gateway_factory: Any) -> None:
    plain: GatewayProcess = gateway_factory("no-hsts")
    for path in ("/healthz", "/auth/session", "/missing.js"):
        r = httpx.get(plain.url + path)
        assert_secured(r, hsts=None)


GOOD_ENV = {"FRONTDESK_ACCESS_SECRET": "a" * 32, "FRONTDESK_REFRESH_SECRET": "b" * 32}


@pytest.mark.parametrize(("value", "max_age"), [("false", None), ('"365d"', 31536000), ('"1h"', 3600)])
def test_hsts_setting(tmp_path: Path, value: str, max_age: int | None) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[server]\nhsts = {value}\n")
    assert load_config(path, env=GOOD_ENV).hsts_max_age == max_age


@pytest.mark.parametrize("value", ["true", '"soon"', "31536000", '"0s"'])
def test_a_bad_hsts_setting_is_refused_plainly(tmp_path: Path, value: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[server]\nhsts = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env=GOOD_ENV)
    (problem,) = info.value.problems
    assert problem.startswith("server.hsts:") and '"365d"' in problem, problem


@pytest.mark.parametrize("host", [b"evil.example", b"a b"])
def test_a_live_directory_redirect_never_names_the_clients_host(gw: GatewayProcess, host: bytes) -> None:
    # Raw bytes: an HTTP client would refuse to send "Host: a b".
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(b"GET //docs?x=1 HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head = reply.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 307"), head
    assert b"\r\nlocation: /docs/?x=1\r\n" in head + b"\r\n", head
