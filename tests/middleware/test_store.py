"""One shared suite, run against every store backend (a new backend adds one fixture param)."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import stat
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis

from frontdesk.middleware.errors import StoreNotReady
from frontdesk.middleware.events import Event, Kind
from frontdesk.middleware.store import MemoryStore, SessionRecord, Store
from frontdesk.middleware.store.base import SUPERSEDED_LIMIT, CountsSessions
from frontdesk.middleware.store.redis import RedisStore
from frontdesk.middleware.store.sqlite import _MIGRATIONS, SCHEMA_VERSION, SqliteStore

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


async def test_attempts_count_per_key_and_window(store: Store) -> None:
    start = NOW - NOW % 60
    assert [await store.attempt([("k", 2)], window=60, now=start + t) for t in (0, 1, 2)] == [None, None, "k"]
    assert await store.attempt([("other", 2)], window=60, now=start + 2) is None  # each key counts alone
    assert await store.attempt([("k", 2)], window=60, now=start + 60) is None  # a new window starts over
    await store.reset("k")
    assert [await store.attempt([("k", 2)], window=60, now=start + 61) for _ in range(3)] == [None, None, "k"]


async def test_attempt_counts_every_key_or_none(store: Store) -> None:
    limits = [("addr", 3), ("user", 2)]
    assert await store.attempt(limits, window=60, now=NOW) is None
    assert await store.attempt(limits, window=60, now=NOW + 1) is None
    # "user" is at its limit: refused, and the refused attempt counts against nothing, "addr" included.
    assert await store.attempt(limits, window=60, now=NOW + 2) == "user"
    assert await store.attempt([("addr", 3)], window=60, now=NOW + 3) is None  # the third for "addr"
    assert await store.attempt(limits, window=60, now=NOW + 4) == "addr"  # checked first, in order
    assert await store.attempt([("user", 5)], window=60, now=NOW + 5) is None  # "user" was still at 2
    # "user" stands at 3 (its two counted attempts and the one just now): a fourth passes a limit of 4, a fifth not.
    assert [await store.attempt([("user", 4)], window=60, now=NOW + 6) for _ in range(2)] == [None, "user"]
    # A new window starts over; reset forgets one key.
    assert await store.attempt(limits, window=60, now=NOW + 60) is None
    await store.reset("user")
    assert await store.attempt([("user", 1)], window=60, now=NOW + 61) is None


async def test_concurrent_attempts_never_pass_the_limit(store: Store) -> None:
    results = await asyncio.gather(*(store.attempt([("k", 5)], window=60, now=NOW) for _ in range(20)))
    assert results.count(None) == 5 and results.count("k") == 15


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
    assert await second.schema_version() == len(_MIGRATIONS)
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


async def test_sessions_remember_where_they_logged_in_from(store: Store) -> None:
    await store.create_session(record(client_address="203.0.113.9", user_agent="Chrome 131 on Linux"))
    await store.create_session(record("s2"))  # a client that sent neither (or a session from before)
    got, bare = await store.get_session("s1"), await store.get_session("s2")
    assert got is not None and (got.client_address, got.user_agent) == ("203.0.113.9", "Chrome 131 on Linux")
    assert bare is not None and (bare.client_address, bare.user_agent) == (None, None)


async def test_list_sessions_returns_the_users_live_sessions_only(store: Store) -> None:
    await store.create_session(record("a1", created_at=NOW + 2, user_agent="Firefox 133 on Windows"))
    await store.create_session(record("a2", created_at=NOW + 1, client_address="198.51.100.7"))
    await store.create_session(record("revoked"))
    await store.create_session(record("idle", idle_expires_at=NOW + 10))
    await store.create_session(record("old", expires_at=NOW + 10, idle_expires_at=NOW + 10))
    await store.create_session(record("other", user_id="u2"))
    await store.revoke_session("revoked", now=NOW, reason="logout")
    live = await store.list_sessions("u1", now=NOW + 20)
    assert [r.sid for r in live] == ["a2", "a1"]  # oldest first
    assert live[0].client_address == "198.51.100.7" and live[1].user_agent == "Firefox 133 on Windows"
    assert live[1] == await store.get_session("a1")
    assert await store.list_sessions("nobody", now=NOW) == []
    await store.revoke_user("u1", now=NOW + 21, reason="logout everywhere")
    assert await store.list_sessions("u1", now=NOW + 22) == []


async def test_last_seen_moves_with_each_rotation(store: Store) -> None:
    await store.create_session(record())
    assert await store.rotate("s1", expected_jti="j1", new_jti="j2", now=NOW + 7, idle_expires_at=NOW + 600)
    got = await store.get_session("s1")
    assert got is not None and (got.created_at, got.last_seen) == (NOW, NOW + 7)
    (listed,) = await store.list_sessions("u1", now=NOW + 8)
    assert listed.last_seen == NOW + 7


async def test_count_live_sessions_skips_revoked_and_expired_ones(store: Store) -> None:
    assert isinstance(store, CountsSessions)
    assert await store.count_live_sessions(now=NOW) == 0
    await store.create_session(record("live"))
    await store.create_session(record("other-user", user_id="u2"))
    await store.create_session(record("revoked"))
    await store.create_session(record("idle", idle_expires_at=NOW + 10))
    await store.create_session(record("capped", expires_at=NOW + 20, idle_expires_at=NOW + 20))
    await store.revoke_session("revoked", now=NOW, reason="logout")
    assert await store.count_live_sessions(now=NOW + 1) == 4
    assert await store.count_live_sessions(now=NOW + 15) == 3  # "idle" sat idle past its deadline
    assert await store.count_live_sessions(now=NOW + 25) == 2  # "capped" reached its absolute end


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


# --- the superseded tokens of a session (the reuse interval) --------------------------------------------


async def test_rotation_remembers_the_recently_superseded_tokens(store: Store) -> None:
    await store.create_session(record())
    assert (await store.get_session("s1")).superseded == ()  # type: ignore[union-attr]
    t1, t2, t3 = NOW + 1.123456789, NOW + 2.5, NOW + 20.25  # odd fractions: times must round-trip exactly
    assert await store.rotate("s1", expected_jti="j1", new_jti="j2", now=t1, idle_expires_at=NOW + 9, remember_for=10)
    assert await store.rotate("s1", expected_jti="j2", new_jti="j3", now=t2, idle_expires_at=NOW + 9, remember_for=10)
    got = await store.get_session("s1")
    assert got is not None and got.superseded == (("j1", t1), ("j2", t2))
    assert (got.superseded_at("j1"), got.superseded_at("j2"), got.superseded_at("j3")) == (t1, t2, None)
    # Entries older than remember_for are dropped on the next rotation; the one just superseded always stays.
    assert await store.rotate("s1", expected_jti="j3", new_jti="j4", now=t3, idle_expires_at=NOW + 9, remember_for=10)
    got = await store.get_session("s1")
    assert got is not None and got.superseded == (("j3", t3),) and got.previous_jti == "j3"
    # A lost compare-and-swap changes nothing.
    assert not await store.rotate("s1", expected_jti="j3", new_jti="jx", now=t3, idle_expires_at=NOW + 9)
    assert await store.get_session("s1") == got


async def test_the_superseded_list_is_bounded(store: Store) -> None:
    await store.create_session(record(current_jti="j0"))
    for i in range(SUPERSEDED_LIMIT + 8):
        rotated = await store.rotate(
            "s1", expected_jti=f"j{i}", new_jti=f"j{i + 1}", now=NOW + i, idle_expires_at=NOW + 99, remember_for=1e9
        )
        assert rotated
    got = await store.get_session("s1")
    assert got is not None and len(got.superseded) == SUPERSEDED_LIMIT
    assert got.superseded[-1] == (f"j{SUPERSEDED_LIMIT + 7}", NOW + SUPERSEDED_LIMIT + 7)  # the newest are kept
    assert got.superseded[0] == ("j8", NOW + 8)


async def test_sqlite_migrates_a_version_1_database(tmp_path: Path) -> None:
    # A database written before the superseded list existed: its sessions keep their previous token's grace.
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript(_MIGRATIONS[0] + "PRAGMA user_version = 1;")
    db.execute(
        "INSERT INTO sessions VALUES ('old', 'u1', 'alice', ?, ?, ?, ?, 0, 'j2', 'j1', ?, NULL)",
        (NOW, NOW, NOW + 1000, NOW + 500, NOW + 5),
    )
    db.execute("INSERT INTO sessions VALUES ('new', 'u1', 'alice', ?, ?, ?, ?, 0, 'j1', NULL, ?, NULL)", (NOW,) * 5)
    db.commit()
    db.close()
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == len(_MIGRATIONS)
        old, new = await store.get_session("old"), await store.get_session("new")
        assert old is not None and old.superseded == (("j1", NOW + 5),) and old.superseded_at("j1") == NOW + 5
        assert new is not None and new.superseded == ()
        assert await store.rotate("old", expected_jti="j2", new_jti="j3", now=NOW + 6, idle_expires_at=NOW + 9,
                                  remember_for=30)  # fmt: skip
        got = await store.get_session("old")
        assert got is not None and got.superseded == (("j1", NOW + 5), ("j2", NOW + 6))
    finally:
        await store.close()


async def test_redis_reads_and_rotates_a_session_written_before_the_list(redis_url: str) -> None:
    store = RedisStore(redis_url, prefix=f"t{uuid.uuid4().hex}:")
    await store.open()
    try:
        await store.create_session(record(current_jti="j2", previous_jti="j1", rotated_at=NOW + 5))
        await store.redis.hdel(store._session_key("s1"), "superseded")  # as an older version wrote it
        got = await store.get_session("s1")
        assert got is not None and got.superseded == () and got.superseded_at("j1") == NOW + 5
        assert await store.rotate("s1", expected_jti="j2", new_jti="j3", now=NOW + 6, idle_expires_at=NOW + 9,
                                  remember_for=30)  # fmt: skip
        got = await store.get_session("s1")
        assert got is not None and got.superseded == (("j1", NOW + 5), ("j2", NOW + 6))
    finally:
        await store.close()


async def test_sqlite_refused_attempts_write_nothing_and_ended_windows_are_dropped(tmp_path: Path) -> None:
    # Issue 8 item 5: 3,000 refused logins added 3,000 rows. Refused attempts now write nothing, and counters of
    # ended windows are deleted as new ones are written: the table holds one window's accepted attempts.
    store = SqliteStore(tmp_path / "fd.db")
    await store.open()
    try:
        for i in range(3000):
            await store.attempt([("login:addr:10.0.0.1", 10), (f"login:user:name{i}", 10)], window=600, now=NOW)
        async with store.db.execute("SELECT COUNT(*), MAX(count) FROM attempts") as cur:
            assert tuple(await cur.fetchone() or ()) == (11, 10)  # the address and the ten names it got to try
        await store.attempt([("login:addr:10.0.0.2", 10)], window=600, now=NOW + 600)  # the next window
        async with store.db.execute("SELECT key FROM attempts") as cur:
            assert await cur.fetchall() == [("login:addr:10.0.0.2",)]
    finally:
        await store.close()


async def test_memory_store_drops_counters_of_ended_windows() -> None:
    store = MemoryStore()
    for i in range(100):
        await store.attempt([(f"login:addr:10.0.0.{i}", 10)], window=60, now=NOW)
    await store.attempt([("other", 10)], window=60, now=NOW)
    assert len(store._hits) == 101
    await store.attempt([("login:addr:10.0.1.1", 10)], window=60, now=NOW + 60)
    assert list(store._hits) == ["login:addr:10.0.1.1"]
    await store.attempt([("later", 10)], window=60, now=NOW + 61)
    assert await store.purge(now=NOW + 200) == 2 and store._hits == {}


async def test_sqlite_reads_never_make_a_concurrent_write_fail_as_locked(tmp_path: Path) -> None:
    # Two workers (two stores on one file), each serving reads and rotations concurrently on its one
    # connection. A read whose cursor stayed open across awaits held a snapshot on that connection, and a write
    # sent meanwhile failed at once with "database is locked" (a 503 on /auth/session or a proxied request):
    # 38 of 600 rotations here before reads were finished in one job each.
    a, b = SqliteStore(tmp_path / "fd.db"), SqliteStore(tmp_path / "fd.db")
    await a.open()
    await b.open()
    for sid in ("s0", "s1", "s2", "s3"):
        await a.create_session(record(sid))

    async def read(store: SqliteStore) -> None:
        for _ in range(300):
            await store.get_session("s0")

    async def rotate(store: SqliteStore, sid: str) -> None:
        for i in range(150):
            current = await store.get_session(sid)
            assert current is not None
            await store.rotate(sid, expected_jti=current.current_jti, new_jti=f"{sid}-{i}-{id(store)}", now=NOW,
                               idle_expires_at=NOW + 9)  # fmt: skip

    try:
        await asyncio.gather(
            read(a), read(a), read(b), read(b), rotate(a, "s1"), rotate(b, "s2"), rotate(a, "s3"), rotate(b, "s3")
        )
    finally:
        await a.close()
        await b.close()


# --- the audit trail ---------------------------------------------------------------------------------------


def audit_event(at: float, kind: str = Kind.LOGIN_OK, user: str | None = "alice", **changes: object) -> Event:
    fields: dict[str, object] = dict(session="s1", address="10.0.0.9", user_agent="curl/8", reason=None, actor=None)
    fields.update(changes)
    return Event(kind, at, user, **fields)  # type: ignore[arg-type]


async def test_audit_rows_are_kept_whole_and_read_back_oldest_first(store: Store) -> None:
    failed = audit_event(NOW, Kind.LOGIN_FAILED, session=None, reason="bad_credentials")
    ok = audit_event(NOW + 1)
    revoked = audit_event(NOW + 2, Kind.SESSION_REVOKED, "bob", reason="password changed", actor="admin")
    await store.record_audit([ok, failed])
    await store.record_audit([revoked])
    assert await store.audit() == [failed, ok, revoked]
    assert await store.audit(user="alice") == [failed, ok]
    assert await store.audit(since=NOW + 1) == [ok, revoked]
    assert await store.audit(user="bob", since=NOW + 3) == []
    # ``limit`` keeps the newest rows (what an operator asks for first), still printed oldest first.
    assert await store.audit(limit=2) == [ok, revoked]


async def test_identical_audit_events_are_all_kept(store: Store) -> None:
    # Two failed logins in the same instant from the same place are two attempts, not one.
    twice = audit_event(NOW, Kind.LOGIN_FAILED, reason="bad_credentials")
    await store.record_audit([twice, twice])
    assert await store.audit() == [twice, twice]


async def test_purge_audit_removes_only_rows_older_than_the_cut(store: Store) -> None:
    old, edge, new = audit_event(NOW - 100), audit_event(NOW), audit_event(NOW + 100, user="bob")
    await store.record_audit([old, edge, new])
    assert await store.purge_audit(before=NOW) == 1
    assert await store.audit() == [edge, new]
    assert await store.audit(user="alice") == [edge]
    # The session purge leaves the audit trail alone: its retention is its own.
    await store.purge(now=NOW + 10_000)
    assert await store.audit() == [edge, new]


async def test_an_open_store_is_ready_and_a_closed_one_is_not(store: Store) -> None:
    await store.check_ready()  # every backend answers the readiness check through the protocol
    if isinstance(store, MemoryStore):
        return  # nothing to be unreachable
    await store.close()
    with pytest.raises(StoreNotReady):
        await store.check_ready()
    await store.open()  # the fixture closes it again


async def test_sqlite_readiness_names_what_is_wrong(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db", busy_timeout=1)
    await store.open()
    try:
        await store.check_ready()
        other = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreNotReady, match="locked"):
            await store.check_ready()
        other.execute("ROLLBACK")
        other.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        with pytest.raises(StoreNotReady, match="newer than") as caught:
            await store.check_ready()
        assert str(tmp_path) not in caught.value.reason  # the reason is shown to anyone: no path
        assert str(tmp_path) in str(caught.value)  # ... the log gets it
        other.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        other.close()
        os.rename(tmp_path / "r.db", tmp_path / "moved.db")
        with pytest.raises(StoreNotReady, match="no longer exists"):
            await store.check_ready()
        assert not (tmp_path / "r.db").exists()  # the check never creates the file
    finally:
        await store.close()


async def test_redis_that_stops_answering_is_not_ready(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on: the open client's commands fail
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0")
    store._redis = Redis.from_url(store.url)  # as if it had been reachable at open and went away since
    try:
        with pytest.raises(StoreNotReady, match="Redis") as caught:
            await store.check_ready()
        assert str(port) not in caught.value.reason
    finally:
        await store.close()


async def test_redis_takes_over_the_keys_a_version_without_hash_tags_wrote(redis_url: str) -> None:
    """Sessions, revocations, the user index and the audit trail written as ``P session:SID`` (before the keys
    had hash tags) are renamed at open: an upgrade logs nobody out and loses no audit row."""
    prefix = f"t{uuid.uuid4().hex}:"
    old = RedisStore(redis_url, prefix=prefix)
    await old.open()
    try:
        await old.create_session(record("s1"))
        await old.create_session(record("s2"))
        await old.revoke_session("s2", now=NOW + 1, reason="logout")
        await old.record_audit([Event(Kind.LOGIN_OK, NOW, "alice"), Event(Kind.LOGOUT, NOW + 1, "alice")])
        client = old.redis
        # Write them back under the old names, as the version before the hash tags had them.
        renames = {
            old._session_key("s1"): f"{prefix}session:s1",
            old._session_key("s2"): f"{prefix}session:s2",
            old._revoked_key("s2"): f"{prefix}revoked:s2",
            old._user_key("u1"): f"{prefix}user:u1",
            old._audit_key(): f"{prefix}audit",
            old._audit_seq_key: f"{prefix}audit:seq",
            old._audit_key("alice"): f"{prefix}audit:user:alice",
        }
        for new_name, old_name in renames.items():
            await client.rename(new_name, old_name)
        await client.delete(f"{prefix}layout")
    finally:
        await old.close()

    upgraded = RedisStore(redis_url, prefix=prefix)
    await upgraded.open()
    try:
        assert await upgraded.get_session("s1") == record("s1")
        assert await upgraded.is_revoked("s2")
        assert [r.sid for r in await upgraded.list_sessions("u1", now=NOW + 2)] == ["s1"]
        assert await upgraded.revoke_user("u1", now=NOW + 3, reason="removed") == 1
        await upgraded.record_audit([Event(Kind.LOGIN_OK, NOW + 4, "alice")])
        assert [e.kind for e in await upgraded.audit(user="alice")] == [Kind.LOGIN_OK, Kind.LOGOUT, Kind.LOGIN_OK]
        untagged = [str(k) async for k in upgraded.redis.scan_iter(match=f"{prefix}*") if "{" not in str(k)]
        assert untagged == [f"{prefix}layout"]
    finally:
        await upgraded.close()
