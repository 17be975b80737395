"""The store backends every shared suite runs against (a new backend adds one param here)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from frontdesk.middleware.store import MemoryStore, Store
from frontdesk.middleware.store.redis import RedisStore
from frontdesk.middleware.store.sqlite import SqliteStore


@pytest.fixture(params=["memory", "sqlite", "redis", "redis-cluster"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store
    if request.param == "memory":
        backend = MemoryStore()
    elif request.param == "sqlite":
        backend = SqliteStore(tmp_path / "store.db")
    else:
        # A fresh key prefix per test keeps tests apart on the one shared server (or cluster).
        url = request.getfixturevalue(request.param.replace("-", "_") + "_url")
        backend = RedisStore(url, prefix=f"t{uuid.uuid4().hex}:")
    await backend.open()
    yield backend
    await backend.close()
