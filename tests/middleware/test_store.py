"""One shared suite, run against every store backend (a new backend adds one fixture param)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from middleware.store import SessionRecord, SqliteStore, Store

NOW = 1_800_000_000.0


def record(sid: str = "s1", **changes: object) -> SessionRecord:
    base: dict[str, object] = dict(
        sid=sid,
        user_id="u1",
        username="alice",
        created_at=NOW,
        last_seen=NOW,
        expires_at=NOW + 1000,
        idle_expires_at=NOW + 500,
        remember=False,
        current_jti="j1",
        previous_jti=None,
        rotated_at=NOW,
    )
    base.update(changes)
    return SessionRecord(**base)  # type: ignore[arg-type]


async def test_create_and_get(store: Store) -> None:
    await store.create_session(record(remember=True))
    got = await store.get_session("s1")
    assert got == record(remember=True)
    assert await store.get_session("missing") is None


async def test_duplicate_session_id_is_refused(store: Store) -> None:
    await store.create_session(record())
    with pytest.raises(ValueError):
        await store.create_session(record())


async def test_rotate_is_compare_and_swap(store: Store) -> None:
    await store.create_session(record())
    assert await store.rotate("s1", expected_jti="j1", new_jti="j2", now=NOW + 5, idle_expires_at=NOW + 600)
    # A second worker holding the same old jti loses the race.
    assert not await store.rotate("s1", expected_jti="j1", new_jti="j3", now=NOW + 5, idle_expires_at=NOW + 600)
    got = await store.get_session("s1")
    assert got is not None
    assert (got.current_jti, got.previous_jti, got.rotated_at, got.idle_expires_at) == ("j2", "j1", NOW + 5, NOW + 600)


async def test_concurrent_rotations_only_one_wins(store: Store) -> None:
    await store.create_session(record())
    results = await asyncio.gather(
        *(store.rotate("s1", expected_jti="j1", new_jti=f"n{i}", now=NOW, idle_expires_at=NOW + 9) for i in range(20))
    )
    assert sum(results) == 1


async def test_revoke_blocks_rotation_and_is_recorded(store: Store) -> None:
    await store.create_session(record())
    assert not await store.is_revoked("s1")
    await store.revoke_session("s1", now=NOW + 1, reason="logout")
    await store.revoke_session("s1", now=NOW + 2, reason="logout")  # idempotent
    got = await store.get_session("s1")
    assert got is not None and got.revoked_at == NOW + 1
    assert await store.is_revoked("s1")
    assert not await store.rotate("s1", expected_jti="j1", new_jti="j2", now=NOW + 3, idle_expires_at=NOW + 9)


async def test_revoking_an_unknown_session_is_remembered(store: Store) -> None:
    await store.revoke_session("ghost", now=NOW, reason="logout")
    assert await store.is_revoked("ghost")


async def test_hit_counts_per_key_and_window(store: Store) -> None:
    assert await store.hit("k", window=60, now=NOW) == (1, NOW - NOW % 60 + 60)
    assert (await store.hit("k", window=60, now=NOW + 1))[0] == 2
    assert (await store.hit("other", window=60, now=NOW + 1))[0] == 1
    assert (await store.hit("k", window=60, now=NOW + 61))[0] == 1  # a new window starts over
    await store.reset("k")
    assert (await store.hit("k", window=60, now=NOW + 62))[0] == 1


async def test_purge_removes_only_what_expired(store: Store) -> None:
    await store.create_session(record("live"))
    await store.create_session(record("idle", idle_expires_at=NOW + 10))
    await store.create_session(record("old", expires_at=NOW + 10, idle_expires_at=NOW + 10))
    await store.revoke_session("old", now=NOW, reason="logout")
    removed = await store.purge(now=NOW + 100)
    assert removed >= 3
    assert await store.get_session("live") is not None
    assert await store.get_session("idle") is None and await store.get_session("old") is None
    assert not await store.is_revoked("old")


async def test_sqlite_survives_reopen_and_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "fd.db"
    first = SqliteStore(path)
    await first.open()
    await first.create_session(record())
    await first.revoke_session("s1", now=NOW, reason="logout")
    await first.close()
    second = SqliteStore(path)
    await second.open()
    assert await second.schema_version() == 1
    assert await second.is_revoked("s1")
    got = await second.get_session("s1")
    assert got is not None and got.revoked_at == NOW
    async with second.db.execute("PRAGMA journal_mode") as cur:
        assert (await cur.fetchone())[0] == "wal"  # type: ignore[index]
    await second.close()


async def test_sqlite_two_connections_see_each_others_writes(tmp_path: Path) -> None:
    a, b = SqliteStore(tmp_path / "fd.db"), SqliteStore(tmp_path / "fd.db")
    await asyncio.gather(a.open(), b.open())
    await a.create_session(record())
    assert await b.rotate("s1", expected_jti="j1", new_jti="j2", now=NOW, idle_expires_at=NOW + 9)
    assert not await a.rotate("s1", expected_jti="j1", new_jti="j3", now=NOW, idle_expires_at=NOW + 9)
    await b.revoke_session("s1", now=NOW, reason="logout")
    assert await a.is_revoked("s1")
    await a.close()
    await b.close()


async def test_revoke_user_ends_every_live_session_of_that_user_only(store: Store) -> None:
    await store.create_session(record("a1"))
    await store.create_session(record("a2"))
    await store.create_session(record("b1", user_id="u2"))
    await store.revoke_session("a2", now=NOW, reason="logout")
    assert await store.revoke_user("u1", now=NOW + 1, reason="user removed") == 1
    assert await store.is_revoked("a1") and await store.is_revoked("a2")
    assert not await store.is_revoked("b1")
    got = await store.get_session("a1")
    assert got is not None and got.revoked_at == NOW + 1
    assert await store.revoke_user("u1", now=NOW + 2, reason="again") == 0
    assert await store.revoke_user("nobody", now=NOW + 2, reason="none") == 0


async def test_workers_opening_a_fresh_file_together_all_start(tmp_path: Path) -> None:
    # Switching a new file to WAL needs a moment of exclusive access that SQLite does not wait for;
    # before connect_wal retried, about one start in five failed with "database is locked".
    for attempt in range(20):
        stores = [SqliteStore(tmp_path / f"fresh{attempt}.db") for _ in range(3)]
        await asyncio.gather(*(s.open() for s in stores))
        for s in stores:
            async with s.db.execute("PRAGMA journal_mode") as cur:
                assert (await cur.fetchone())[0] == "wal"  # type: ignore[index]
            await s.close()


async def test_sqlite_files_are_created_readable_by_the_owner_only(tmp_path: Path) -> None:
    # The file holds sessions and (in the gateway) password hashes: 0600 from the start, and SQLite gives
    # the -wal and -shm files the main file's mode. A permissive umask must not widen any of them.
    path = tmp_path / "private" / "fd.db"
    old = os.umask(0o022)
    try:
        store = SqliteStore(path)
        await store.open()
        await store.create_session(record())  # a write, so the -wal and -shm exist
        try:
            for name in ("fd.db", "fd.db-wal", "fd.db-shm"):
                assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600, name
        finally:
            await store.close()
    finally:
        os.umask(old)
