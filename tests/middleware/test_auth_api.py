"""The /auth/* contract in-process: odd bodies and store failures answer JSON, never a 500 or a secret."""

from __future__ import annotations

import json
from collections.abc import Sequence

from frontdesk.middleware.auth_api import AuthAPI
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import StoreError
from frontdesk.middleware.http import HttpRequest
from frontdesk.middleware.sessions import SessionEngine, SessionSettings, User
from frontdesk.middleware.store import MemoryStore
from frontdesk.middleware.tokens import KeyRing


async def check(username: str, password: str) -> User | None:
    return User("u1", username) if password == "pw" else None


def api(store: MemoryStore | None = None) -> AuthAPI:
    engine = SessionEngine.from_keys(
        access_keyring=KeyRing.from_secrets("a" * 40),
        refresh_keyring=KeyRing.from_secrets("r" * 40),
        store=store or MemoryStore(),
        authenticator=check,
        clock=ManualClock(),
    )
    return AuthAPI(engine)


def login(body: bytes) -> HttpRequest:
    headers = {"x-csrf": "1", "content-type": "application/json", "host": "gw"}
    return HttpRequest("POST", "/auth/login", headers, body, client="10.0.0.1")


async def test_absurdly_deep_json_is_a_400_not_a_500() -> None:
    response = await api().handle(login(b'{"username":' + b"[" * 8000))
    assert response.status == 400
    assert json.loads(response.body)["error"] == "bad_request"


class BrokenStore(MemoryStore):
    async def attempt(self, limits: Sequence[tuple[str, int]], *, window: float, now: float) -> str | None:
        raise StoreError("cannot reach the session store at redis://:s3cret@db:6379/0")


async def test_store_failures_answer_503_without_the_details() -> None:
    response = await api(BrokenStore()).handle(login(b'{"username": "ada", "password": "pw"}'))
    assert response.status == 503
    body = json.loads(response.body)
    assert body["error"] == "store_unavailable" and "s3cret" not in response.body.decode()


async def test_config_tells_a_login_form_the_remember_lifetime_and_nothing_else() -> None:
    engine = SessionEngine.from_keys(
        access_keyring=KeyRing.from_secrets("a" * 40),
        refresh_keyring=KeyRing.from_secrets("r" * 40),
        store=MemoryStore(),
        authenticator=check,
        settings=SessionSettings(remember_ttl=14 * 86400),
        clock=ManualClock(),
    )
    request = HttpRequest("GET", "/auth/config", {"x-csrf": "1", "host": "gw"}, b"", client="10.0.0.1")
    response = await AuthAPI(engine).handle(request)  # no cookie: public, before any login
    assert response.status == 200
    assert json.loads(response.body) == {"remember_ttl": 14 * 86400}
    assert ("cache-control", "no-store") in response.headers
