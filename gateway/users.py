"""The gateway's own users: argon2id password hashes in a :class:`UserTable` (SQLite, or Redis for a fleet).

:class:`UserDirectory` does the hashing and is the gateway's authenticator; where the rows live is a
:class:`UserTable`: :class:`SqliteUserTable` here (one machine, its workers sharing the file) or
``frontdesk.gateway.redis_users.RedisUserTable`` (several machines sharing one Redis). Usernames are unique
without regard to ASCII case on both, as SQLite's ``COLLATE NOCASE`` has always made them.

Hashing is CPU- and memory-heavy on purpose, so it runs on a bounded :class:`HashPool`, never on the event
loop nor on Python's default thread pool (which queues without limit). An unknown username is checked
against a dummy hash on the same pool, so it costs the same time as a wrong password and a login cannot be
used to find out which usernames exist.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosqlite
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from frontdesk.middleware.errors import Overloaded
from frontdesk.middleware.sessions import User
from frontdesk.middleware.store.sqlite import connect_wal

from .hash_pool import HashPool

__all__ = [
    "SqliteUserTable",
    "UnknownUser",
    "UserDirectory",
    "UserExists",
    "UserRow",
    "UserTable",
    "validate_username",
]

log = logging.getLogger("frontdesk.users")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


class UserExists(ValueError):
    pass


class UnknownUser(KeyError):
    pass


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    username: str
    created_at: float


def validate_username(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() or not c.isprintable() for c in name):
        raise ValueError("a username is 1 to 64 printable characters without spaces")
    return name


class UserTable(Protocol):
    """Where the users live. Names are matched without regard to ASCII case; every write is atomic."""

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def insert(self, row: UserRow, password_hash: str) -> None:
        """Add the user; :class:`UserExists` when the name is taken (in any case)."""

    async def set_hash(self, username: str, password_hash: str) -> None:
        """Replace the user's hash; :class:`UnknownUser` when there is no such user."""

    async def delete(self, username: str) -> None:
        """:class:`UnknownUser` when there is no such user."""

    async def list(self) -> list[UserRow]:
        """Every user, by username (case-sensitive order, as SQLite's ``ORDER BY`` gives)."""

    async def get(self, username: str) -> UserRow | None: ...

    async def credentials(self, username: str) -> tuple[UserRow, str] | None:
        """The user and their stored password hash."""


class SqliteUserTable:
    """The users table in a SQLite file (by default the session store's own file)."""

    def __init__(self, path: str) -> None:
        self.path = path or ":memory:"
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        if self._db is not None:
            return
        if self.path == ":memory:":
            db = await aiosqlite.connect(self.path, isolation_level=None)
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = await connect_wal(self.path, busy_timeout=5.0)  # workers may open a fresh file together
        await db.execute(_SCHEMA)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("user directory is not open")
        return self._db

    async def insert(self, row: UserRow, password_hash: str) -> None:
        try:
            await self.db.execute(
                "INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (row.id, row.username, password_hash, row.created_at),
            )
        except sqlite3.IntegrityError as exc:
            raise UserExists(f"user {row.username!r} already exists") from exc

    async def set_hash(self, username: str, password_hash: str) -> None:
        sql = "UPDATE users SET password_hash = ? WHERE username = ?"
        async with self.db.execute(sql, (password_hash, username)) as cur:
            if cur.rowcount == 0:
                raise UnknownUser(username)

    async def delete(self, username: str) -> None:
        async with self.db.execute("DELETE FROM users WHERE username = ?", (username,)) as cur:
            if cur.rowcount == 0:
                raise UnknownUser(username)

    async def list(self) -> list[UserRow]:
        async with self.db.execute("SELECT id, username, created_at FROM users ORDER BY username") as cur:
            rows = await cur.fetchall()
        return [UserRow(id=r[0], username=r[1], created_at=r[2]) for r in rows]

    async def get(self, username: str) -> UserRow | None:
        found = await self.credentials(username)
        return found[0] if found else None

    async def credentials(self, username: str) -> tuple[UserRow, str] | None:
        sql = "SELECT id, username, created_at, password_hash FROM users WHERE username = ?"
        async with self.db.execute(sql, (username,)) as cur:
            r = await cur.fetchone()
        return (UserRow(id=r[0], username=r[1], created_at=r[2]), r[3]) if r else None


class UserDirectory:
    """The users and their password hashes; also the gateway's default authenticator (``await dir(u, p)``).

    ``table`` is where they live; a path means a SQLite file (as before there were several kinds)."""

    def __init__(
        self, table: UserTable | str, *, hasher: PasswordHasher | None = None, hash_pool: HashPool | None = None
    ) -> None:
        self.table: UserTable = SqliteUserTable(table) if isinstance(table, str) else table
        self.hasher = hasher or PasswordHasher()  # argon2id, 64 MiB, t=3: the library's RFC 9106 defaults
        self.hash_pool = hash_pool or HashPool()
        self._dummy_hash: str | None = None

    async def open(self) -> None:
        if self.table.is_open:
            return
        await self.table.open()
        self._dummy_hash = await self.hash_pool.run(self.hasher.hash, secrets.token_urlsafe(16))

    async def close(self) -> None:
        await self.table.close()
        self.hash_pool.close()

    @property
    def is_open(self) -> bool:
        return self.table.is_open

    async def add(self, username: str, password: str) -> UserRow:
        username = validate_username(username)
        if len(password) < 8:
            raise ValueError("a password needs at least 8 characters")
        hashed = await self.hash_pool.run(self.hasher.hash, password)
        row = UserRow(id=secrets.token_hex(8), username=username, created_at=time.time())
        await self.table.insert(row, hashed)
        return row

    async def set_password(self, username: str, password: str) -> None:
        if len(password) < 8:
            raise ValueError("a password needs at least 8 characters")
        hashed = await self.hash_pool.run(self.hasher.hash, password)
        await self.table.set_hash(username, hashed)

    async def remove(self, username: str) -> None:
        await self.table.delete(username)

    async def list(self) -> list[UserRow]:
        return await self.table.list()

    async def get(self, username: str) -> UserRow | None:
        return await self.table.get(username)

    async def __call__(self, username: str, password: str) -> User | None:
        """The authenticator: the user when the password matches, else None, in similar time.

        Raises :class:`Overloaded` (503) at once when the hash pool is full, for known and unknown users alike.
        """
        found = await self.table.credentials(username)
        stored = found[1] if found else self._dummy_hash
        ok = await self.hash_pool.run(self._verify, stored or "", password)
        if found is None or not ok:
            return None
        row, hashed = found
        if self.hasher.check_needs_rehash(hashed):
            try:
                await self.set_password(row.username, password)
            except Overloaded:  # the login itself succeeded; upgrade the stored hash at a quieter moment
                log.info("password hash of %s not upgraded: the hash pool is full", row.username)
            except UnknownUser:  # removed meanwhile (on another machine, say): no session for a removed user
                return None
        return User(id=row.id, username=row.username)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
