"""The user directory on every backend: SQLite (one machine) and Redis (a fleet). One suite, as the store has.

Each test builds two directories on the same backing data, as two gateway machines would: what one adds,
changes or removes, the other sees at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from frontdesk.gateway.hash_pool import HashPool
from frontdesk.gateway.redis_users import RedisUserTable
from frontdesk.gateway.users import SqliteUserTable, UnknownUser, UserDirectory, UserExists, UserTable
from frontdesk.middleware.store.redis import RedisStore

# The cheapest argon2id the library accepts: these tests are about the directory, not the hash's cost.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

Machines = Callable[[], UserDirectory]


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
async def machines(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Machines]:
    """``machines()`` -> the next of two open directories sharing the same users (two gateway machines)."""
    prefix = f"t{uuid.uuid4().hex}:"  # a fresh prefix per test keeps tests apart on the one shared server
    opened: list[UserDirectory] = []
    url = "" if request.param == "sqlite" else request.getfixturevalue(request.param.replace("-", "_") + "_url")

    async def open_one() -> UserDirectory:
        table: UserTable = SqliteUserTable(str(tmp_path / "users.db"))
        if url:
            table = RedisUserTable(RedisStore(url, prefix=prefix))
        directory = UserDirectory(table, hasher=FAST, hash_pool=HashPool(2, 8))
        await directory.open()
        opened.append(directory)
        return directory

    # Two machines up front (the fixture is async; a test picks them in turn).
    pairs = iter([await open_one(), await open_one()])
    yield lambda: next(pairs)
    for directory in opened:
        await directory.close()


async def test_a_user_added_on_one_machine_logs_in_on_the_other(machines: Machines) -> None:
    one, other = machines(), machines()
    row = await one.add("alice", "alice-password")
    user = await other("alice", "alice-password")
    assert user is not None and user.id == row.id and user.username == "alice"
    assert await other("alice", "wrong-password") is None
    assert await other("nobody", "alice-password") is None
    # Usernames match without regard to (ASCII) case, as the SQLite table's NOCASE always did.
    assert (await other("ALICE", "alice-password")) == user
    got = await other.get("Alice")
    assert got is not None and got.id == row.id and got.username == "alice" and got.created_at == row.created_at


async def test_usernames_are_unique_without_regard_to_case(machines: Machines) -> None:
    one, other = machines(), machines()
    await one.add("Bob", "bob-password")
    with pytest.raises(UserExists):
        await other.add("bob", "another-password")
    assert [r.username for r in await other.list()] == ["Bob"]


async def test_two_machines_adding_one_name_at_once_make_one_user(machines: Machines) -> None:
    one, other = machines(), machines()
    results = await asyncio.gather(
        one.add("carol", "carol-password-1"), other.add("CAROL", "carol-password-2"), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["UserExists", "UserRow"]
    (winner,) = [r for r in results if not isinstance(r, BaseException)]
    password = "carol-password-1" if winner.username == "carol" else "carol-password-2"
    assert (await one("carol", password)) is not None
    assert len(await other.list()) == 1


async def test_passwd_remove_and_list(machines: Machines) -> None:
    one, other = machines(), machines()
    await one.add("dave", "dave-password-1")
    await one.add("erin", "erin-password-1")
    await one.add("Adam", "adam-password-1")
    assert [r.username for r in await other.list()] == ["Adam", "dave", "erin"]

    await other.set_password("DAVE", "dave-password-2")
    assert await one("dave", "dave-password-1") is None
    assert await one("dave", "dave-password-2") is not None

    await other.remove("Erin")
    assert await one("erin", "erin-password-1") is None
    assert await one.get("erin") is None
    with pytest.raises(UnknownUser):
        await one.remove("erin")
    with pytest.raises(UnknownUser):
        await one.set_password("erin", "erin-password-2")
    # The name is free again, for a new user with a new id.
    again = await one.add("erin", "erin-password-3")
    assert again.id != (await one.get("dave") or again).id
    assert [r.username for r in await other.list()] == ["Adam", "dave", "erin"]


async def test_an_outdated_hash_is_upgraded_at_login(machines: Machines) -> None:
    one, other = machines(), machines()
    weaker = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=16)
    old = UserDirectory(one.table, hasher=weaker, hash_pool=one.hash_pool)
    await old.add("fay", "fay-password-1")
    assert await other("fay", "fay-password-1") is not None  # rehashed with `other`'s parameters
    stored = await other.table.credentials("fay")
    assert stored is not None and not FAST.check_needs_rehash(stored[1])
    assert await one("fay", "fay-password-1") is not None
