"""SQLite transactions end the way their block did: a cancelled COMMIT stays a cancellation.

Found under load: the audit writer was cancelled at shutdown while its COMMIT ran on aiosqlite's thread; the
COMMIT went through, so the ROLLBACK that followed failed ("no transaction is active") and that error replaced
the cancellation. The writer logged a store error and went back to waiting on its queue, and the shutdown that
had cancelled it waited for it forever.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from frontdesk.middleware.store.sqlite import _immediate


class CommitCancelled:
    """A connection whose COMMIT is cancelled after the database already committed."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    async def execute(self, sql: str, *args: Any) -> None:
        self.statements.append(sql)
        if sql == "COMMIT":
            raise asyncio.CancelledError
        if sql == "ROLLBACK":
            raise sqlite3.OperationalError("cannot rollback - no transaction is active")


async def test_a_cancelled_commit_stays_a_cancellation_when_the_rollback_finds_nothing_to_undo() -> None:
    db = CommitCancelled()
    with pytest.raises(asyncio.CancelledError):
        async with _immediate(db):  # type: ignore[arg-type]
            pass
    assert db.statements == ["BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"]


async def test_an_error_inside_the_block_is_the_one_raised() -> None:
    db = CommitCancelled()
    with pytest.raises(KeyError):
        async with _immediate(db):  # type: ignore[arg-type]
            raise KeyError("inside")
    assert db.statements == ["BEGIN IMMEDIATE", "ROLLBACK"]
