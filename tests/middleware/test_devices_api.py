"""Your devices, in-process: ``GET /auth/sessions``, ``DELETE /auth/sessions/{id}`` and logout everywhere, on the
transport-neutral AuthAPI that the gateway and session mode share (a real engine, MemoryStore, injected clock)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from frontdesk.middleware.auth_api import AuthAPI
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.events import Event, Events, Kind
from frontdesk.middleware.http import HttpRequest, HttpResponse
from frontdesk.middleware.sessions import SessionEngine, User
from frontdesk.middleware.store import MemoryStore, SessionRecord
from frontdesk.middleware.tokens import KeyRing

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
USERS = {"ada": User("u-ada", "ada"), "bob": User("u-bob", "bob")}


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


class CallLog(MemoryStore):
    """A MemoryStore that notes every call by name and first argument: the work a request made the store do."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    async def get_session(self, sid: str) -> SessionRecord | None:
        self.calls.append(("get_session", sid))
        return await super().get_session(sid)

    async def list_sessions(self, user_id: str, *, now: float) -> list[SessionRecord]:
        self.calls.append(("list_sessions", user_id))
        return await super().list_sessions(user_id, now=now)

    async def revoke_session(self, sid: str, *, now: float, reason: str) -> None:
        self.calls.append(("revoke_session", sid))
        await super().revoke_session(sid, now=now, reason=reason)


async def check(username: str, password: str) -> User | None:
    return USERS.get(username) if password == "pw" else None


class World:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.store = CallLog()
        self.recorder = Recorder()
        self.engine = SessionEngine.from_keys(
            access_keyring=KeyRing.from_secrets("a" * 40),
            refresh_keyring=KeyRing.from_secrets("r" * 40),
            store=self.store,
            authenticator=check,
            clock=self.clock,
            events=Events([self.recorder]),
        )
        self.api = AuthAPI(self.engine)

    async def call(
        self, method: str, path: str, cookie: str | None = None, body: Any = None, **headers: str
    ) -> HttpResponse:
        h = {"x-csrf": "1", "host": "gw", **{k.replace("_", "-"): v for k, v in headers.items()}}
        raw = b""
        if body is not None:
            raw = json.dumps(body).encode()
            h["content-type"] = "application/json"
        if cookie:
            h["cookie"] = cookie
        return await self.api.handle(HttpRequest(method, path, h, raw, client="10.0.0.1"))

    async def login(self, username: str, user_agent: str, *, remember: bool = False) -> str:
        body = {"username": username, "password": "pw", "remember": remember}
        response = await self.call("POST", "/auth/login", body=body, user_agent=user_agent)
        assert response.status == 200, response.body
        return _cookie(response)


def _cookie(response: HttpResponse) -> str:
    value = next(v for k, v in response.headers if k == "set-cookie" and v.startswith("__Host-frontdesk="))
    return value.split(";")[0]


def _clears_cookie(response: HttpResponse) -> bool:
    return any(k == "set-cookie" and "Max-Age=0" in v for k, v in response.headers)


@pytest.fixture
def world() -> World:
    return World()


async def test_the_list_shows_each_device_of_the_caller_and_which_one_is_this(world: World) -> None:
    laptop = await world.login("ada", CHROME)
    world.clock.advance(60)
    phone = await world.login("ada", FIREFOX, remember=True)
    await world.login("bob", CHROME)  # someone else's session is never listed
    world.clock.advance(30)
    response = await world.call("GET", "/auth/sessions", laptop)
    assert response.status == 200 and ("cache-control", "no-store") in response.headers
    sessions = json.loads(response.body)["sessions"]
    assert [(s["user_agent"], s["current"], s["remember"]) for s in sessions] == [
        ("Chrome 131 on Linux", True, False),
        ("Firefox 133 on Windows", False, True),
    ]
    assert {s["client_address"] for s in sessions} == {"10.0.0.1"}
    assert sessions[0]["created_at"] == "2027-01-15T08:00:00Z" and sessions[1]["created_at"] == "2027-01-15T08:01:00Z"
    assert set(sessions[0]) == {"id", "created_at", "last_seen", "client_address", "user_agent", "remember", "current"}
    mine = json.loads((await world.call("GET", "/auth/sessions", phone)).body)["sessions"]
    assert [s["current"] for s in mine] == [False, True]


async def test_signing_out_another_device_ends_only_that_one(world: World) -> None:
    laptop = await world.login("ada", CHROME)
    phone = await world.login("ada", FIREFOX)
    phone_id = (await world.engine.session_of(phone)).sid
    response = await world.call("DELETE", f"/auth/sessions/{phone_id}", laptop)
    assert response.status == 204 and not _clears_cookie(response)  # the laptop keeps its own cookie
    assert (await world.call("GET", "/auth/session", phone)).status == 401
    assert (await world.call("GET", "/auth/session", laptop)).status == 200
    revoked = [e for e in world.recorder.events if e.kind == Kind.SESSION_REVOKED]
    assert [(e.session, e.actor) for e in revoked] == [(phone_id, "user")]


async def test_signing_out_this_device_from_the_list_drops_its_cookie(world: World) -> None:
    laptop = await world.login("ada", CHROME)
    response = await world.call("DELETE", f"/auth/sessions/{(await world.engine.session_of(laptop)).sid}", laptop)
    assert response.status == 204 and _clears_cookie(response)
    assert (await world.call("GET", "/auth/session", laptop)).status == 401


async def test_someone_elses_session_and_no_session_are_one_and_the_same_404(world: World) -> None:
    ada = await world.login("ada", CHROME)
    bob = await world.login("bob", FIREFOX)
    bobs = (await world.engine.session_of(bob)).sid
    answers, work = [], []
    for target in (bobs, "no-such-session-id-00000", "%2e%2e", "x" * 500):
        world.store.calls.clear()
        response = await world.call("DELETE", f"/auth/sessions/{target}", ada)
        answers.append((response.status, response.headers, response.body))
        work.append([name for name, _ in world.store.calls])
        assert target not in [arg for _, arg in world.store.calls], "the target session was looked up"
    assert answers[0][0] == 404 and json.loads(answers[0][2])["error"] == "not_found"
    assert all(a == answers[0] for a in answers), "the answers differ"
    assert all(w == work[0] for w in work), f"the store did different work: {work}"
    assert (await world.call("GET", "/auth/session", bob)).status == 200  # bob's session is untouched


async def test_logout_everywhere_ends_every_session_of_the_caller_only(world: World) -> None:
    laptop = await world.login("ada", CHROME)
    phone = await world.login("ada", FIREFOX)
    bob = await world.login("bob", CHROME)
    response = await world.call("POST", "/auth/logout", laptop, body={"everywhere": True})
    assert response.status == 204 and _clears_cookie(response)
    for cookie in (laptop, phone):
        assert (await world.call("GET", "/auth/session", cookie)).status == 401
    assert (await world.call("GET", "/auth/session", bob)).status == 200
    assert await world.store.list_sessions("u-ada", now=world.clock()) == []
    revoked = [e for e in world.recorder.events if e.kind == Kind.SESSION_REVOKED]
    assert [(e.reason, e.actor) for e in revoked] == [("logout everywhere", "user")]


async def test_a_plain_logout_still_ends_only_this_session(world: World) -> None:
    laptop = await world.login("ada", CHROME)
    phone = await world.login("ada", FIREFOX)
    assert (await world.call("POST", "/auth/logout", laptop)).status == 204
    assert (await world.call("POST", "/auth/logout", phone, body={"everywhere": False})).status == 204
    assert (await world.call("POST", "/auth/logout")).status == 204  # no cookie: idempotent, as before


@pytest.mark.parametrize(
    ("body", "status"),
    [({"everywhere": "yes"}, 400), ({"everywhere": True, "extra": 1}, 400), ([True], 400)],
)
async def test_bad_logout_bodies_are_4xx_json(world: World, body: Any, status: int) -> None:
    laptop = await world.login("ada", CHROME)
    response = await world.call("POST", "/auth/logout", laptop, body=body)
    assert response.status == status and json.loads(response.body)["error"] == "bad_request"
    assert (await world.call("GET", "/auth/session", laptop)).status == 200  # nothing was ended


async def test_the_devices_endpoints_need_a_live_session(world: World) -> None:
    for method, path, body in (
        ("GET", "/auth/sessions", None),
        ("DELETE", "/auth/sessions/abc", None),
        ("POST", "/auth/logout", {"everywhere": True}),
    ):
        response = await world.call(method, path, None, body=body)
        assert response.status == 401 and json.loads(response.body)["error"] == "not_authenticated", (method, path)


async def test_the_devices_endpoints_follow_the_csrf_rule_of_auth(world: World) -> None:
    laptop = await world.login("ada", CHROME)
    sid = (await world.engine.session_of(laptop)).sid
    cases = [("GET", "/auth/sessions", None), ("DELETE", f"/auth/sessions/{sid}", None),
             ("POST", "/auth/logout", {"everywhere": True})]  # fmt: skip
    for method, path, body in cases:
        h = {"host": "gw", "cookie": laptop}
        if body is not None:
            h["content-type"] = "application/json"
        raw = json.dumps(body).encode() if body is not None else b""
        no_header = await world.api.handle(HttpRequest(method, path, h, raw, client="10.0.0.1"))
        cross = await world.call(method, path, laptop, body=body, sec_fetch_site="cross-site")
        foreign = await world.call(method, path, laptop, body=body, origin="https://evil.example")
        for response in (no_header, cross, foreign):
            assert response.status == 403 and json.loads(response.body)["error"] == "csrf_rejected", (method, path)
    assert (await world.call("GET", "/auth/session", laptop)).status == 200


async def test_wrong_methods_are_405_with_allow(world: World) -> None:
    laptop = await world.login("ada", CHROME)
    response = await world.call("POST", "/auth/sessions", laptop)
    assert response.status == 405 and ("allow", "GET") in response.headers
    response = await world.call("GET", "/auth/sessions/abc", laptop)
    assert response.status == 405 and ("allow", "DELETE") in response.headers
