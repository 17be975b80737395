"""Access-token keys at run time: the ring built from the ``[keys]`` settings, and the JWKS document.

``algorithm = "HS256"`` (the default) signs with ``FRONTDESK_ACCESS_SECRET``; ``"EdDSA"``, ``"ES256"`` or
``"RS256"`` sign with the newest PEM key in ``directory`` and publish the public keys at
``/.well-known/jwks.json``, so upstreams verify without holding any secret. ``frontdesk keys rotate`` adds
a key; a running gateway publishes it within ``reload_interval`` and signs with it from ``publish_ahead``
after the rotation, so verifiers have had time to refetch the JWKS. The JWKS document is built from the keys
in memory and cached; requests never read the directory nor wait for a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from frontdesk.middleware.clock import Clock, system_clock
from frontdesk.middleware.http import HttpResponse, json_response
from frontdesk.middleware.key_directory import DirectoryKeyRing
from frontdesk.middleware.keys import jwks_document
from frontdesk.middleware.tokens import KeyRing

from .key_settings import KeySettings

__all__ = ["JWKS_PATH", "Hook", "access_keyring", "JwksEndpoint", "watch_keys"]

log = logging.getLogger("frontdesk.keys")
JWKS_PATH = "/.well-known/jwks.json"
Hook = Callable[[], Awaitable[None]]


def access_keyring(
    settings: KeySettings, secret: str, previous: tuple[str, ...] = (), *, clock: Clock = system_clock
) -> KeyRing:
    """The ring that signs access tokens: the shared secret (and previous ones), or the key directory."""
    if not settings.asymmetric:
        return KeyRing.from_secrets(secret, previous)
    return DirectoryKeyRing.load(settings.key_directory(), clock=clock)


class JwksEndpoint:
    """``/.well-known/jwks.json``: the document is built once per published key set, from the ring in memory.

    The key watcher (:func:`watch_keys`) reloads the ring when the directory changes; each request compares the
    kids of the keys still in their window with the published ones (a tuple of short strings), so a reload or a
    key reaching the end of its overlap rebuilds the document, and nothing else does. No file access, no
    thread: the JWKS answers at once even while every thread is busy hashing passwords.
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._published: tuple[str, ...] | None = None
        self._document: dict[str, Any] = {"keys": []}

    def response(self, now: float) -> HttpResponse:
        published = tuple(k.kid for k in self.ring.active(now))  # a kid is its public key's thumbprint
        if published != self._published:
            self._document = jwks_document(self.ring, now)
            self._published = published
        # Short caching: upstreams refetch on an unknown kid anyway; retired keys should disappear soon.
        return json_response(200, self._document, [("cache-control", "public, max-age=60")])


def watch_keys(ring: KeyRing, interval: float) -> tuple[Hook, Hook]:
    """Start and stop hooks that reload the key directory every ``interval`` seconds while the gateway runs
    (both do nothing for a shared-secret ring). The caller decides where they run: the gateway's lifespan."""
    tasks: list[asyncio.Task[None]] = []

    async def reload_forever(directory_ring: DirectoryKeyRing) -> None:
        while True:
            await asyncio.sleep(interval)
            if await asyncio.to_thread(directory_ring.reload):
                published = ", ".join(k.kid for k in directory_ring.keys)
                signing = directory_ring.signing_key().kid
                log.info("access-token keys reloaded; publishing %s; signing with %s", published, signing)

    async def start() -> None:
        if isinstance(ring, DirectoryKeyRing):
            tasks.append(asyncio.create_task(reload_forever(ring), name="frontdesk-keys"))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()

    return start, stop
