"""Forward-auth with the real nginx: the README's complete ``nginx.conf``, taken from the README with only its ports
changed, in front of a real ``frontdesk serve`` and a real upstream app (a stdlib HTTP server that records what it
is sent). nginx runs as this (non-root) user with a temp prefix, ``daemon off``, its pid and logs in the temp dir.

What a browser sees through it: not signed in, the app redirects to the SPA's login; after a login the app sees
the user in ``X-Auth-Request-User`` (never a forged one, never the refresh cookie); a silently rotated cookie
reaches the browser; a cross-site request is never signed in; ``/auth/verify`` is not reachable from outside.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_gateway import AuthClient, GatewayProcess, set_cookies

from tests.support import free_port, wait_until
from tests.support.nginx import NGINX, replace_once, run_nginx

README = Path(__file__).resolve().parents[2] / "README.md"
PASSWORD = "ada-password-1"
ACCESS_TTL = 2.0  # short, so that a request soon renews the access token and rotates the refresh cookie

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (.ci/run installs it)")


def readme_nginx_conf() -> str:
    """The README's complete nginx.conf (the ```nginx block that starts with its title comment)."""
    found = re.search(r"```nginx\n(# frontdesk forward-auth: nginx\.conf\n.*?)```", README.read_text(), re.DOTALL)
    assert found, "the README lost its forward-auth nginx.conf"
    return found.group(1)


def runnable_conf(*, frontdesk: int, app: int, listen: int) -> str:
    conf = readme_nginx_conf()
    conf = replace_once(conf, "server 127.0.0.1:8000;", f"server 127.0.0.1:{frontdesk};")
    conf = replace_once(conf, "server 127.0.0.1:9000;", f"server 127.0.0.1:{app};")
    return replace_once(conf, "listen 8080;", f"listen 127.0.0.1:{listen};")


class Recorder:
    """What the upstream app received: one (path, headers) per request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def add(self, path: str, headers: dict[str, str]) -> None:
        with self.lock:
            self.seen.append((path, headers))

    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def last(self) -> tuple[str, dict[str, str]]:
        with self.lock:
            return self.seen[-1]


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[int, Recorder]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorder.add(self.path, headers)
            body = json.dumps({"hello": headers.get("x-auth-request-user")}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], recorder
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def gw(gateway_factory: Callable[..., GatewayProcess]) -> GatewayProcess:
    return gateway_factory(
        "forward-auth",
        users={"ada": PASSWORD},
        server={"trusted_proxies": ["127.0.0.1"]},
        tokens={"access_ttl": f"{ACCESS_TTL:g}s", "refresh_margin": "1s", "rotation_grace": "30s"},
    )


@pytest.fixture(scope="module")
def nginx(gw: GatewayProcess, app: tuple[int, Recorder], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("nginx")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with run_nginx(runnable_conf(frontdesk=gw.port, app=app[0], listen=port), tmp, probe=url + "/healthz"):
        yield url


def test_not_signed_in_goes_to_the_login_page_and_never_reaches_the_app(nginx: str, app: tuple[int, Recorder]) -> None:
    before = app[1].count()
    with AuthClient(nginx) as browser:
        response = browser.request("GET", "/app/report", csrf=False)
        assert response.status_code == 302 and response.headers["location"].endswith("/")
        garbage = browser.request("GET", "/app/report", csrf=False, cookie="not-a-token")
        assert garbage.status_code == 302
    assert app[1].count() == before


def test_signed_in_the_app_sees_the_user_and_a_rotated_cookie_reaches_the_browser(
    nginx: str, app: tuple[int, Recorder]
) -> None:
    recorder = app[1]
    with AuthClient(nginx) as browser:
        assert browser.login("ada", PASSWORD).status_code == 200  # through nginx, to frontdesk
        response = browser.request("GET", "/app/report?x=1", csrf=False, headers={"X-Auth-Request-User": "mallory"})
        assert response.status_code == 200 and response.json() == {"hello": "ada"}
        path, headers = recorder.last()
        assert path == "/app/report?x=1" and headers["x-auth-request-user"] == "ada"
        assert "x-auth-request-email" not in headers  # none known for "ada"
        assert "__Host-frontdesk" not in headers.get("cookie", "")  # the refresh token stays out of the app
        assert "authorization" not in headers  # no token unless configured

        # Soon the access token needs renewing: the verify that does it rotates the refresh cookie, and nginx
        # hands the new one to the browser with the app's answer.
        first = browser.cookie
        rotated: list[httpx.Response] = []

        def renewed() -> bool:
            r = browser.request("GET", "/app/report", csrf=False)
            assert r.status_code == 200, r.text
            if any(c.name == "__Host-frontdesk" for c in set_cookies(r)):
                rotated.append(r)
            return browser.cookie != first

        wait_until(renewed, timeout=30, interval=0.25, what="a rotated cookie through nginx")
        (cookie,) = [c for c in set_cookies(rotated[-1]) if c.name == "__Host-frontdesk"]
        assert {"httponly", "secure", "samesite"} <= set(cookie.attrs) and cookie.attrs["samesite"] == "Strict"
        assert rotated[-1].json() == {"hello": "ada"}
        assert browser.request("GET", "/app/report", csrf=False).status_code == 200  # the new cookie works


def test_a_cross_site_request_is_not_signed_in(nginx: str, app: tuple[int, Recorder]) -> None:
    with AuthClient(nginx) as browser:
        assert browser.login("ada", PASSWORD).status_code == 200
        before = app[1].count()
        for forged in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
            response = browser.request("GET", "/app/transfer", csrf=False, headers=forged, follow=False)
            assert response.status_code == 302, forged
        assert app[1].count() == before
        assert browser.request("GET", "/app/report", csrf=False).status_code == 200  # the session lives on


def test_verify_is_not_reachable_from_outside_and_logout_closes_the_app(nginx: str) -> None:
    with AuthClient(nginx) as browser:
        assert browser.login("ada", PASSWORD).status_code == 200
        assert browser.request("GET", "/auth/verify", csrf=False).status_code == 404
        assert browser.request("GET", "/auth/verify?token=1", csrf=False).status_code == 404
        assert browser.request("GET", "/app/report", csrf=False).status_code == 200
        token = browser.cookie
        assert browser.logout().status_code == 204
        assert browser.request("GET", "/app/report", csrf=False, cookie=token).status_code == 302
