"""The per-cookie grant memo of the session engine: a repeated request with the same refresh cookie skips JWT
verification and the standing check, and the memo never outlives what it was built from (the cached session row,
the access token's refresh margin, the refresh token's expiry) nor a logout, rotation or revocation."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import NotAuthenticated, SessionRevoked
from frontdesk.middleware.sessions import SessionEngine
from frontdesk.middleware.store import Store
from frontdesk.middleware.store.sqlite import SqliteStore
from tests.middleware.test_sessions import SETTINGS, cookie_of, login, make_engine


class Counted:
    """Counts the refresh-token verifications and session-row reads an engine does."""

    def __init__(self, engine: SessionEngine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.decodes = 0
        self.reads = 0
        decode, get_session = engine.refresh_codec.decode, engine.store.get_session

        def counted_decode(*args: Any, **kwargs: Any) -> Any:
            self.decodes += 1
            return decode(*args, **kwargs)

        async def counted_get(sid: str) -> Any:
            self.reads += 1
            return await get_session(sid)

        monkeypatch.setattr(engine.refresh_codec, "decode", counted_decode)
        monkeypatch.setattr(engine.store, "get_session", counted_get)

    def reset(self) -> None:
        self.decodes = self.reads = 0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def two_workers(tmp_path: Path, clock: ManualClock) -> AsyncIterator[tuple[SessionEngine, SessionEngine]]:
    stores = [SqliteStore(tmp_path / "shared.db"), SqliteStore(tmp_path / "shared.db")]
    for s in stores:
        await s.open()
    yield make_engine(stores[0], clock), make_engine(stores[1], clock)
    for s in stores:
        await s.close()


async def test_a_repeated_cookie_is_granted_from_the_memo(
    store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(store, clock)
    cookie = await login(engine)
    first = await engine.grant(f"theme=dark; {cookie}")
    counted = Counted(engine, monkeypatch)
    clock.advance(SETTINGS.state_ttl / 2)
    again = await engine.grant(f"lang=en; {cookie}")  # other cookies around it do not matter
    assert again == first
    assert (counted.decodes, counted.reads) == (0, 0)
    # Another audience is another grant: not served from this one's memo.
    other = await engine.grant(cookie, audience="orders")
    assert other.claims["aud"] == "orders" and counted.decodes == 1


async def test_the_memo_lives_no_longer_than_the_cached_session_row(
    store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(store, clock)
    cookie = await login(engine)
    await engine.grant(cookie)
    counted = Counted(engine, monkeypatch)
    clock.advance(SETTINGS.state_ttl)  # the row cached at login is stale now: so is the memo
    await engine.grant(cookie)
    assert (counted.decodes, counted.reads) == (1, 1)
    counted.reset()
    await engine.grant(cookie)  # and it is memoised again, with the fresh row
    assert (counted.decodes, counted.reads) == (0, 0)


async def test_logout_drops_the_memo(store: Store, clock: ManualClock) -> None:
    engine = make_engine(store, clock)
    cookie = await login(engine)
    await engine.grant(cookie)
    await engine.logout(cookie)
    with pytest.raises(SessionRevoked):
        await engine.grant(cookie)


async def test_revoke_drops_the_memo(store: Store, clock: ManualClock) -> None:
    engine = make_engine(store, clock)
    cookie = await login(engine)
    grant = await engine.grant(cookie)
    await engine.revoke(grant.sid, reason="admin")
    with pytest.raises(SessionRevoked):
        await engine.grant(cookie)


async def test_revoking_the_user_drops_the_memo(store: Store, clock: ManualClock) -> None:
    engine = make_engine(store, clock)
    cookie = await login(engine)
    grant = await engine.grant(cookie)
    await engine.revoke_user(grant.user_id, reason="password changed")
    with pytest.raises(SessionRevoked):
        await engine.grant(cookie)


async def test_another_workers_revocation_ends_the_memo_with_the_cached_row(
    two_workers: tuple[SessionEngine, SessionEngine], clock: ManualClock
) -> None:
    a, b = two_workers
    cookie = await login(a)
    await b.grant(cookie)
    await b.grant(cookie)  # memoised in b
    await a.logout(cookie)
    clock.advance(SETTINGS.state_ttl)  # exactly as long as b's cached row may be stale, not a moment more
    with pytest.raises(SessionRevoked):
        await b.grant(cookie)


async def test_rotation_drops_the_memo_of_the_rotated_cookie(
    store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(store, clock)
    cookie = await login(engine)
    first = await engine.grant(cookie)
    clock.advance(SETTINGS.access_ttl - SETTINGS.margin)  # inside the refresh margin: mint and rotate
    rotated = await engine.grant(cookie)
    assert rotated.set_cookie is not None and rotated.access_token != first.access_token
    counted = Counted(engine, monkeypatch)
    # The old cookie is now in its grace: it is re-checked (and told the new cookie), never served the memo.
    clock.advance(0.01)
    grace = await engine.grant(cookie)
    assert counted.decodes == 1 and grace.set_cookie is not None
    assert grace.access_token == rotated.access_token
    counted.reset()
    new_cookie = cookie_of(rotated.set_cookie)
    await engine.grant(new_cookie)
    assert counted.decodes == 1  # first sight of the new cookie
    assert (await engine.grant(new_cookie)).access_token == rotated.access_token
    assert counted.decodes == 1  # then memoised


async def test_a_forced_mint_replaces_the_memoised_token(store: Store, clock: ManualClock) -> None:
    engine = make_engine(store, clock)
    cookie = await login(engine)
    first = await engine.grant(cookie)
    await engine.grant(cookie)
    forced = await engine.grant(cookie, force_new=True)  # the proxy's retry on an upstream invalid_token
    assert forced.access_token != first.access_token
    after = await engine.grant(cookie_of(forced.set_cookie) if forced.set_cookie else cookie)
    assert after.access_token == forced.access_token


async def test_the_memo_ends_at_the_access_tokens_refresh_margin(store: Store, clock: ManualClock) -> None:
    engine = make_engine(store, clock)
    cookie = await login(engine)
    first = await engine.grant(cookie)
    # Keep the session row cached (and the memo with it) by re-reading it just before the margin.
    clock.advance(SETTINGS.access_ttl - SETTINGS.margin - 0.1)
    await engine.grant(cookie)
    clock.advance(0.1)
    after = await engine.grant(cookie)
    assert after.access_token != first.access_token and after.set_cookie is not None


async def test_the_memo_ends_with_the_refresh_tokens_expiry(clock: ManualClock, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    # No refresh margin and a long-cached row: the refresh token's expiry (the session's idle end) is what ends
    # the memo, not the access token's margin nor the row's staleness.
    settings = dataclasses.replace(SETTINGS, access_ttl=3600, refresh_ttl=100, refresh_margin=0, state_ttl=1000)
    engine = make_engine(store, clock, settings)
    cookie = await login(engine)
    first = await engine.grant(cookie)
    clock.advance(99.9)
    assert await engine.grant(cookie) == first
    clock.advance(0.1)  # the refresh token (and the session's idle lifetime) ends now
    with pytest.raises(NotAuthenticated):
        await engine.grant(cookie)
    await store.close()
