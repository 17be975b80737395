"""Issue 9's drift cases, one table over every adapter of the admission pipeline, on real servers.

Rows: the gateway's proxy (``create_app``: real session engine, SQLite, a proxied Starlette upstream), session
mode on ASGI (Starlette on uvicorn) and session mode on WSGI (Flask on waitress). Every app answers
``/cached`` with ``Cache-Control: public, max-age=600``; whichever adapter carries a rotated refresh cookie
must turn that into ``no-store`` with ``Vary: Cookie``. A WebSocket upgrade without ``Origin`` is refused
wherever WebSockets apply (the proxy and ASGI). A manual clock, shared by every engine, makes the access token
expire so the next request rotates the cookie.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import flask
import httpx
import pytest
from mw_support import gateway_config, serve_wsgi
from mw_world import ACCESS_SECRET, COOKIE, PASSWORD, REFRESH_SECRET, authenticator, session_auth_on
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from frontdesk.gateway.app import create_app
from frontdesk.gateway.config import load_config
from frontdesk.middleware.asgi import FrontdeskMiddleware
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.sessions import SessionSettings
from frontdesk.middleware.wsgi import FrontdeskWSGIMiddleware
from tests.support import serve_in_thread

APP_CACHE = "public, max-age=600"
APP_EXPIRES = "Thu, 01 Dec 2099 16:00:00 GMT"
ACCESS_TTL = SessionSettings().access_ttl


async def cached(request: Request) -> PlainTextResponse:
    return PlainTextResponse("cacheable", headers={"Cache-Control": APP_CACHE, "Expires": APP_EXPIRES})


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


async def cached_echo(websocket: WebSocket) -> None:
    # An app that says something about caching on its own accept: a rotated cookie must still win.
    await websocket.accept(headers=[(b"cache-control", APP_CACHE.encode()), (b"expires", APP_EXPIRES.encode())])
    await websocket.send_text("hello")
    await websocket.close()


def starlette_app() -> Starlette:
    return Starlette(
        routes=[Route("/cached", cached), WebSocketRoute("/ws/echo", echo), WebSocketRoute("/ws/cached", cached_echo)]
    )


def flask_app() -> flask.Flask:
    app = flask.Flask("cached")

    @app.get("/cached")
    def cached_view() -> flask.Response:
        return flask.Response("cacheable", headers={"Cache-Control": APP_CACHE, "Expires": APP_EXPIRES})

    return app


def gateway_toml(tmp: Path, upstream: str) -> Path:
    return gateway_config(
        tmp,
        f"""
[store]
url = "sqlite:///{tmp / "frontdesk.db"}"

[login]
max_attempts_per_address = 100000

[static]
directory = "{tmp / "static"}"

[[routes]]
prefix = "/cached"
upstream = "{upstream}/cached"
methods = ["GET"]

[[routes]]
prefix = "/ws/"
upstream = "{upstream}/ws/"
websocket = true
""",
    )


@dataclass
class Row:
    name: str
    url: str
    websockets: bool


ROWS = ["proxy", "asgi-session", "wsgi-session"]


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(start=time.time())


@pytest.fixture(scope="module")
def rows(clock: ManualClock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Row]]:
    tmp = tmp_path_factory.mktemp("gateway")
    wsgi = FrontdeskWSGIMiddleware(flask_app().wsgi_app, session_auth_on(clock))
    with serve_in_thread(starlette_app()) as upstream:
        env = {"FRONTDESK_ACCESS_SECRET": ACCESS_SECRET, "FRONTDESK_REFRESH_SECRET": REFRESH_SECRET}
        config = load_config(gateway_toml(tmp, upstream), env=env)
        gateway = create_app(config, authenticator=authenticator, clock=clock)
        with (
            serve_in_thread(gateway, lifespan="on") as proxy_url,
            serve_in_thread(FrontdeskMiddleware(starlette_app(), session_auth_on(clock))) as asgi_url,
            serve_wsgi(wsgi) as wsgi_url,
        ):
            yield {
                "proxy": Row("proxy", proxy_url, websockets=True),
                "asgi-session": Row("asgi-session", asgi_url, websockets=True),
                "wsgi-session": Row("wsgi-session", wsgi_url, websockets=False),
            }
    wsgi.close()


def login(url: str) -> str:
    response = httpx.post(f"{url}/auth/login", json={"username": "ann", "password": PASSWORD}, headers={"x-csrf": "1"})
    assert response.status_code == 200, response.text
    return response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]


def as_browser(token: str, **extra: str) -> dict[str, str]:
    return {"cookie": f"{COOKIE}={token}", "x-csrf": "1", **extra}


@pytest.mark.parametrize("row", ROWS)
def test_a_rotated_cookie_is_never_cacheable_whatever_the_app_said(
    rows: dict[str, Row], clock: ManualClock, row: str
) -> None:
    url = rows[row].url
    token = login(url)
    plain = httpx.get(f"{url}/cached", headers=as_browser(token))
    assert plain.status_code == 200 and "set-cookie" not in plain.headers
    assert plain.headers["cache-control"] == APP_CACHE  # nothing rotated: the app's own caching stands
    assert "cookie" in plain.headers["vary"].lower()  # ... but a session's answer varies by its cookie

    clock.advance(ACCESS_TTL + 1)  # the access token expired: the next request rotates the refresh cookie
    rotated = httpx.get(f"{url}/cached", headers=as_browser(token))
    assert rotated.status_code == 200 and rotated.text == "cacheable"
    assert rotated.headers["set-cookie"].startswith(f"{COOKIE}=")
    assert rotated.headers.get_list("cache-control") == ["no-store"]
    assert "expires" not in rotated.headers
    assert "cookie" in rotated.headers["vary"].lower()


@pytest.mark.parametrize("row", ROWS)
def test_a_websocket_upgrade_without_origin_is_refused(rows: dict[str, Row], row: str) -> None:
    target = rows[row]
    if not target.websockets:
        pytest.skip("WSGI has no WebSockets")
    ws_url = target.url.replace("http://", "ws://") + "/ws/echo"
    token = login(target.url)
    with connect(ws_url, additional_headers=as_browser(token, origin=target.url)) as ws:
        assert ws.recv(timeout=10) == "hello"  # the control: with the page's Origin it is accepted
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, additional_headers=as_browser(token))
    assert refused.value.response.status_code == 403
    assert b'"error":"websocket_refused"' in bytes(refused.value.response.body or b"")


@pytest.mark.parametrize("path", ["/ws/echo", "/ws/cached"])
@pytest.mark.parametrize("row", ROWS)
def test_a_websocket_accept_carries_the_rotated_cookie_and_no_store_once(
    rows: dict[str, Row], clock: ManualClock, row: str, path: str
) -> None:
    target = rows[row]
    if not target.websockets:
        pytest.skip("WSGI has no WebSockets")
    ws_url = target.url.replace("http://", "ws://") + path
    token = login(target.url)
    with connect(ws_url, additional_headers=as_browser(token, origin=target.url)) as ws:
        assert ws.recv(timeout=10) == "hello"
        assert ws.response.headers.get_all("set-cookie") == []  # nothing rotated: nothing added

    clock.advance(ACCESS_TTL + 1)  # the access token expired: this upgrade rotates the refresh cookie
    with connect(ws_url, additional_headers=as_browser(token, origin=target.url)) as ws:
        assert ws.recv(timeout=10) == "hello"
        headers = ws.response.headers
    cookies = headers.get_all("set-cookie")
    assert len(cookies) == 1 and cookies[0].startswith(f"{COOKIE}=") and token not in cookies[0]
    assert headers.get_all("cache-control") == ["no-store"]
    assert headers.get_all("expires") == []


GARBAGE_COOKIE = {"cookie": f"{COOKIE}=not-a-token"}
CSRF = {"x-csrf": "1", "content-type": "application/json"}
# (method, path, headers, body): every bad input to /auth/*, answered by the pipeline's endpoint path.
BAD_AUTH_INPUTS: dict[str, tuple[str, str, dict[str, str], bytes | None]] = {
    "login without the csrf header": ("POST", "/auth/login", {}, b'{"username":"ann","password":"x"}'),
    "login from another site": ("POST", "/auth/login", {**CSRF, "origin": "https://evil.example"}, b"{}"),
    "login with broken json": ("POST", "/auth/login", CSRF, b'{"username":'),
    "login with a json list": ("POST", "/auth/login", CSRF, b"[1, 2]"),
    "login as text/plain": ("POST", "/auth/login", {**CSRF, "content-type": "text/plain"}, b"{}"),
    "login without a password": ("POST", "/auth/login", CSRF, b'{"username":"ann"}'),
    "login with a number for a name": ("POST", "/auth/login", CSRF, b'{"username":7,"password":"x"}'),
    "login with a wrong password": ("POST", "/auth/login", CSRF, b'{"username":"ann","password":"wrong"}'),
    "login body over the limit": ("POST", "/auth/login", CSRF, b'{"username":"' + b"a" * 20_000 + b'"}'),
    "login body not utf-8": ("POST", "/auth/login", CSRF, b'{"username":"\xff\xfe","password":"x"}'),
    "login with GET": ("GET", "/auth/login", CSRF, None),
    "an unknown auth path": ("GET", "/auth/nothing-here", CSRF, None),
    "refresh without a cookie": ("POST", "/auth/refresh", CSRF, None),
    "refresh with a garbage cookie": ("POST", "/auth/refresh", {**CSRF, **GARBAGE_COOKIE}, None),
    "refresh without the csrf header": ("POST", "/auth/refresh", GARBAGE_COOKIE, None),
    "session with a garbage cookie": ("GET", "/auth/session", GARBAGE_COOKIE, None),
    "logout with a garbage cookie": ("POST", "/auth/logout", {**CSRF, **GARBAGE_COOKIE}, None),
    "logout without the csrf header": ("POST", "/auth/logout", GARBAGE_COOKIE, None),
}


def auth_answer(url: str, method: str, path: str, headers: dict[str, str], body: bytes | None) -> dict[str, object]:
    """What a browser learns from an /auth/* answer (the security headers are the gateway's own, checked apart)."""
    response = httpx.request(method, url + path, headers=headers, content=body)
    return {
        "status": response.status_code,
        "body": response.content,
        "content-type": response.headers.get("content-type"),
        "cache-control": response.headers.get_list("cache-control"),
        "set-cookie": response.headers.get_list("set-cookie"),
        "allow": response.headers.get("allow"),
        "retry-after": response.headers.get("retry-after"),
    }


@pytest.mark.parametrize("case", list(BAD_AUTH_INPUTS))
def test_the_gateways_auth_endpoints_and_session_modes_answer_bad_input_alike(rows: dict[str, Row], case: str) -> None:
    method, path, headers, body = BAD_AUTH_INPUTS[case]
    answers = {row: auth_answer(rows[row].url, method, path, headers, body) for row in ROWS}
    gateway = answers["proxy"]
    assert int(str(gateway["status"])) < 500, gateway  # 4xx, or 204 for an idempotent logout
    assert answers["asgi-session"] == gateway
    assert answers["wsgi-session"] == gateway
