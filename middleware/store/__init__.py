"""Session stores: the protocol and its backends."""

from __future__ import annotations

from .base import SessionRecord, Store
from .memory import MemoryStore
from .sqlite import SqliteStore, sqlite_path_from_url

__all__ = ["SessionRecord", "Store", "MemoryStore", "SqliteStore", "sqlite_path_from_url", "store_from_url"]


def store_from_url(url: str, *, busy_timeout: float = 5.0) -> Store:
    """``sqlite:///path.db`` or ``memory://``; raises ValueError with a plain-word reason otherwise."""
    if url.startswith("sqlite:"):
        return SqliteStore.from_url(url, busy_timeout=busy_timeout)
    if url == "memory://":
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisStore  # redis is an optional dependency

        return RedisStore(url)
    raise ValueError(
        f"store.url {url!r} is not supported; use sqlite:///frontdesk.db, redis://host:6379/0, or memory:// for tests"
    )
