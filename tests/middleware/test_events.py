"""The engine tells what happened through one vocabulary of events (audit trail, metrics and log listen)."""

from __future__ import annotations

import pytest
from test_sessions import cookie_of, make_engine

from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import BadCredentials, SessionRevoked, TokenReused
from frontdesk.middleware.events import Event, Events, Kind
from frontdesk.middleware.sessions import SessionEngine
from frontdesk.middleware.store import Store


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class Broken:
    def emit(self, event: Event) -> None:
        raise RuntimeError("sink down")


def test_a_failing_sink_does_not_stop_the_others() -> None:
    recorder = Recorder()
    events = Events([Broken(), recorder])
    events.emit(Event(Kind.LOGOUT, 1.0))
    assert recorder.kinds() == [Kind.LOGOUT]
    assert events and not Events()


async def test_the_engine_tells_logins_mints_rotations_reuse_and_revocations(store: Store) -> None:
    clock = ManualClock()
    recorder = Recorder()
    engine: SessionEngine = make_engine(store, clock)
    engine.events = Events([recorder])

    with pytest.raises(BadCredentials):
        await engine.login("alice", "wrong", client_ip="10.0.0.9", user_agent="curl/8")
    failed = recorder.events[-1]
    assert (failed.kind, failed.user, failed.reason, failed.address, failed.user_agent) == (
        Kind.LOGIN_FAILED, "alice", "bad_credentials", "10.0.0.9", "curl/8"
    )

    result = await engine.login("alice", "correct horse", client_ip="10.0.0.9", user_agent="curl/8")
    assert recorder.kinds()[-2:] == [Kind.LOGIN_OK, Kind.ACCESS_MINTED]
    assert recorder.events[-2].session == result.sid
    old = cookie_of(result.set_cookie)

    clock.advance(300)
    await engine.grant(old)
    assert recorder.kinds()[-2:] == [Kind.REFRESH_ROTATED, Kind.ACCESS_MINTED]

    clock.advance(31)
    with pytest.raises(TokenReused):
        await engine.grant(old)
    assert recorder.kinds()[-2:] == [Kind.REUSE_DETECTED, Kind.SESSION_REVOKED]
    revoked = recorder.events[-1]
    assert (revoked.session, revoked.reason, revoked.actor) == (result.sid, "refresh token reuse", "system")
    with pytest.raises(SessionRevoked):
        await engine.grant(old)

    # Nothing secret travels in an event.
    secrets = {old.split("=", 1)[1], "correct horse", "wrong"}
    assert not any(secret in repr(event) for event in recorder.events for secret in secrets)


async def test_ending_every_session_of_a_user_names_the_user_by_username(store: Store) -> None:
    clock = ManualClock()
    recorder = Recorder()
    engine: SessionEngine = make_engine(store, clock)
    engine.events = Events([recorder])
    await engine.login("alice", "correct horse")
    await engine.login("alice", "correct horse")
    assert await engine.revoke_user("id-alice", reason="logout everywhere", actor="user") == 2
    revoked = recorder.events[-1]
    assert (revoked.kind, revoked.user, revoked.reason, revoked.actor) == (
        Kind.SESSION_REVOKED, "alice", "logout everywhere", "user"
    )
