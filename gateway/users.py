"""The gateway's own users: a SQLite table with argon2id password hashes.

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

import aiosqlite
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from frontdesk.middleware.errors import Overloaded
from frontdesk.middleware.sessions import User
from frontdesk.middleware.store.sqlite import connect_wal

from .hash_pool import HashPool

__all__ = ["UserDirectory", "UserRow", "UserExists", "UnknownUser", "validate_username"]

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


class UserDirectory:
    """Async access to the users table; also the gateway's default authenticator (``await dir(u, p)``)."""

    def __init__(self, path: str, *, hasher: PasswordHasher | None = None, hash_pool: HashPool | None = None) -> None:
        self.path = path or ":memory:"
        self.hasher = hasher or PasswordHasher()  # argon2id, 64 MiB, t=3: the library's RFC 9106 defaults
        self.hash_pool = hash_pool or HashPool()
        self._db: aiosqlite.Connection | None = None
        self._dummy_hash: str | None = None

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
        self._dummy_hash = await self.hash_pool.run(self.hasher.hash, secrets.token_urlsafe(16))

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()
        self.hash_pool.close()

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("user directory is not open")
        return self._db

    async def add(self, username: str, password: str) -> UserRow:
        username = validate_username(username)
        if len(password) < 8:
            raise ValueError("a password needs at least 8 characters")
        hashed = await self.hash_pool.run(self.hasher.hash, password)
        row = UserRow(id=secrets.token_hex(8), username=username, created_at=time.time())
        try:
            await self.db.execute(
                "INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (row.id, row.username, hashed, row.created_at),
            )
        except sqlite3.IntegrityError as exc:
            raise UserExists(f"user {username!r} already exists") from exc
        return row

    async def set_password(self, username: str, password: str) -> None:
        if len(password) < 8:
            raise ValueError("a password needs at least 8 characters")
        hashed = await self.hash_pool.run(self.hasher.hash, password)
        async with self.db.execute("UPDATE users SET password_hash = ? WHERE username = ?", (hashed, username)) as cur:
            if cur.rowcount == 0:
                raise UnknownUser(username)

    async def remove(self, username: str) -> None:
        async with self.db.execute("DELETE FROM users WHERE username = ?", (username,)) as cur:
            if cur.rowcount == 0:
                raise UnknownUser(username)

    async def list(self) -> list[UserRow]:
        async with self.db.execute("SELECT id, username, created_at FROM users ORDER BY username") as cur:
            rows = await cur.fetchall()
        return [UserRow(id=r[0], username=r[1], created_at=r[2]) for r in rows]

    async def get(self, username: str) -> UserRow | None:
        async with self.db.execute("SELECT id, username, created_at FROM users WHERE username = ?", (username,)) as cur:
            r = await cur.fetchone()
        return UserRow(id=r[0], username=r[1], created_at=r[2]) if r else None

    async def __call__(self, username: str, password: str) -> User | None:
        """The authenticator: the user when the password matches, else None, in similar time.

        Raises :class:`Overloaded` (503) at once when the hash pool is full, for known and unknown users alike.
        """
        async with self.db.execute(
            "SELECT id, username, password_hash FROM users WHERE username = ?", (username,)
        ) as cur:
            row = await cur.fetchone()
        stored = row[2] if row else self._dummy_hash
        ok = await self.hash_pool.run(self._verify, stored or "", password)
        if row is None or not ok:
            return None
        if self.hasher.check_needs_rehash(row[2]):
            try:
                await self.set_password(row[1], password)
            except Overloaded:  # the login itself succeeded; upgrade the stored hash at a quieter moment
                log.info("password hash of %s not upgraded: the hash pool is full", row[1])
        return User(id=row[0], username=row[1])

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
