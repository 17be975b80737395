"""The session engine over a manual clock: silent refresh, rotation, grace, reuse detection, logout."""

from __future__ import annotations

import asyncio
from pathlib import Path

import jwt
import pytest

from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import BadCredentials, NotAuthenticated, RateLimited, SessionRevoked, TokenReused
from frontdesk.middleware.events import Event, Events, Kind
from frontdesk.middleware.sessions import LoginResult, SessionEngine, SessionSettings, User
from frontdesk.middleware.store import Store
from frontdesk.middleware.store.sqlite import SqliteStore
from frontdesk.middleware.tokens import ACCESS_TYP, REFRESH_TYP, KeyRing, TokenCodec

SETTINGS = SessionSettings(
    access_ttl=300,
    refresh_ttl=3600,
    remember_ttl=7200,
    max_session_age=10_000,
    rotation_grace=30,
    refresh_margin=60,
    login_attempts_per_user=3,
    login_attempts_per_address=5,
    login_window=600,
)


async def authenticator(username: str, password: str) -> User | None:
    if password == "correct horse" and username in ("alice", "bob"):
        return User(id=f"id-{username}", username=username)
    return None


def make_engine(store: Store, clock: ManualClock, settings: SessionSettings = SETTINGS) -> SessionEngine:
    access = TokenCodec(KeyRing.from_secrets("a" * 40), typ=ACCESS_TYP, issuer="fd", audience="api", clock=clock)
    refresh = TokenCodec(KeyRing.from_secrets("r" * 40), typ=REFRESH_TYP, issuer="fd", audience="fd", clock=clock)
    return SessionEngine(
        store=store,
        access_codec=access,
        refresh_codec=refresh,
        authenticator=authenticator,
        settings=settings,
        clock=clock,
    )


def cookie_of(set_cookie: str | None) -> str:
    assert set_cookie is not None
    return set_cookie.split(";")[0]


def jti_of(set_cookie: str | None) -> str:
    token = cookie_of(set_cookie).split("=", 1)[1]
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def engine(store: Store, clock: ManualClock) -> SessionEngine:
    return make_engine(store, clock)


async def login(engine: SessionEngine, user: str = "alice", remember: bool = False) -> str:
    result = await engine.login(user, "correct horse", remember=remember, client_ip="10.0.0.1")
    return cookie_of(result.set_cookie)


async def test_login_sets_a_host_cookie_and_grant_reuses_the_cached_token(engine: SessionEngine) -> None:
    result = await engine.login("alice", "correct horse")
    assert result.set_cookie.startswith("__Host-frontdesk=")
    assert "HttpOnly" in result.set_cookie and "Secure" in result.set_cookie and "SameSite=Strict" in result.set_cookie
    assert "Max-Age" not in result.set_cookie and "Domain" not in result.set_cookie
    cookie = cookie_of(result.set_cookie)
    first = await engine.grant(cookie)
    second = await engine.grant(cookie)
    assert first.access_token == second.access_token and first.set_cookie is None
    claims = engine.access_codec.decode(first.access_token)
    assert claims["sub"] == "id-alice" and claims["sid"] == result.sid and claims["aud"] == "api"
    assert engine.stats == {"mints": 1, "rotations": 0, "reuse_detected": 0}


async def test_remember_me_sets_max_age_of_the_idle_lifetime(engine: SessionEngine) -> None:
    result = await engine.login("alice", "correct horse", remember=True)
    assert "Max-Age=7200" in result.set_cookie


async def test_silent_refresh_mints_and_rotates_near_expiry(engine: SessionEngine, clock: ManualClock) -> None:
    cookie = await login(engine)
    first = await engine.grant(cookie)
    clock.advance(300 - 59)  # inside the refresh margin
    second = await engine.grant(cookie)
    assert second.access_token != first.access_token
    assert second.set_cookie is not None and jti_of(second.set_cookie) != jti_of(cookie)
    assert second.idle_expires_at == clock() + 3600  # the idle expiry slid
    assert engine.stats["rotations"] == 1
    third = await engine.grant(cookie_of(second.set_cookie))
    assert third.access_token == second.access_token and third.set_cookie is None


async def test_idle_expiry_never_passes_the_absolute_cap(engine: SessionEngine, clock: ManualClock) -> None:
    cookie = await login(engine)
    for _ in range(40):
        clock.advance(290)
        grant = await engine.grant(cookie)
        cookie = cookie_of(grant.set_cookie) if grant.set_cookie else cookie
        assert grant.idle_expires_at <= grant.expires_at
        if clock() > grant.expires_at - 300:
            break
    clock.advance(10_000)
    with pytest.raises(NotAuthenticated):
        await engine.grant(cookie)


async def test_previous_token_works_within_grace_and_converges(engine: SessionEngine, clock: ManualClock) -> None:
    old = await login(engine)
    clock.advance(300)
    new = cookie_of((await engine.grant(old)).set_cookie)
    clock.advance(10)
    grant = await engine.grant(old)  # a second tab / parallel request still holding the old cookie
    assert grant.set_cookie is not None and jti_of(grant.set_cookie) == jti_of(new)
    assert engine.stats["rotations"] == 1


async def test_previous_token_after_grace_revokes_the_whole_session(engine: SessionEngine, clock: ManualClock) -> None:
    old = await login(engine)
    clock.advance(300)
    new = cookie_of((await engine.grant(old)).set_cookie)
    clock.advance(31)
    with pytest.raises(TokenReused):
        await engine.grant(old)
    with pytest.raises(SessionRevoked):
        await engine.grant(new)
    assert engine.stats["reuse_detected"] == 1


async def test_a_token_superseded_longer_than_the_grace_ago_is_reuse(engine: SessionEngine, clock: ManualClock) -> None:
    first = await login(engine)
    clock.advance(300)
    second = cookie_of((await engine.grant(first)).set_cookie)
    clock.advance(300)
    third = cookie_of((await engine.refresh(second)).set_cookie)  # the second was superseded just now ...
    with pytest.raises(TokenReused):
        await engine.grant(first)  # ... but the first 300 s ago
    with pytest.raises(SessionRevoked):
        await engine.grant(third)


# --- the reuse interval: two tabs, one cookie jar -----------------------------------------------------


async def test_a_token_two_rotations_back_is_accepted_within_the_grace(
    engine: SessionEngine, clock: ManualClock
) -> None:
    # A request still in flight with T1 while the other tab's requests rotated twice: T1 was superseded 3 s
    # ago, well inside the 30 s grace. Before the reuse interval, any token but the previous one was reuse.
    t1 = await login(engine)
    clock.advance(300)
    t2 = cookie_of((await engine.grant(t1)).set_cookie)
    clock.advance(2)
    t3 = cookie_of((await engine.refresh(t2)).set_cookie)
    clock.advance(1)
    late = await engine.grant(t1)
    assert jti_of(late.set_cookie) == jti_of(t3)  # its holder gets the current cookie ...
    assert engine.stats["rotations"] == 2 and engine.stats["reuse_detected"] == 0  # ... and nothing rotates
    refreshed = await engine.refresh(t2)  # a refresh with a superseded token does not rotate either
    assert jti_of(refreshed.set_cookie) == jti_of(t3) and engine.stats["rotations"] == 2
    assert (await engine.grant(t3)).username == "alice"


@pytest.mark.parametrize(("since", "accepted"), [(29.9, True), (30.0, False), (45.0, False)])
async def test_the_grace_counts_from_when_each_token_was_superseded(
    engine: SessionEngine, clock: ManualClock, since: float, accepted: bool
) -> None:
    t1 = await login(engine)
    clock.advance(300)
    t2 = cookie_of((await engine.refresh(t1)).set_cookie)  # t1 superseded now
    clock.advance(5)
    t3 = cookie_of((await engine.refresh(t2)).set_cookie)  # t2 superseded 5 s later
    clock.advance(since - 5)  # t1 was superseded `since` seconds ago
    if accepted:
        assert jti_of((await engine.grant(t1)).set_cookie) == jti_of(t3)
    else:
        with pytest.raises(TokenReused):
            await engine.grant(t1)
        with pytest.raises(SessionRevoked):
            await engine.grant(t3)


async def test_a_refresh_right_after_a_rotation_hands_back_the_current_token(
    engine: SessionEngine, clock: ManualClock
) -> None:
    t1 = await login(engine)
    t2 = cookie_of((await engine.refresh(t1)).set_cookie)  # a login is no rotation: this one rotates
    clock.advance(0.9)
    again = await engine.refresh(t2)  # the other tab refreshes at the same moment
    assert jti_of(again.set_cookie) == jti_of(t2) and engine.stats["rotations"] == 1
    clock.advance(0.2)  # more than a second after the rotation: a refresh rotates again
    t3 = cookie_of((await engine.refresh(t2)).set_cookie)
    assert jti_of(t3) != jti_of(t2) and engine.stats["rotations"] == 2


async def test_rotations_within_the_grace_are_remembered_across_workers(tmp_path: Path, clock: ManualClock) -> None:
    # Two workers over one SQLite file rotate in turn; a token superseded by the other worker is still judged
    # by when it was superseded, and every rotation happened once (compare-and-swap).
    stores = [SqliteStore(tmp_path / "shared.db"), SqliteStore(tmp_path / "shared.db")]
    for s in stores:
        await s.open()
    a, b = make_engine(stores[0], clock), make_engine(stores[1], clock)
    tokens = [await login(a)]
    for i in range(4):
        clock.advance(1.5)
        worker = (a, b)[i % 2]
        grants = await asyncio.gather(worker.refresh(tokens[-1]), (b, a)[i % 2].refresh(tokens[-1]))
        assert len({jti_of(g.set_cookie) for g in grants}) == 1  # both workers hand out the same new token
        tokens.append(cookie_of(grants[0].set_cookie))
    assert a.stats["rotations"] + b.stats["rotations"] == 4
    for token in tokens[:-1]:  # superseded 1.5 to 6 s ago: all inside the 30 s grace, on either worker
        assert jti_of((await b.grant(token)).set_cookie) == jti_of(tokens[-1])
    assert a.stats["reuse_detected"] + b.stats["reuse_detected"] == 0
    for s in stores:
        await s.close()


async def test_fifty_concurrent_requests_at_expiry_mint_once(engine: SessionEngine, clock: ManualClock) -> None:
    cookie = await login(engine)
    clock.advance(300)
    grants = await asyncio.gather(*(engine.grant(cookie) for _ in range(50)))
    assert len({g.access_token for g in grants}) == 1
    assert {jti_of(g.set_cookie) for g in grants if g.set_cookie} != set()
    assert len({jti_of(g.set_cookie) for g in grants if g.set_cookie}) == 1
    assert engine.stats["mints"] == 2 and engine.stats["rotations"] == 1  # login's mint + one


async def test_two_workers_rotate_once(tmp_path: Path, clock: ManualClock) -> None:
    stores = [SqliteStore(tmp_path / "shared.db"), SqliteStore(tmp_path / "shared.db")]
    for s in stores:
        await s.open()
    a, b = make_engine(stores[0], clock), make_engine(stores[1], clock)
    cookie = await login(a)
    clock.advance(300)
    ga, gb = await asyncio.gather(a.grant(cookie), b.grant(cookie))
    assert a.stats["rotations"] + b.stats["rotations"] == 1
    assert jti_of(ga.set_cookie) == jti_of(gb.set_cookie)
    for s in stores:
        await s.close()


async def test_logout_revokes_everywhere(tmp_path: Path, clock: ManualClock) -> None:
    stores = [SqliteStore(tmp_path / "shared.db"), SqliteStore(tmp_path / "shared.db")]
    for s in stores:
        await s.open()
    a, b = make_engine(stores[0], clock), make_engine(stores[1], clock)
    cookie = await login(a)
    await b.grant(cookie)
    assert await a.logout(cookie) is not None
    assert await a.logout(cookie) is not None  # idempotent
    with pytest.raises(SessionRevoked):
        await a.grant(cookie)
    clock.advance(SETTINGS.state_ttl + 0.01)  # the other worker's cached row is stale after this
    with pytest.raises(SessionRevoked):
        await b.grant(cookie)
    for s in stores:
        await s.close()


async def test_login_replaces_the_browsers_previous_session(engine: SessionEngine) -> None:
    old = await login(engine)
    result = await engine.login("bob", "correct horse", cookie_header=old)
    with pytest.raises(SessionRevoked):
        await engine.grant(old)
    assert (await engine.grant(cookie_of(result.set_cookie))).username == "bob"


async def test_bad_credentials_and_rate_limits(engine: SessionEngine) -> None:
    for _ in range(3):
        with pytest.raises(BadCredentials):
            await engine.login("alice", "wrong", client_ip="10.0.0.9")
    with pytest.raises(RateLimited) as info:
        await engine.login("alice", "correct horse", client_ip="10.0.0.9")
    assert 0 < info.value.retry_after <= 601
    # Another user from another address is not affected ...
    assert (await engine.login("bob", "correct horse", client_ip="10.0.0.8")).user.username == "bob"
    # ... but one address trying many names is.
    for name in ("carol", "dave", "erin", "frank"):  # attempts 2 to 5 of 5
        with pytest.raises((BadCredentials, RateLimited)):
            await engine.login(name, "x", client_ip="10.0.0.8")
    with pytest.raises(RateLimited):
        await engine.login("bob", "correct horse", client_ip="10.0.0.8")


async def test_unknown_and_invalid_cookies(engine: SessionEngine) -> None:
    for header in (None, "", "other=1", "__Host-frontdesk=garbage", "__Host-frontdesk=a.b.c"):
        with pytest.raises(NotAuthenticated):
            await engine.grant(header)


async def test_audience_and_force_new(engine: SessionEngine) -> None:
    cookie = await login(engine)
    orders = await engine.grant(cookie, audience="orders")
    assert engine.access_codec.decode(orders.access_token, audience="orders")["aud"] == "orders"
    forced = await engine.grant(cookie_of(orders.set_cookie) if orders.set_cookie else cookie, force_new=True)
    assert forced.access_token != orders.access_token


async def test_is_active_follows_logout(engine: SessionEngine) -> None:
    cookie = await login(engine)
    grant = await engine.grant(cookie)
    assert await engine.is_active(grant.sid)
    await engine.logout(cookie)
    assert not await engine.is_active(grant.sid)


async def test_a_second_worker_minting_right_after_a_rotation_does_not_rotate_again(
    tmp_path: Path, clock: ManualClock
) -> None:
    stores = [SqliteStore(tmp_path / "shared.db"), SqliteStore(tmp_path / "shared.db")]
    for s in stores:
        await s.open()
    a, b = make_engine(stores[0], clock), make_engine(stores[1], clock)
    old = await login(a)
    clock.advance(300)
    rotated = (await a.grant(old)).set_cookie
    clock.advance(1)
    from_b = await b.grant(cookie_of(rotated))  # b's cache is cold: it mints, but the token stays
    assert a.stats["rotations"] + b.stats["rotations"] == 1 and b.stats["mints"] == 1
    assert jti_of(from_b.set_cookie) == jti_of(rotated)
    assert (await a.grant(old)).set_cookie is not None  # the previous token is still inside its grace
    clock.advance(300)
    await b.grant(cookie_of(rotated))  # a later mint, past the grace, rotates as usual
    assert a.stats["rotations"] + b.stats["rotations"] == 2
    for s in stores:
        await s.close()


# --- login limits that cannot be turned against the user -----------------------------------------------


def device_of(result: LoginResult) -> str:
    """The device cookie (name=value) a successful login handed out."""
    assert result.device_cookie is not None
    return result.device_cookie.split(";")[0]


async def test_an_address_over_its_limit_cannot_push_a_users_counter(engine: SessionEngine) -> None:
    # Before: every request counted against the username first, refused or not, so one address already at its
    # own limit could keep any account locked (11 requests, no hashing) and the real user got 429.
    for name in ("carol", "dave", "erin", "frank", "gina"):  # the address's 5 attempts
        with pytest.raises(BadCredentials):
            await engine.login(name, "x", client_ip="10.6.6.6")
    for _ in range(20):
        with pytest.raises(RateLimited):
            await engine.login("alice", "x", client_ip="10.6.6.6")
    assert (await engine.login("alice", "correct horse", client_ip="10.0.0.1")).user.username == "alice"


async def test_a_known_device_gets_in_while_the_username_is_under_attack(engine: SessionEngine) -> None:
    device = device_of(await engine.login("alice", "correct horse", client_ip="10.0.0.1"))
    bobs_device = device_of(await engine.login("bob", "correct horse", client_ip="10.0.0.2"))
    for i in range(3):  # the per-username budget, spent by an attacker from three addresses
        with pytest.raises(BadCredentials):
            await engine.login("alice", "guess", client_ip=f"10.6.6.{i}")
    # Unknown clients are refused, the right password included, and so are other users' or forged devices.
    for cookie in (None, bobs_device, "__Host-frontdesk-device=forged.token.here"):
        with pytest.raises(RateLimited):
            await engine.login("ALICE", "correct horse", client_ip="10.0.0.9", cookie_header=cookie)
    # The real user, from the browser she logged in from before, gets in (from any address).
    result = await engine.login("alice", "correct horse", client_ip="10.0.0.7", cookie_header=device)
    assert result.user.username == "alice"
    assert device_of(result) != device and jti_of(result.device_cookie) != jti_of(device)  # re-signed ...
    claims = jwt.decode(device_of(result).split("=", 1)[1], options={"verify_signature": False})
    old = jwt.decode(device.split("=", 1)[1], options={"verify_signature": False})
    assert claims["sid"] == old["sid"] and claims["sub"] == "alice"  # ... for the same device


async def test_a_known_device_has_a_budget_of_its_own(engine: SessionEngine) -> None:
    # A stolen device cookie buys no more guesses than the per-username budget, and spends none of it.
    device = device_of(await engine.login("alice", "correct horse", client_ip="10.0.0.1"))
    for i in range(3):
        with pytest.raises(BadCredentials):
            await engine.login("alice", "guess", client_ip=f"10.7.7.{i}", cookie_header=device)
    with pytest.raises(RateLimited):
        await engine.login("alice", "correct horse", client_ip="10.7.7.9", cookie_header=device)
    assert (await engine.login("alice", "correct horse", client_ip="10.0.0.2")).user.username == "alice"


async def test_the_device_cookie_is_a_host_cookie_and_no_session_token(
    engine: SessionEngine, clock: ManualClock
) -> None:
    result = await engine.login("alice", "correct horse")
    assert result.device_cookie is not None
    attrs = [a.strip() for a in result.device_cookie.split(";")]
    assert attrs[0].startswith("__Host-frontdesk-device=")
    assert set(attrs[1:]) == {"Path=/", f"Max-Age={365 * 86400}", "HttpOnly", "Secure", "SameSite=Strict"}
    with pytest.raises(NotAuthenticated):  # signed with the refresh key, but of another type
        await engine.grant("__Host-frontdesk=" + device_of(result).split("=", 1)[1])
    assert engine.login_limits.known_device(cookie_of(result.set_cookie).replace("frontdesk=", "frontdesk-device="),
                                            "alice") is None  # fmt: skip
    assert engine.login_limits.known_device(device_of(result), "alice") is not None
    clock.advance(365 * 86400 + 60)  # past its lifetime (and the leeway)
    assert engine.login_limits.known_device(device_of(result), "alice") is None


async def test_start_session_is_the_one_way_in_for_an_already_authenticated_user(
    store: Store, clock: ManualClock
) -> None:
    """A login at an OpenID Provider starts exactly the session a password login starts (same cookie, same
    expiries, same events), without the authenticator; and it replaces the browser's previous session."""
    seen: list[Event] = []

    class Sink:
        def emit(self, event: Event) -> None:
            seen.append(event)

    engine = make_engine(store, clock)
    engine.events = Events([Sink()])
    old = await engine.login("alice", "correct horse")
    started = await engine.start_session(
        User(id="oidc:corp:sub-1", username="carol"),
        cookie_header=cookie_of(old.set_cookie),
        client_ip="10.0.0.9",
        method="oidc:corp",
    )
    grant = await engine.grant(cookie_of(started.set_cookie))
    assert (grant.user_id, grant.username) == ("oidc:corp:sub-1", "carol")
    assert started.idle_expires_at == clock() + SETTINGS.refresh_ttl
    assert "__Host-" in started.set_cookie and "HttpOnly" in started.set_cookie
    with pytest.raises(NotAuthenticated):
        await engine.grant(cookie_of(old.set_cookie))
    logins = [e for e in seen if e.kind == Kind.LOGIN_OK]
    assert [e.reason for e in logins] == [None, "oidc:corp"]
