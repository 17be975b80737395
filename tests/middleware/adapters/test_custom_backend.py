"""The admission pipeline is open: an app plugs its own backend (an object with ``async admit(request)``, as
Starlette's ``AuthenticationBackend``) into the ASGI and WSGI middleware, and its own error renderer, on real
servers (Starlette on uvicorn, the plain WSGI app on waitress)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from mw_support import serve_wsgi
from mw_world import starlette_app, wsgi_app

from frontdesk.middleware.admission import Admission, Refusal
from frontdesk.middleware.asgi import FrontdeskMiddleware
from frontdesk.middleware.errors import InsufficientScope, NotAuthenticated
from frontdesk.middleware.http import HttpRequest, HttpResponse, json_response
from frontdesk.middleware.principal import FrontdeskUser
from frontdesk.middleware.session_mode import STORE_REQUIRED, SessionAuth
from frontdesk.middleware.wsgi import FrontdeskWSGIMiddleware
from tests.support import serve_in_thread


class ApiKeyAuth:
    """A backend of the app's own: a static API key, the kind of thing bearer and session mode are not."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def admit(self, request: HttpRequest) -> Admission | Refusal:
        self.seen.append(request.path)
        if request.path.startswith("/public/"):
            return Admission(None)
        key = request.headers.get("x-api-key")
        if key is None:
            return Refusal(NotAuthenticated("missing API key"), (("www-authenticate", 'ApiKey realm="robots"'),))
        if key != "sesame":
            raise NotAuthenticated("wrong API key")  # raising works as well as returning a Refusal
        if request.path.startswith("/admin/"):
            return Refusal(InsufficientScope("robots are not admins"))
        return Admission(FrontdeskUser({"sub": "robot-1", "preferred_username": "robot", "scope": "read"}))


def problem_json(refusal: Refusal, request: HttpRequest) -> HttpResponse:
    """An app's own error shape (RFC 9457 problem details) in place of frontdesk's {"error", "detail"}."""
    exc = refusal.error
    payload = {"type": f"urn:robots:{exc.code}", "title": exc.detail, "status": exc.status, "instance": request.path}
    response = json_response(exc.status, payload, refusal.headers)
    response.headers[0] = ("content-type", "application/problem+json")
    return response


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, ApiKeyAuth]]:
    """(url of the default renderer, url of the custom renderer, the backend) for one adapter."""
    auth = ApiKeyAuth()
    if request.param == "asgi":
        plain = FrontdeskMiddleware(starlette_app(), auth)
        custom = FrontdeskMiddleware(starlette_app(), auth, on_error=problem_json)
        with serve_in_thread(plain) as plain_url, serve_in_thread(custom) as custom_url:
            yield plain_url, custom_url, auth
        return
    wsgi_plain = FrontdeskWSGIMiddleware(wsgi_app, auth)
    wsgi_custom = FrontdeskWSGIMiddleware(wsgi_app, auth, on_error=problem_json)
    with serve_wsgi(wsgi_plain) as plain_url, serve_wsgi(wsgi_custom) as custom_url:
        yield plain_url, custom_url, auth
    wsgi_plain.close()
    wsgi_custom.close()


def test_a_custom_backend_admits_its_own_users(served: tuple[str, str, ApiKeyAuth]) -> None:
    url, _, auth = served
    response = httpx.get(f"{url}/whoami", headers={"x-api-key": "sesame"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["authenticated"] is True and body["id"] == "robot-1" and body["username"] == "robot"
    assert "read" in body["scopes"]
    public = httpx.get(f"{url}/public/ping")
    assert public.status_code == 200 and public.json()["authenticated"] is False
    assert "/whoami" in auth.seen and "/public/ping" in auth.seen


@pytest.mark.parametrize(
    ("headers", "path", "status", "code"),
    [
        ({}, "/whoami", 401, "not_authenticated"),
        ({"x-api-key": "wrong"}, "/whoami", 401, "not_authenticated"),
        ({"x-api-key": "sesame"}, "/admin/panel", 403, "insufficient_scope"),
    ],
)
def test_a_custom_backend_refuses_with_the_one_error_writer_or_the_apps_renderer(
    served: tuple[str, str, ApiKeyAuth], headers: dict[str, str], path: str, status: int, code: str
) -> None:
    plain_url, custom_url, _ = served
    plain = httpx.get(plain_url + path, headers=headers)
    assert plain.status_code == status
    assert plain.headers["content-type"] == "application/json"
    assert plain.json()["error"] == code
    custom = httpx.get(custom_url + path, headers=headers)
    assert custom.status_code == status
    assert custom.headers["content-type"] == "application/problem+json"
    assert custom.json()["type"] == f"urn:robots:{code}" and custom.json()["instance"] == path
    if not headers:  # a refusal's own headers reach the browser through either renderer
        assert plain.headers["www-authenticate"] == custom.headers["www-authenticate"] == 'ApiKey realm="robots"'


def test_the_middleware_refuses_an_object_that_is_no_backend() -> None:
    with pytest.raises(TypeError, match="AuthBackend"):
        FrontdeskMiddleware(starlette_app(), object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="AuthBackend"):
        FrontdeskWSGIMiddleware(wsgi_app, object())  # type: ignore[arg-type]


async def _authenticator(username: str, password: str) -> None:
    return None


def test_session_mode_without_a_store_is_refused_at_construction() -> None:
    with pytest.raises(TypeError) as refused:
        SessionAuth.from_secrets(access_secret="a" * 40, refresh_secret="r" * 40, authenticator=_authenticator)
    message = str(refused.value)
    assert message == STORE_REQUIRED
    assert "store=" in message and "sqlite:///" in message and "memory://" in message
    explicit = SessionAuth.from_secrets(
        access_secret="a" * 40, refresh_secret="r" * 40, authenticator=_authenticator, store="memory://"
    )
    assert explicit.engine.store is not None
