"""Every error body the gateway writes, whichever layer refuses, has one byte shape: compact JSON
``{"error":"code","detail":"text"}`` (issue 8, item 21), written by ``middleware.http.error_json``.

One real ``frontdesk serve`` answers refusals from ``/auth/*``, the static files, the proxy (its own checks,
an unreachable upstream, a refused WebSocket upgrade); bearer mode answers from the middleware on uvicorn.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import httpx
import pytest
from live_gateway import GatewayProcess
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from frontdesk.middleware.bearer import bearer_error_response
from frontdesk.middleware.errors import InsufficientScope, InvalidToken, NotAuthenticated, RateLimited
from frontdesk.middleware.http import error_json, error_response
from tests.support import free_port


def one_shape(body: bytes) -> dict[str, Any]:
    """The body parsed, after checking it is exactly what the one writer produces for it."""
    payload = json.loads(body)
    assert set(payload) == {"error", "detail"}, body
    assert body == json.dumps(payload, separators=(",", ":")).encode(), body
    assert body == error_json(payload["error"], payload["detail"])
    return dict(payload)


@pytest.fixture(scope="module")
def gw(gateway_factory: Any) -> GatewayProcess:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every proxied call is a 502
    return gateway_factory(
        "error-bodies",
        routes=[
            {"prefix": "/open/", "upstream": dead, "auth": "none", "csrf": False},
            {"prefix": "/private/", "upstream": dead},
        ],
    )


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("GET", "/auth/nope", {"X-CSRF": "1"}, 404, "not_found"),  # /auth/* (middleware.auth_api)
        ("GET", "/auth/login", {"X-CSRF": "1"}, 405, "method_not_allowed"),
        ("POST", "/auth/login", {}, 403, None),  # no CSRF header
        ("GET", "/missing.js", {}, 404, "not_found"),  # the static files
        ("POST", "/index.html", {}, 405, "method_not_allowed"),
        ("GET", "/open/x", {}, 502, "upstream_unavailable"),  # the proxy: upstream unreachable
        ("GET", "/open/%2e%2e/etc", {}, 400, "bad_path"),  # the proxy's own checks
        ("DELETE", "/private/x", {}, 403, None),  # CSRF on a proxied route
        ("GET", "/private/x", {"X-CSRF": "1"}, 401, None),  # no session
    ],
)
def test_every_gateway_layer_writes_the_same_shape(
    gw: GatewayProcess, method: str, path: str, headers: dict[str, str], status: int, code: str | None
) -> None:
    r = httpx.request(method, gw.url + path, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    payload = one_shape(r.content)
    if code is not None:
        assert payload["error"] == code


def test_a_refused_websocket_upgrade_writes_the_same_shape(gw: GatewayProcess) -> None:
    ws_url = gw.url.replace("http://", "ws://") + "/open/socket"
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, origin=gw.url, open_timeout=10)  # type: ignore[arg-type]
    response = refused.value.response
    assert response.status_code == 403
    assert one_shape(response.body or b"")["error"] == "websocket_refused"


def test_bearer_mode_writes_the_same_shape(server_process: Any, gateway_secrets: dict[str, str]) -> None:
    # The demo upstream is an ordinary Starlette app in bearer mode (FrontdeskMiddleware + BearerAuth).
    port = free_port()
    env = {**os.environ, **gateway_secrets}
    args = [sys.executable, "-m", "frontdesk.gateway.demo_upstream", "--port", str(port)]
    upstream = server_process(args, name="demo upstream", env=env)
    url = f"http://127.0.0.1:{port}/api/me"
    upstream.wait_answers(url)
    for headers in ({}, {"Authorization": "Bearer a.b.c"}, {"Authorization": "Basic x"}):
        r = httpx.get(url, headers=headers)
        assert r.status_code == 401 and "www-authenticate" in r.headers
        one_shape(r.content)
    for exc in (NotAuthenticated("missing"), InvalidToken('bad "token"'), InsufficientScope("needs admin")):
        one_shape(bearer_error_response(exc).body)


def test_the_writer_escapes_and_stays_compact() -> None:
    assert error_json("x", 'a "quoted" détail') == b'{"error":"x","detail":"a \\"quoted\\" d\\u00e9tail"}'
    response = error_response(RateLimited(7, "slow down"))
    assert response.body == error_json("rate_limited", "slow down")
    assert ("retry-after", "7") in response.headers
