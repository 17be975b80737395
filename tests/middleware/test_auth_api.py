"""The /auth/* contract in-process: odd bodies and store failures answer JSON, never a 500 or a secret."""

from __future__ import annotations

import json
from collections.abc import Sequence

from frontdesk.middleware.auth_api import AuthAPI, LoginsInProgress
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import StoreError
from frontdesk.middleware.events import Event, Events, Kind
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
    # With sign-in providers, their names and login URLs (public: the buttons show them), and the password switch.
    api = AuthAPI(engine, password_login=False, sign_in_with={"corp": "/auth/oidc/corp/login"})
    assert json.loads((await api.handle(request)).body) == {
        "remember_ttl": 14 * 86400,
        "password_login": False,
        "providers": [{"name": "corp", "login_url": "/auth/oidc/corp/login"}],
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def told(auth: AuthAPI) -> list[Event]:
    recorder = Recorder()
    auth.engine.events = Events([recorder])
    return recorder.events


def browser(request: HttpRequest) -> HttpRequest:
    request.headers = {**request.headers, "user-agent": "Firefox/140"}
    return request


async def test_login_and_logout_tell_the_client_address_and_user_agent() -> None:
    auth = api()
    events = told(auth)
    response = await auth.handle(browser(login(b'{"username": "ada", "password": "pw"}')))
    cookie = next(v for n, v in response.headers if n == "set-cookie").split(";")[0]  # the session's, first
    ok = next(e for e in events if e.kind == Kind.LOGIN_OK)
    assert (ok.user, ok.address, ok.user_agent) == ("ada", "10.0.0.1", "Firefox/140")

    headers = {"x-csrf": "1", "host": "gw", "cookie": cookie, "user-agent": "Firefox/140"}
    response = await auth.handle(HttpRequest("POST", "/auth/logout", headers, client="10.0.0.1"))
    assert response.status == 204
    logout = next(e for e in events if e.kind == Kind.LOGOUT)
    assert (logout.user, logout.session, logout.address, logout.user_agent, logout.actor) == (
        "ada", ok.session, "10.0.0.1", "Firefox/140", "user"
    )


async def test_a_rate_limited_login_tells_which_limit() -> None:
    auth = api()
    auth.engine.login_limits.per_address = 1
    events = told(auth)
    for _ in range(2):
        await auth.handle(login(b'{"username": "ada", "password": "wrong"}'))
    limited = [e for e in events if e.kind == Kind.RATE_LIMITED]
    assert [(e.reason, e.address, e.user) for e in limited] == [("login_attempts", "10.0.0.1", "ada")]


async def test_logins_in_progress_over_the_cap_tell_a_rate_limit_hit() -> None:
    auth = api()
    auth.logins_in_progress = LoginsInProgress(1)
    events = told(auth)
    with auth.logins_in_progress.hold("10.0.0.1"):  # one login from this address is still hashing
        response = await auth.handle(login(b'{"username": "ada", "password": "pw"}'))
    assert response.status == 429
    assert [(e.kind, e.reason) for e in events] == [
        (Kind.LOGIN_FAILED, "rate_limited"), (Kind.RATE_LIMITED, "logins_in_progress")
    ]
