"""IdP-token refresh across workers, in process with an injected clock: two ``IdpSessions`` (two workers) on one
store, and a provider stand-in that rotates refresh tokens and answers ``invalid_grant`` to a used one, as real
providers do (the real provider is in test_oidc_idp_tokens.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from frontdesk.gateway import idp_sessions
from frontdesk.gateway.idp_sessions import IdpSessions
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import ProviderRefused
from frontdesk.middleware.idp_tokens import TokenSealer
from frontdesk.middleware.sessions import SessionEngine, User
from frontdesk.middleware.store import MemoryStore
from frontdesk.middleware.tokens import KeyRing
from tests.support import wait_until_async

KEY = "k" * 40


class RotatingProvider:
    """Refresh tokens are single use: a used one answers invalid_grant."""

    name = "corp"

    def __init__(self) -> None:
        self.tokens = self
        self.live = {"rt-0"}
        self.issued = 0

    async def metadata(self) -> Any:
        return SimpleNamespace(token_endpoint="https://idp.example.com/token")

    async def refresh(self, endpoint: str, *, refresh_token: str, scope: str | None = None) -> dict[str, Any]:
        if refresh_token not in self.live:
            raise ProviderRefused("invalid_grant")
        self.live.discard(refresh_token)
        self.issued += 1
        self.live.add(f"rt-{self.issued}")
        return {"access_token": f"at-{self.issued}", "refresh_token": f"rt-{self.issued}", "expires_in": 300}


class HookedStore(MemoryStore):
    """Runs ``before_lease`` once, just before the first lease is asked for."""

    before_lease: Any = None

    async def lease_idp_refresh(self, sid: str, *, holder: str, now: float, until: float) -> bool:
        hook, self.before_lease = self.before_lease, None
        if hook is not None:
            await hook()
        return await super().lease_idp_refresh(sid, holder=holder, now=now, until=until)


async def test_a_worker_that_gets_the_lease_after_another_refreshed_does_not_refresh_again() -> None:
    clock = ManualClock()
    store = HookedStore()

    async def nobody(username: str, password: str) -> None:
        return None

    engine = SessionEngine.from_keys(
        access_keyring=KeyRing.from_secrets("a" * 32), refresh_keyring=KeyRing.from_secrets("b" * 32),
        store=store, authenticator=nobody, clock=clock,
    )  # fmt: skip
    provider = RotatingProvider()
    workers = [IdpSessions(engine, {"corp": provider}, TokenSealer([KEY]), clock=clock) for _ in range(2)]  # type: ignore[dict-item]
    a, b = workers
    started = await engine.start_session(User("oidc:corp:alice", "alice"))
    await a.session_started(
        sid=started.sid, provider=provider,  # type: ignore[arg-type]
        token_response={"access_token": "at-0", "refresh_token": "rt-0", "expires_in": 300},
        claims={"sub": "alice", "sid": "idp-1"},
    )  # fmt: skip
    clock.advance(290)  # the provider's token is due

    async def b_refreshes_first() -> None:
        assert await b.access_token(started.sid) == "at-1"

    # Worker A has read the due tokens; before it asks for the lease, worker B refreshes and lets go of it.
    store.before_lease = b_refreshes_first
    assert await a.access_token(started.sid) == "at-1"
    assert provider.issued == 1, "one refresh at the provider, not a second one with the used refresh token"
    assert await engine.is_active(started.sid)


class SlowRevocation:
    """A provider whose revocation endpoint answers only when told to (or never)."""

    name = "corp"

    def __init__(self) -> None:
        self.tokens = self
        self.config = SimpleNamespace(client_id="frontdesk")
        self.asked: list[str] = []
        self.revoked: list[str] = []
        self.answer = asyncio.Event()

    async def metadata(self) -> Any:
        return SimpleNamespace(revocation_endpoint="https://idp.example.com/revoke", end_session_endpoint=None)

    async def revoke(self, endpoint: str, *, token: str, **_: Any) -> None:
        self.asked.append(token)
        await self.answer.wait()
        self.revoked.append(token)


async def signed_in(engine: SessionEngine, idp: IdpSessions, provider: Any, n: int) -> str:
    started = await engine.start_session(User("oidc:corp:carol", "carol"))
    await idp.session_started(
        sid=started.sid, provider=provider,
        token_response={"access_token": f"at-{n}", "refresh_token": f"rt-{n}", "expires_in": 300},
        claims={"sub": "carol", "sid": f"idp-{n}"},
    )  # fmt: skip
    return started.sid


def world_with(provider: Any) -> tuple[SessionEngine, IdpSessions]:
    async def nobody(username: str, password: str) -> None:
        return None

    engine = SessionEngine.from_keys(
        access_keyring=KeyRing.from_secrets("a" * 32), refresh_keyring=KeyRing.from_secrets("b" * 32),
        store=MemoryStore(), authenticator=nobody,
    )  # fmt: skip
    return engine, IdpSessions(engine, {"corp": provider}, TokenSealer([KEY]))


async def test_logout_everywhere_revokes_every_other_session_in_the_background() -> None:
    provider = SlowRevocation()
    engine, idp = world_with(provider)
    sids = [await signed_in(engine, idp, provider, n) for n in range(3)]
    # Returns with the provider not having answered yet: the logout's answer does not wait for it.
    await idp.others_logged_out(sids[1:])
    await wait_until_async(lambda: len(provider.asked) == 2, what="both revocations asked for")
    assert sorted(provider.asked) == ["rt-1", "rt-2"] and provider.revoked == []
    await engine.revoke_user("oidc:corp:carol", reason="logout everywhere")  # the tokens go with the sessions
    provider.answer.set()
    await wait_until_async(lambda: len(provider.revoked) == 2, what="both revoked")
    await idp.others_logged_out(sids[1:])  # ended sessions: nothing left to revoke
    assert len(provider.asked) == 2


async def test_a_provider_that_never_answers_holds_neither_the_logout_nor_the_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(idp_sessions, "LOGOUT_REVOKE_WAIT", 0.05)
    monkeypatch.setattr(idp_sessions, "REVOKE_TIMEOUT", 0.2)
    provider = SlowRevocation()  # never told to answer
    engine, idp = world_with(provider)
    first, second, third = [await signed_in(engine, idp, provider, n) for n in range(3)]
    assert await idp.logged_out(first, "https://app.example") is None  # waited LOGOUT_REVOKE_WAIT, then went on
    assert provider.asked == ["rt-0"] and provider.revoked == []
    await idp.others_logged_out([second])
    # Both gave up after REVOKE_TIMEOUT (logged): none left running.
    await wait_until_async(lambda: not idp._revoking, what="the revocations given up")
    monkeypatch.setattr(idp_sessions, "REVOKE_TIMEOUT", 60.0)
    await idp.others_logged_out([third])
    await idp.aclose()  # a stop cancels what is still waiting after LOGOUT_REVOKE_WAIT
    assert not idp._revoking and provider.revoked == []

