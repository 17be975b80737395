"""The shared store suite, continued: an identity provider's tokens kept with the session, found for back-channel
logout, refreshed under a lease, and back-channel ``jti`` replay refusal (every backend: the ``store`` fixture)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from frontdesk.middleware.store import IdpTokenRecord, Store
from frontdesk.middleware.store.sqlite import SqliteStore
from tests.middleware.test_store import NOW, record


def tokens(sid: str = "s1", **changes: object) -> IdpTokenRecord:
    base: dict[str, object] = dict(
        sid=sid, provider="corp", subject="sub-1", idp_sid="idp-1", sealed=f"v1.sealed-{sid}", expires_at=NOW + 1000
    )
    base.update(changes)
    return IdpTokenRecord(**base)  # type: ignore[arg-type]


async def test_idp_tokens_are_kept_with_the_session_and_replaced_whole(store: Store) -> None:
    await store.create_session(record())
    assert await store.get_idp_tokens("s1") is None
    await store.save_idp_tokens(tokens())
    assert await store.get_idp_tokens("s1") == tokens()
    await store.save_idp_tokens(tokens(sealed="v1.other", idp_sid=None))
    assert await store.get_idp_tokens("s1") == tokens(sealed="v1.other", idp_sid=None)


async def test_replacing_idp_tokens_is_compare_and_set(store: Store) -> None:
    await store.create_session(record())
    await store.save_idp_tokens(tokens(sealed="v1.a"))
    assert await store.replace_idp_tokens("s1", expected="v1.a", sealed="v1.b")
    assert not await store.replace_idp_tokens("s1", expected="v1.a", sealed="v1.c")  # another worker's was first
    got = await store.get_idp_tokens("s1")
    assert got is not None and got.sealed == "v1.b" and got.idp_sid == "idp-1"
    assert not await store.replace_idp_tokens("missing", expected="v1.a", sealed="v1.b")
    assert await store.get_idp_tokens("missing") is None


async def test_concurrent_replacements_only_one_wins(store: Store) -> None:
    await store.create_session(record())
    await store.save_idp_tokens(tokens(sealed="v1.a"))
    racers = (store.replace_idp_tokens("s1", expected="v1.a", sealed=f"v1.{i}") for i in range(20))
    results = await asyncio.gather(*racers)
    assert sum(results) == 1


async def test_the_refresh_lease_has_one_holder_until_it_expires_or_the_tokens_change(store: Store) -> None:
    await store.create_session(record())
    await store.save_idp_tokens(tokens(sealed="v1.a"))
    taken = await asyncio.gather(
        *(store.lease_idp_refresh("s1", holder=f"w{i}", now=NOW, until=NOW + 10) for i in range(20))
    )
    assert sum(taken) == 1
    holder = f"w{taken.index(True)}"
    assert not await store.lease_idp_refresh("s1", holder="late", now=NOW + 9, until=NOW + 19)
    assert await store.lease_idp_refresh("s1", holder="late", now=NOW + 10, until=NOW + 20)  # the first one lapsed
    await store.release_idp_refresh("s1", holder=holder)  # no longer its lease: changes nothing
    assert not await store.lease_idp_refresh("s1", holder="third", now=NOW + 11, until=NOW + 21)
    await store.release_idp_refresh("s1", holder="late")
    assert await store.lease_idp_refresh("s1", holder="third", now=NOW + 11, until=NOW + 21)
    assert await store.replace_idp_tokens("s1", expected="v1.a", sealed="v1.b")  # a refresh done ends the lease
    assert await store.lease_idp_refresh("s1", holder="fourth", now=NOW + 12, until=NOW + 22)


async def test_idp_sessions_are_found_by_idp_session_and_by_subject(store: Store) -> None:
    for sid in ("a", "b", "c", "d", "e", "f"):
        await store.create_session(record(sid))
    await store.create_session(record("idle", idle_expires_at=NOW + 10))
    await store.save_idp_tokens(tokens("a"))
    await store.save_idp_tokens(tokens("b", idp_sid="idp-2"))
    await store.save_idp_tokens(tokens("c", subject="sub-2", idp_sid="idp-3"))
    await store.save_idp_tokens(tokens("d", provider="other"))  # same ids at another provider
    await store.save_idp_tokens(tokens("e"))
    await store.save_idp_tokens(tokens("idle"))
    await store.revoke_session("e", now=NOW, reason="logout")
    # "f" logged in with a password: no IdP tokens at all.
    assert await store.find_idp_sessions("corp", now=NOW + 20, idp_sid="idp-1") == ["a"]
    assert await store.find_idp_sessions("corp", now=NOW + 20, subject="sub-1") == ["a", "b"]
    assert await store.find_idp_sessions("corp", now=NOW + 20, idp_sid="idp-3", subject="sub-2") == ["c"]
    assert await store.find_idp_sessions("corp", now=NOW + 20, idp_sid="idp-3", subject="sub-1") == []
    assert await store.find_idp_sessions("other", now=NOW + 20, idp_sid="idp-1") == ["d"]
    assert await store.find_idp_sessions("corp", now=NOW + 5, idp_sid="idp-1") == ["a", "idle"]
    assert await store.find_idp_sessions("nobody", now=NOW, subject="sub-1") == []


async def test_idp_tokens_end_with_the_session(store: Store) -> None:
    for sid in ("revoked", "user", "idle", "live"):
        await store.create_session(record(sid, user_id="u2" if sid == "user" else "u1"))
        await store.save_idp_tokens(tokens(sid))
    await store.revoke_session("revoked", now=NOW, reason="logout")
    await store.revoke_user("u2", now=NOW, reason="user removed")
    assert await store.get_idp_tokens("revoked") is None and await store.get_idp_tokens("user") is None
    assert await store.find_idp_sessions("corp", now=NOW, subject="sub-1") == ["idle", "live"]
    await store.create_session(record("gone", idle_expires_at=NOW + 10))
    await store.save_idp_tokens(tokens("gone"))
    await store.purge(now=NOW + 100)
    assert await store.get_idp_tokens("gone") is None
    assert await store.get_idp_tokens("live") is not None


async def test_a_logout_token_jti_is_accepted_once_until_it_expires(store: Store) -> None:
    assert await store.remember_logout_token("corp", "jti-1", now=NOW, until=NOW + 60)
    assert not await store.remember_logout_token("corp", "jti-1", now=NOW + 59, until=NOW + 119)
    assert await store.remember_logout_token("other", "jti-1", now=NOW, until=NOW + 60)  # per provider
    results = await asyncio.gather(
        *(store.remember_logout_token("corp", "jti-2", now=NOW, until=NOW + 60) for _ in range(10))
    )
    assert sum(results) == 1
    await store.purge(now=NOW + 61)
    assert await store.remember_logout_token("corp", "jti-1", now=NOW + 61, until=NOW + 121)


async def test_sqlite_keeps_the_sealed_tokens_only(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "fd.db")
    await store.open()
    await store.create_session(record())
    await store.save_idp_tokens(tokens(sealed="v1.opaque"))
    await store.close()
    reopened = SqliteStore(tmp_path / "fd.db")
    await reopened.open()
    assert await reopened.get_idp_tokens("s1") == tokens(sealed="v1.opaque")
    await reopened.close()
