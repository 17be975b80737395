"""A key ring filled from a JWKS URL: fetched lazily, cached, refetched on an unknown ``kid`` at most once
per ``min_refetch_interval`` (so a flood of tokens with made-up kids cannot turn into a flood of fetches).

The ring object stays the same; only its ``keys`` list is swapped, so a :class:`TokenCodec` built on it sees
new keys at once. A failed fetch keeps the keys already known.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from .clock import Clock, system_clock
from .keys import keyring_from_jwks
from .tokens import KeyRing

__all__ = ["JwksSource", "DEFAULT_MIN_REFETCH_INTERVAL"]

log = logging.getLogger("frontdesk.jwks")
MAX_JWKS_BYTES = 256 * 1024
DEFAULT_MIN_REFETCH_INTERVAL = 30.0  # seconds; the gateway's keys.publish_ahead default stays above it


class JwksSource:
    def __init__(
        self,
        url: str,
        *,
        min_refetch_interval: float = DEFAULT_MIN_REFETCH_INTERVAL,
        max_age: float = 3600.0,
        timeout: float = 5.0,
        clock: Clock = system_clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"JWKS URL {url!r} must be http(s)")
        self.url = url
        self.ring = KeyRing([])
        self.min_refetch_interval = min_refetch_interval
        self.max_age = max_age  # refetch after this long even without an unknown kid, to drop retired keys
        self.timeout = timeout
        self.clock = clock
        self._transport = transport
        self._fetched_at: float | None = None  # last attempt, successful or not
        self._loaded_at: float | None = None  # last success
        self._lock: asyncio.Lock | None = None
        self.fetches = 0

    def is_stale(self, now: float) -> bool:
        return self._loaded_at is None or now - self._loaded_at > self.max_age

    async def refresh(self, *, reason: str) -> bool:
        """Fetch again unless the last attempt is too recent; True when the key set changed or loaded."""
        if self._lock is None:
            self._lock = asyncio.Lock()  # created lazily: it belongs to the loop that serves requests
        async with self._lock:
            now = self.clock()
            if self._fetched_at is not None and now - self._fetched_at < self.min_refetch_interval:
                return False
            self._fetched_at = now
            self.fetches += 1
            try:
                document = await self._fetch()
                ring = keyring_from_jwks(document)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning(
                    "JWKS fetch from %s failed (%s): %s; keeping %d known keys",
                    self.url,
                    reason,
                    exc,
                    len(self.ring.keys),
                )
                return False
            before = {k.kid for k in self.ring.keys}
            self.ring.keys = ring.keys
            self._loaded_at = now
            return before != {k.kid for k in ring.keys}

    async def _fetch(self) -> object:
        async with httpx.AsyncClient(transport=self._transport, timeout=self.timeout, follow_redirects=False) as client:
            response = await client.get(self.url, headers={"accept": "application/json"})
            response.raise_for_status()
            if len(response.content) > MAX_JWKS_BYTES:
                raise ValueError("JWKS document too large")
            return response.json()
