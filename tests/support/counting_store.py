"""A Redis store that counts its session reads: what "store reads per request at steady state" measures."""

from __future__ import annotations

from frontdesk.middleware.store.base import SessionRecord
from frontdesk.middleware.store.redis import RedisStore

__all__ = ["CountingRedisStore"]


class CountingRedisStore(RedisStore):
    reads = 0

    async def get_session(self, sid: str) -> SessionRecord | None:
        self.reads += 1
        return await super().get_session(sid)
