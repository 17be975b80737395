"""SQLite backend (aiosqlite): WAL mode, a busy timeout, a versioned schema migrated on open.

Several worker processes may share one file: every write is a single statement or an IMMEDIATE
transaction, and rotation is a compare-and-swap on ``current_jti``, so a session rotates once per
rotation however many workers race for it. ``synchronous=FULL`` because a logout or a revocation that
we acknowledged must survive a crash of the machine, not just of the process; these writes are rare.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import quote

import aiosqlite

from ..errors import StoreError, StoreNotReady
from ..events import Event
from .base import READY_TIMEOUT, IdpTokenRecord, SessionRecord, after_rotation, window_bounds

__all__ = ["SqliteStore", "SCHEMA_VERSION", "connect_wal", "create_private", "probe_sqlite", "sqlite_path_from_url"]

_MIGRATIONS: tuple[str, ...] = (
    # 1: sessions, revocations, login attempts
    """
    CREATE TABLE IF NOT EXISTS sessions (
        sid TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        username TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen REAL NOT NULL,
        expires_at REAL NOT NULL,
        idle_expires_at REAL NOT NULL,
        remember INTEGER NOT NULL,
        current_jti TEXT NOT NULL,
        previous_jti TEXT,
        rotated_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
    CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires_at);
    CREATE TABLE IF NOT EXISTS revocations (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        revoked_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS revocations_expiry ON revocations(expires_at);
    CREATE TABLE IF NOT EXISTS attempts (
        key TEXT PRIMARY KEY,
        window_start REAL NOT NULL,
        window_end REAL NOT NULL,
        count INTEGER NOT NULL
    );
    """,
    # 2: the recently superseded refresh tokens of each session, as JSON [[jti, superseded_at], ...]; a session
    # that rotated before the upgrade starts with its previous token, so a request in flight keeps its grace.
    """
    ALTER TABLE sessions ADD COLUMN superseded TEXT NOT NULL DEFAULT '[]';
    UPDATE sessions SET superseded = json_array(json_array(previous_jti, rotated_at)) WHERE previous_jti IS NOT NULL;
    """,
    # 3: login counters of ended windows are deleted on each counted attempt, found by this index.
    """
    CREATE INDEX IF NOT EXISTS attempts_expiry ON attempts(window_end);
    """,
    # 4: "your devices": where each session logged in from (address, User-Agent summary); NULL for older ones.
    """
    ALTER TABLE sessions ADD COLUMN client_address TEXT;
    ALTER TABLE sessions ADD COLUMN user_agent TEXT;
    """,
    # 5: the audit trail (security events: logins, logouts, revocations, reuse, user and key changes). The rowid
    # keeps events of the same instant in the order they happened.
    """
    CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        user TEXT,
        session TEXT,
        address TEXT,
        user_agent TEXT,
        reason TEXT,
        actor TEXT
    );
    CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
    CREATE INDEX IF NOT EXISTS audit_user ON audit(user, at);
    """,
    # 6: the revocation epoch (base.CountsRevocations): one row, raised in every revocation's transaction, so
    # each worker reads one number a few times a second instead of re-reading every session it has cached.
    """
    CREATE TABLE IF NOT EXISTS revocation_epoch (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
    INSERT OR IGNORE INTO revocation_epoch (id, value) VALUES (1, 0);
    """,
    # 7: an identity provider's tokens per session (sealed: only the lookup ids are readable), the lease of the
    # one worker refreshing them, and the back-channel logout tokens already used (replay refusal).
    """
    CREATE TABLE IF NOT EXISTS idp_tokens (
        sid TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        subject TEXT NOT NULL,
        idp_sid TEXT,
        sealed TEXT NOT NULL,
        expires_at REAL NOT NULL,
        lease_holder TEXT,
        lease_until REAL
    );
    CREATE INDEX IF NOT EXISTS idp_tokens_idp_sid ON idp_tokens(provider, idp_sid);
    CREATE INDEX IF NOT EXISTS idp_tokens_subject ON idp_tokens(provider, subject);
    CREATE TABLE IF NOT EXISTS logout_tokens (
        provider TEXT NOT NULL,
        jti TEXT NOT NULL,
        until REAL NOT NULL,
        PRIMARY KEY (provider, jti)
    );
    CREATE INDEX IF NOT EXISTS logout_tokens_expiry ON logout_tokens(until);
    """,
)

_RAISE_EPOCH: tuple[str, tuple[object, ...]] = ("UPDATE revocation_epoch SET value = value + 1 WHERE id = 1", ())

SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema this version of frontdesk migrates a store to (SQLite's ``user_version``)."""

_COUNT_ATTEMPT = (
    "INSERT INTO attempts (key, window_start, window_end, count) VALUES (?, ?, ?, 1)"
    " ON CONFLICT(key) DO UPDATE SET"
    " count = CASE WHEN window_start = excluded.window_start THEN count + 1 ELSE 1 END,"
    " window_start = excluded.window_start, window_end = excluded.window_end"
)

_COLUMNS = (
    "sid, user_id, username, created_at, last_seen, expires_at, idle_expires_at, remember, "
    "current_jti, previous_jti, rotated_at, revoked_at, superseded, client_address, user_agent"
)


_AUDIT_COLUMNS = "at, kind, user, session, address, user_agent, reason, actor"


def sqlite_path_from_url(url: str) -> str:
    """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` -> a filesystem path."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"{url!r} is not a sqlite URL; write sqlite:///frontdesk.db")
    path = url[len("sqlite:///") :]
    if not path:
        raise ValueError(f"{url!r} names no file; write sqlite:///frontdesk.db")
    return path


def create_private(path: str) -> None:
    """Create ``path`` empty and 0600 (whatever the umask) unless it exists.

    SQLite would create the file with the umask's mode (0644 by default: readable by every local user), and it
    gives the ``-wal`` and ``-shm`` files the main file's mode, so creating the main file first is what keeps
    all three private. An existing file keeps the mode its owner chose.
    """
    if path == ":memory:":
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))
        os.chmod(path, 0o600)  # os.open's mode passes through the umask; make it exactly owner read/write


async def connect_wal(path: str, *, busy_timeout: float) -> aiosqlite.Connection:
    """An autocommit connection in WAL mode with a busy timeout, on a file created 0600.

    Switching a fresh file to WAL needs a moment of exclusive access and SQLite does not wait for it (the
    busy handler is not consulted), so two workers opening a new database together see "database is
    locked": retry until ``busy_timeout`` has passed instead of failing start-up.
    """
    create_private(path)
    deadline = time.monotonic() + busy_timeout
    delay = 0.01
    while True:
        db = await aiosqlite.connect(path, timeout=busy_timeout, isolation_level=None)
        try:
            await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            async with db.execute("PRAGMA journal_mode = WAL") as cur:
                row = await cur.fetchone()
            if row is not None and str(row[0]).lower() == "wal":
                return db
            error: sqlite3.Error = sqlite3.OperationalError(f"journal mode stayed {row[0] if row else None!r}")
        except sqlite3.OperationalError as exc:
            error = exc
        await db.close()
        if time.monotonic() + delay > deadline:
            raise error
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


def probe_sqlite(
    path: str, *, expected_version: int | None = SCHEMA_VERSION, timeout: float = READY_TIMEOUT
) -> int:
    """Check, through a connection of its own, that the store file at ``path`` exists, is an SQLite database
    migrated to ``expected_version`` (any, when None) and that its write lock can be had within ``timeout``
    seconds (a writer stuck holding it would stall every login and refresh); raise :class:`StoreNotReady`
    saying which is not so. Returns the schema version. Blocking: run it in a thread. Never creates the file."""
    if not os.path.exists(path):
        raise StoreNotReady("the store's database file no longer exists (removed or moved while running)", path)
    try:
        db = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        reason = "the store's database file cannot be opened for reading and writing"
        raise StoreNotReady(reason, f"{path}: {exc}") from None
    try:
        row = db.execute("PRAGMA user_version").fetchone()
        version = int(row[0]) if row else 0
        if expected_version is not None and version != expected_version:
            newer = "newer than" if version > expected_version else "older than"
            raise StoreNotReady(
                f"the store's schema is version {version}, {newer} the {expected_version} this frontdesk uses",
                path,
            )
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreNotReady(
                f"the store's database is locked by another connection (for over {timeout:g} s)", path
            ) from None
        raise StoreNotReady("the store's database cannot be read", f"{path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise StoreNotReady("the store's file is not a readable SQLite database", f"{path}: {exc}") from None
    finally:
        db.close()
    return version


class SqliteStore:
    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._db: aiosqlite.Connection | None = None
        # One connection is shared by every request of the process, and a transaction on it spans several
        # awaits: without this lock a second BEGIN fails ("cannot start a transaction within a transaction")
        # and its ROLLBACK would undo the first one, taking other requests' writes with it.
        self._write_lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, *, busy_timeout: float = 5.0) -> SqliteStore:
        return cls(sqlite_path_from_url(url), busy_timeout=busy_timeout)

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = await connect_wal(self.path, busy_timeout=self.busy_timeout)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the session store at {self.path}: {exc}") from exc
        try:
            await db.execute("PRAGMA synchronous = FULL")
            await self._migrate(db)
        except (sqlite3.Error, OSError) as exc:
            await db.close()
            raise StoreError(f"cannot migrate the session store at {self.path}: {exc}") from exc
        self._db = db

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        # IMMEDIATE takes the write lock first, so two workers starting together migrate once.
        async with _immediate(db):
            async with db.execute("PRAGMA user_version") as cur:
                row = await cur.fetchone()
            version = int(row[0]) if row else 0
            for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {number}")

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the session store is not open")
        return self._db

    async def check_ready(self) -> None:
        if self._db is None:
            raise StoreNotReady("the session store is not open")
        # A fresh connection, not the store's own: that one holds the file open, so it keeps working on a file
        # that was removed or replaced meanwhile (and a probe queued behind a slow write would not be cheap).
        await asyncio.to_thread(probe_sqlite, self.path)

    async def schema_version(self) -> int:
        row = await self._read_one("PRAGMA user_version", ())
        return int(row[0]) if row else 0

    async def _read_one(self, sql: str, params: tuple[object, ...]) -> sqlite3.Row | None:
        """The first row of a read, run and finished in one job on the connection's thread.

        A cursor left open across awaits keeps a read transaction (a snapshot) open on the shared connection;
        a write that another request sends meanwhile on the same connection must then upgrade that snapshot,
        and once another worker has committed SQLite answers "database is locked" at once, without waiting.
        """
        try:
            rows = list(await self.db.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        return rows[0] if rows else None

    async def count_live_sessions(self, *, now: float) -> int:
        row = await self._read_one(
            "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?",
            (now, now),
        )
        return int(row[0]) if row else 0

    async def create_session(self, record: SessionRecord) -> None:
        await self._write(
            f"INSERT INTO sessions ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608 (constant columns)
            (
                record.sid,
                record.user_id,
                record.username,
                record.created_at,
                record.last_seen,
                record.expires_at,
                record.idle_expires_at,
                int(record.remember),
                record.current_jti,
                record.previous_jti,
                record.rotated_at,
                record.revoked_at,
                _superseded_json(record.superseded),
                record.client_address,
                record.user_agent,
            ),
        )

    async def get_session(self, sid: str) -> SessionRecord | None:
        row = await self._read_one(f"SELECT {_COLUMNS} FROM sessions WHERE sid = ?", (sid,))  # noqa: S608 (constant columns)
        return None if row is None else _record(row)

    async def list_sessions(self, user_id: str, *, now: float) -> list[SessionRecord]:
        sql = (
            f"SELECT {_COLUMNS} FROM sessions WHERE user_id = ? AND revoked_at IS NULL"  # noqa: S608 (constant columns)
            " AND expires_at > ? AND idle_expires_at > ? ORDER BY created_at, sid"
        )
        try:
            rows = await self.db.execute_fetchall(sql, (user_id, now, now))
        except sqlite3.Error as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        return [_record(row) for row in rows]

    async def rotate(
        self,
        sid: str,
        *,
        expected_jti: str,
        new_jti: str,
        now: float,
        idle_expires_at: float,
        remember_for: float = 0.0,
    ) -> bool:
        # Read and write in one IMMEDIATE transaction: the superseded list is rebuilt from the row that the
        # compare-and-swap on current_jti guards, so no other worker's rotation can slip in between.
        async with self._writing() as db:
            rows = await db.execute_fetchall(
                "SELECT superseded FROM sessions WHERE sid = ? AND current_jti = ? AND revoked_at IS NULL",
                (sid, expected_jti),
            )
            row = next(iter(rows), None)
            if row is not None:
                superseded = after_rotation(_superseded_from_json(row[0]), expected_jti, now, remember_for)
                await db.execute(
                    "UPDATE sessions SET previous_jti = current_jti, current_jti = ?, rotated_at = ?,"
                    " last_seen = ?, idle_expires_at = ?, superseded = ? WHERE sid = ? AND current_jti = ?",
                    (new_jti, now, now, idle_expires_at, _superseded_json(superseded), sid, expected_jti),
                )
        return row is not None

    async def revoke_session(self, sid: str, *, now: float, reason: str) -> None:
        await self._transaction(
            ("UPDATE sessions SET revoked_at = ? WHERE sid = ? AND revoked_at IS NULL", (now, sid)),
            ("DELETE FROM idp_tokens WHERE sid = ?", (sid,)),
            # Kept until the session could not have been used anyway: its absolute expiry.
            (
                "INSERT INTO revocations (id, kind, reason, revoked_at, expires_at) VALUES"
                " (?, 'session', ?, ?, COALESCE((SELECT expires_at FROM sessions WHERE sid = ?), ?))"
                " ON CONFLICT(id) DO NOTHING",
                (sid, reason, now, sid, now + 86400.0),
            ),
            _RAISE_EPOCH,
        )

    async def revoke_user(self, user_id: str, *, now: float, reason: str) -> int:
        counts = await self._transaction(
            (
                "INSERT INTO revocations (id, kind, reason, revoked_at, expires_at)"
                " SELECT sid, 'session', ?, ?, expires_at FROM sessions WHERE user_id = ? AND revoked_at IS NULL"
                " ON CONFLICT(id) DO NOTHING",
                (reason, now, user_id),
            ),
            ("DELETE FROM idp_tokens WHERE sid IN (SELECT sid FROM sessions WHERE user_id = ?)", (user_id,)),
            ("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", (now, user_id)),
            _RAISE_EPOCH,
        )
        return counts[-2]

    async def revocation_epoch(self) -> int:
        row = await self._read_one("SELECT value FROM revocation_epoch WHERE id = 1", ())
        return int(row[0]) if row else 0

    async def _transaction(self, *statements: tuple[str, tuple[object, ...]]) -> list[int]:
        """Run ``statements`` atomically; return each one's row count."""
        counts: list[int] = []
        async with self._writing() as db:
            for sql, params in statements:
                async with db.execute(sql, params) as cur:
                    counts.append(cur.rowcount)
        return counts

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[aiosqlite.Connection]:
        """This process's write lock and one IMMEDIATE transaction; a driver error becomes a StoreError."""
        try:
            async with self._write_lock, _immediate(self.db) as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreError(f"session store write failed: {exc}") from exc

    async def is_revoked(self, sid: str) -> bool:
        return await self._read_one("SELECT 1 FROM revocations WHERE id = ?", (sid,)) is not None

    async def attempt(self, limits: Sequence[tuple[str, int]], *, window: float, now: float) -> str | None:
        start, end = window_bounds(now, window)
        keys = [key for key, _ in limits]
        # A refused attempt is decided by a read alone: no write lock, no write, whatever the request rate.
        refused = await self._over_limit(limits, start)
        if refused is not None:
            return refused
        async with self._writing() as db:
            # Decided again under the write lock: another worker may have counted in between.
            refused = await self._over_limit(limits, start)
            if refused is None:
                await db.execute("DELETE FROM attempts WHERE window_end <= ?", (now,))
                await db.executemany(_COUNT_ATTEMPT, [(key, start, end) for key in keys])
        return refused

    async def _over_limit(self, limits: Sequence[tuple[str, int]], start: float) -> str | None:
        marks = ",".join("?" * len(limits))
        sql = f"SELECT key, count FROM attempts WHERE window_start = ? AND key IN ({marks})"  # noqa: S608 (only ?s)
        try:
            rows = await self.db.execute_fetchall(sql, (start, *(key for key, _ in limits)))
        except sqlite3.Error as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        counts = {str(key): int(count) for key, count in rows}
        return next((key for key, limit in limits if counts.get(key, 0) >= limit), None)

    async def reset(self, key: str) -> None:
        await self._write("DELETE FROM attempts WHERE key = ?", (key,))

    async def purge(self, *, now: float) -> int:
        total = 0
        for sql in (
            "DELETE FROM sessions WHERE expires_at <= ? OR idle_expires_at <= ?",
            "DELETE FROM revocations WHERE expires_at <= ? AND ? > 0",
            "DELETE FROM attempts WHERE window_end <= ? AND ? > 0",
            # IdP tokens go with their session, whichever way it ended.
            "DELETE FROM idp_tokens WHERE expires_at <= ? OR (? > 0 AND sid NOT IN (SELECT sid FROM sessions))",
            "DELETE FROM logout_tokens WHERE until <= ? AND ? > 0",
        ):
            total += await self._write(sql, (now, now))
        return total

    async def record_audit(self, events: Sequence[Event]) -> None:
        rows = [(e.at, e.kind, e.user, e.session, e.address, e.user_agent, e.reason, e.actor) for e in events]
        async with self._writing() as db:
            await db.executemany(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", rows)  # noqa: S608 (constant columns)

    async def audit(
        self, *, user: str | None = None, since: float | None = None, limit: int | None = None
    ) -> list[Event]:
        where: list[str] = ["1"]
        params: list[object] = []
        if user is not None:
            where.append("user = ?")
            params.append(user)
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        # Newest first to apply the limit, then turned around: the trail reads oldest first.
        sql = f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE {' AND '.join(where)} ORDER BY at DESC, id DESC LIMIT ?"  # noqa: S608 (constant clauses, values are ?s)
        params.append(-1 if limit is None else limit)
        try:
            rows = await self.db.execute_fetchall(sql, tuple(params))
        except sqlite3.Error as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        return [Event(kind, at, user, session, address, agent, reason, actor)
                for at, kind, user, session, address, agent, reason, actor in reversed(list(rows))]  # fmt: skip

    async def purge_audit(self, *, before: float) -> int:
        return await self._write("DELETE FROM audit WHERE at < ?", (before,))

    # --- an identity provider's tokens ---------------------------------------------------------------

    async def save_idp_tokens(self, record: IdpTokenRecord) -> None:
        await self._write(
            "INSERT OR REPLACE INTO idp_tokens (sid, provider, subject, idp_sid, sealed, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (record.sid, record.provider, record.subject, record.idp_sid, record.sealed, record.expires_at),
        )

    async def get_idp_tokens(self, sid: str) -> IdpTokenRecord | None:
        row = await self._read_one(
            "SELECT sid, provider, subject, idp_sid, sealed, expires_at FROM idp_tokens WHERE sid = ?", (sid,)
        )
        return None if row is None else IdpTokenRecord(*row)

    async def replace_idp_tokens(self, sid: str, *, expected: str, sealed: str) -> bool:
        return await self._write(
            "UPDATE idp_tokens SET sealed = ?, lease_holder = NULL, lease_until = NULL WHERE sid = ? AND sealed = ?",
            (sealed, sid, expected),
        ) == 1

    async def lease_idp_refresh(self, sid: str, *, holder: str, now: float, until: float) -> bool:
        return await self._write(
            "UPDATE idp_tokens SET lease_holder = ?, lease_until = ?"
            " WHERE sid = ? AND (lease_until IS NULL OR lease_until <= ?)",
            (holder, until, sid, now),
        ) == 1

    async def release_idp_refresh(self, sid: str, *, holder: str) -> None:
        await self._write(
            "UPDATE idp_tokens SET lease_holder = NULL, lease_until = NULL WHERE sid = ? AND lease_holder = ?",
            (sid, holder),
        )

    async def find_idp_sessions(
        self, provider: str, *, now: float, idp_sid: str | None = None, subject: str | None = None
    ) -> list[str]:
        if idp_sid is None and subject is None:
            raise ValueError("find_idp_sessions needs an IdP session id or a subject")
        sql = (
            "SELECT t.sid FROM idp_tokens t JOIN sessions s ON s.sid = t.sid WHERE t.provider = ?"
            " AND (? IS NULL OR t.idp_sid = ?) AND (? IS NULL OR t.subject = ?)"
            " AND s.revoked_at IS NULL AND s.expires_at > ? AND s.idle_expires_at > ? ORDER BY t.sid"
        )
        try:
            rows = await self.db.execute_fetchall(sql, (provider, idp_sid, idp_sid, subject, subject, now, now))
        except sqlite3.Error as exc:
            raise StoreError(f"session store read failed: {exc}") from exc
        return [str(row[0]) for row in rows]

    async def remember_logout_token(self, provider: str, jti: str, *, now: float, until: float) -> bool:
        # An expired entry counts as unseen: replaced in the same statement.
        return await self._write(
            "INSERT INTO logout_tokens (provider, jti, until) VALUES (?, ?, ?)"
            " ON CONFLICT(provider, jti) DO UPDATE SET until = excluded.until WHERE logout_tokens.until <= ?",
            (provider, jti, until, now),
        ) == 1

    async def _write(self, sql: str, params: tuple[object, ...]) -> int:
        try:
            async with self._write_lock, self.db.execute(sql, params) as cur:
                return cur.rowcount
        except sqlite3.IntegrityError as exc:
            raise ValueError(str(exc)) from exc
        except sqlite3.Error as exc:
            raise StoreError(f"session store write failed: {exc}") from exc


def _record(row: sqlite3.Row) -> SessionRecord:
    return SessionRecord(
        sid=row[0],
        user_id=row[1],
        username=row[2],
        created_at=row[3],
        last_seen=row[4],
        expires_at=row[5],
        idle_expires_at=row[6],
        remember=bool(row[7]),
        current_jti=row[8],
        previous_jti=row[9],
        rotated_at=row[10],
        revoked_at=row[11],
        superseded=_superseded_from_json(row[12]),
        client_address=row[13],
        user_agent=row[14],
    )


def _superseded_json(superseded: tuple[tuple[str, float], ...]) -> str:
    return json.dumps([[jti, at] for jti, at in superseded])


def _superseded_from_json(text: str | None) -> tuple[tuple[str, float], ...]:
    return tuple((str(jti), float(at)) for jti, at in json.loads(text or "[]"))


@contextlib.asynccontextmanager
async def _immediate(db: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """One transaction that takes SQLite's write lock at BEGIN, so what it reads cannot change before it writes;
    committed when the block ends, rolled back when it raises (a failed COMMIT included)."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        await db.execute("COMMIT")
    except BaseException:
        # A COMMIT cancelled (or failed) after SQLite already ended the transaction leaves nothing to roll back;
        # that ROLLBACK error must not replace what ended the block (a swallowed cancellation hung shutdowns).
        with contextlib.suppress(sqlite3.Error):
            await db.execute("ROLLBACK")
        raise
