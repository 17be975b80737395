"""Session stores: the protocol and the dependency-free backend; the others load when a URL asks for them.

The SQLite backend needs aiosqlite (``frontdesk[sqlite]``, included in ``frontdesk[gateway]``) and the Redis one
redis (``frontdesk[redis]``), so ``import frontdesk`` pulls in neither: import ``SqliteStore`` from
``frontdesk.middleware.store.sqlite`` and ``RedisStore`` from ``frontdesk.middleware.store.redis``.
"""

from __future__ import annotations

from .base import IdpTokenRecord, SessionRecord, Store
from .memory import MemoryStore
from .redis_urls import RedisOptions, is_redis_url

__all__ = ["IdpTokenRecord", "SessionRecord", "Store", "MemoryStore", "RedisOptions", "store_from_url"]

_EXTRAS = {"aiosqlite": "sqlite", "redis": "redis"}


def store_from_url(url: str, *, busy_timeout: float = 5.0, redis: RedisOptions | None = None) -> Store:
    """``sqlite:///path.db``, ``memory://``, or Redis in any form :mod:`.redis_urls` describes
    (``redis://host:6379/0``, ``rediss://``, ``redis+sentinel://``, ``redis+cluster://``) with ``redis`` giving
    its password and TLS files; raises ValueError with a plain-word reason otherwise, or when the backend's
    driver is not installed."""
    try:
        if url.startswith("sqlite:"):
            from .sqlite import SqliteStore  # optional dependency: aiosqlite

            return SqliteStore.from_url(url, busy_timeout=busy_timeout)
        if is_redis_url(url):
            from .redis import RedisStore  # optional dependency: redis

            return RedisStore(url, options=redis)
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        raise ValueError(
            f"store URL {url!r} needs the {exc.name} package: pip install 'frontdesk[{extra}]'"
        ) from None
    if url == "memory://":
        return MemoryStore()
    raise ValueError(
        f"store URL {url!r} is not supported; use sqlite:///frontdesk.db, redis://host:6379/0, or memory:// for tests"
    )
