"""The gateway's session store and user directory, built from its config: SQLite or Redis, one place."""

from __future__ import annotations

from frontdesk.middleware.store import Store, store_from_url

from .config import GatewayConfig
from .hash_pool import HashPool
from .redis_users import RedisUserTable, ScriptStore
from .users import UserDirectory

__all__ = ["store_for", "users_for"]


def store_for(config: GatewayConfig) -> Store:
    return store_from_url(config.store_url, busy_timeout=config.store_busy_timeout, redis=config.redis)


def users_for(config: GatewayConfig, *, hash_pool: HashPool | None = None) -> UserDirectory:
    """The users beside the sessions: a SQLite file (``[users] database``, by default the store's), or the
    Redis store itself, so that every machine sharing it logs in the same users."""
    if config.users_database:
        return UserDirectory(config.users_database, hash_pool=hash_pool)
    store = store_for(config)  # the users' own connection to the Redis store, opened with the directory
    if not isinstance(store, ScriptStore):
        raise TypeError(f"users live beside the sessions only in a Redis store, not {type(store).__name__}")
    return UserDirectory(RedisUserTable(store), hash_pool=hash_pool)
