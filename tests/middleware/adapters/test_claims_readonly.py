"""Claims are handed to apps read-only: an app that writes into them (ASGI ``request.user.claims`` or
``scope["frontdesk.claims"]``, WSGI ``environ["frontdesk.claims"]``) cannot change what the session's later
requests are admitted with. Real servers (uvicorn, waitress) in session mode and in bearer mode.

Before the fix the claims were the engine's (or the bearer cache's) own dict: a route that set
``claims["scope"] = "admin"`` made the next request of the same session pass the ``/admin/`` scope rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from mw_support import serve_wsgi
from mw_world import (
    ACCESS_SECRET,
    COOKIE,
    PASSWORD,
    REFRESH_SECRET,
    SCOPES,
    Keys,
    access_claims,
    authenticator,
    sign_access,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from frontdesk.middleware.asgi import FrontdeskMiddleware
from frontdesk.middleware.bearer import BearerAuth
from frontdesk.middleware.session_mode import SessionAuth
from frontdesk.middleware.sessions import SessionSettings
from frontdesk.middleware.store import MemoryStore
from frontdesk.middleware.wsgi import FrontdeskWSGIMiddleware
from tests.support import serve_in_thread


def _try(write: Callable[[], None]) -> str:
    try:
        write()
    except (TypeError, AttributeError):  # a read-only mapping has no __setitem__ / update
        return "refused"
    return "written"


async def tamper(request: Request) -> JSONResponse:
    claims_from_user = request.user.claims
    claims_in_scope = request.scope["frontdesk.claims"]

    def via_user() -> None:
        claims_from_user["scope"] = "admin"

    def via_scope() -> None:
        claims_in_scope["scope"] = "admin"

    # Read-only, yet still what apps do with claims: serialise them.
    return JSONResponse({"user": _try(via_user), "scope": _try(via_scope), "claims": claims_from_user})


async def admin(request: Request) -> JSONResponse:
    return JSONResponse({"admin": True})


def tamper_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ["PATH_INFO"] == "/tamper":
        claims = environ["frontdesk.claims"]

        def via_environ() -> None:
            claims["scope"] = "admin"

        def via_user() -> None:
            environ["frontdesk.user"].claims.update(scope="admin")

        body = json.dumps({"environ": _try(via_environ), "user": _try(via_user), "claims": claims})
    else:
        body = json.dumps({"admin": True})
    data = body.encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def session_auth() -> SessionAuth:
    return SessionAuth.from_secrets(
        access_secret=ACCESS_SECRET,
        refresh_secret=REFRESH_SECRET,
        authenticator=authenticator,
        store=MemoryStore(),
        settings=SessionSettings(login_attempts_per_address=100_000),
        scopes=SCOPES,
    )


def login(client: httpx.Client) -> dict[str, str]:
    response = client.post("/auth/login", json={"username": "mallory", "password": PASSWORD}, headers={"x-csrf": "1"})
    assert response.status_code == 200, response.text
    token = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    return {"cookie": f"{COOKIE}={token}", "x-csrf": "1"}


def assert_tampering_does_not_stick(client: httpx.Client, headers: dict[str, str]) -> None:
    assert client.get("/admin/panel", headers=headers).status_code == 403  # no admin scope to begin with
    tampered = client.get("/tamper", headers=headers)
    assert tampered.status_code == 200, tampered.text
    found = tampered.json()
    assert found.pop("claims")["sub"] and set(found.values()) == {"refused"}, found
    # The next request of the same session is admitted with the claims it was minted with.
    assert client.get("/admin/panel", headers=headers).status_code == 403


def starlette_app() -> Starlette:
    return Starlette(routes=[Route("/tamper", tamper), Route("/admin/panel", admin)])


def test_asgi_session_mode_claims_are_read_only() -> None:
    app = FrontdeskMiddleware(starlette_app(), session_auth())
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as client:
        assert_tampering_does_not_stick(client, login(client))


def test_wsgi_session_mode_claims_are_read_only() -> None:
    app = FrontdeskWSGIMiddleware(tamper_wsgi, session_auth())
    try:
        with serve_wsgi(app) as url, httpx.Client(base_url=url) as client:
            assert_tampering_does_not_stick(client, login(client))
    finally:
        app.close()


def test_asgi_bearer_mode_claims_are_read_only(keys: Keys) -> None:
    # Bearer mode caches the verified user per Authorization header: the same object serves the next request.
    auth = BearerAuth(keyring=keys.verifying_ring(), scopes=SCOPES)
    headers = {"authorization": f"Bearer {sign_access(keys, access_claims(roles=['reader']))}"}
    with serve_in_thread(FrontdeskMiddleware(starlette_app(), auth)) as url, httpx.Client(base_url=url) as client:
        assert_tampering_does_not_stick(client, headers)


def test_scopes_from_a_scp_list_survive_the_read_only_copy(keys: Keys) -> None:
    # The read-only copy turns lists into tuples; scopes granted as an "scp" list must still count.
    auth = BearerAuth(keyring=keys.verifying_ring(), scopes=SCOPES)
    headers = {"authorization": f"Bearer {sign_access(keys, access_claims(scp=['admin']))}"}
    with serve_in_thread(FrontdeskMiddleware(starlette_app(), auth)) as url, httpx.Client(base_url=url) as client:
        assert client.get("/admin/panel", headers=headers).status_code == 200
