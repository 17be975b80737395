"""IdP-token refresh across workers, in process with an injected clock: two ``IdpSessions`` (two workers) on one
store, and a provider stand-in that rotates refresh tokens and answers ``invalid_grant`` to a used one, as real
providers do (the real provider is in test_oidc_idp_tokens.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from frontdesk.gateway.idp_sessions import IdpSessions
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import ProviderRefused
from frontdesk.middleware.idp_tokens import TokenSealer
from frontdesk.middleware.sessions import SessionEngine, User
from frontdesk.middleware.store import MemoryStore
from frontdesk.middleware.tokens import KeyRing

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
