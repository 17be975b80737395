"""The users in Redis, so every gateway machine sharing the store logs in the same users.

Key layout (``prefix`` is ``frontdesk:`` by default; both keys carry one hash tag, so each script below
touches one slot and runs unchanged on a Redis Cluster):

- ``{frontdesk:users}:rows``: hash, ASCII-lowercased username -> JSON ``{"id", "username", "created_at"}``
- ``{frontdesk:users}:hashes``: hash, ASCII-lowercased username -> the argon2id password hash

The lowercased name is the field, so ``HSETNX`` makes names unique without regard to case in one step, as
SQLite's ``COLLATE NOCASE`` does (ASCII only, like it). A gateway's own user list is small (thousands, not
millions: a large population signs in through an identity provider), so one slot holds it comfortably.
"""

from __future__ import annotations

import builtins
import json
from typing import Any, Protocol, runtime_checkable

from .users import UnknownUser, UserExists, UserRow

__all__ = ["RedisUserTable", "ScriptStore"]

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# KEYS: rows, hashes. ARGV: folded name, row JSON, hash. 0 when the name is taken.
_INSERT = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""
# KEYS: rows, hashes. ARGV: folded name, hash. 0 when there is no such user (a removed user stays removed).
_SET_HASH = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
_DELETE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""
# One read of both, so a login never pairs one user's row with a hash written for another.
_CREDENTIALS = """
return {redis.call('HGET', KEYS[1], ARGV[1]), redis.call('HGET', KEYS[2], ARGV[1])}
"""


_LIST = "return redis.call('HVALS', KEYS[1])"


@runtime_checkable
class ScriptStore(Protocol):
    """What the table needs of the Redis session store (``RedisStore``): its key prefix and its scripts, so the
    users share the store's connection settings (URL form, TLS, password) and redis-py stays out of here."""

    prefix: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def run_script(self, script: str, keys: builtins.list[str], args: builtins.list[Any]) -> Any: ...


class RedisUserTable:
    def __init__(self, store: ScriptStore) -> None:
        self.store = store
        tag = f"{{{store.prefix}users}}"
        self._keys = [f"{tag}:rows", f"{tag}:hashes"]
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    async def open(self) -> None:
        if not self._open:
            await self.store.open()
            self._open = True

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self.store.close()

    async def insert(self, row: UserRow, password_hash: str) -> None:
        data = json.dumps({"id": row.id, "username": row.username, "created_at": repr(row.created_at)})
        if not await self._run(_INSERT, [_fold(row.username), data, password_hash]):
            raise UserExists(f"user {row.username!r} already exists")

    async def set_hash(self, username: str, password_hash: str) -> None:
        if not await self._run(_SET_HASH, [_fold(username), password_hash]):
            raise UnknownUser(username)

    async def delete(self, username: str) -> None:
        if not await self._run(_DELETE, [_fold(username)]):
            raise UnknownUser(username)

    async def list(self) -> builtins.list[UserRow]:
        return sorted((_row(str(r)) for r in await self._run(_LIST, [])), key=lambda r: r.username)

    async def get(self, username: str) -> UserRow | None:
        found = await self.credentials(username)
        return found[0] if found else None

    async def credentials(self, username: str) -> tuple[UserRow, str] | None:
        row, hashed = await self._run(_CREDENTIALS, [_fold(username)])
        return (_row(str(row)), str(hashed)) if row and hashed else None

    async def _run(self, script: str, args: builtins.list[str]) -> Any:
        if not self._open:
            raise RuntimeError("user directory is not open")
        return await self.store.run_script(script, self._keys, args)


def _fold(username: str) -> str:
    return username.translate(_ASCII_LOWER)


def _row(data: str) -> UserRow:
    fields = json.loads(data)
    return UserRow(id=fields["id"], username=fields["username"], created_at=float(fields["created_at"]))
