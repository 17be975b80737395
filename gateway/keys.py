"""The gateway's access-token keys: the ``[keys]`` table, the key ring built from it, and the JWKS document.

``algorithm = "HS256"`` (the default) signs with ``FRONTDESK_ACCESS_SECRET``; ``"EdDSA"``, ``"ES256"`` or
``"RS256"`` sign with the newest PEM key in ``directory`` and publish the public keys at
``/.well-known/jwks.json``, so upstreams verify without holding any secret. ``frontdesk keys rotate`` adds
a key; a running gateway picks it up within ``reload_interval`` (and at once when the JWKS is requested).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from middleware.clock import Clock, system_clock
from middleware.durations import parse_duration
from middleware.errors import ConfigError
from middleware.http import HttpResponse, json_response
from middleware.key_directory import DirectoryKeyRing, KeyDirectory
from middleware.keys import ASYMMETRIC_ALGORITHMS, jwks_document
from middleware.tokens import KeyRing

from .config import GatewayConfig

if TYPE_CHECKING:
    from .app import Gateway

__all__ = [
    "JWKS_PATH",
    "KeySettings",
    "parse_key_settings",
    "key_settings",
    "check_keys",
    "access_keyring",
    "jwks_response",
    "watch_keys",
]

log = logging.getLogger("frontdesk.keys")
JWKS_PATH = "/.well-known/jwks.json"
ALGORITHMS = ("HS256", *ASYMMETRIC_ALGORITHMS)
_KNOWN = {"algorithm", "directory", "overlap", "reload_interval"}


@dataclass(frozen=True, slots=True)
class KeySettings:
    algorithm: str = "HS256"
    directory: Path = Path("keys")
    overlap: float = 86400.0  # how long a replaced key still verifies (and stays in the JWKS)
    reload_interval: float = 10.0

    @property
    def asymmetric(self) -> bool:
        return self.algorithm in ASYMMETRIC_ALGORITHMS

    def key_directory(self) -> KeyDirectory:
        return KeyDirectory(self.directory, overlap=self.overlap)


def parse_key_settings(raw: Mapping[str, Any], base: Path) -> tuple[KeySettings, list[str]]:
    """Settings from a raw ``[keys]`` table plus every problem found, in plain words (no file access)."""
    problems = [
        f"unknown key keys.{k}; known keys in [keys]: {', '.join(sorted(_KNOWN))}" for k in raw if k not in _KNOWN
    ]
    d = KeySettings()
    algorithm = raw.get("algorithm", d.algorithm)
    if algorithm not in ALGORITHMS:
        problems.append(f"keys.algorithm {algorithm!r} must be one of {', '.join(ALGORITHMS)}")
        algorithm = d.algorithm
    directory = raw.get("directory", str(d.directory))
    if not isinstance(directory, str) or not directory.strip():
        problems.append(f"keys.directory {directory!r} must be a non-empty string")
        directory = str(d.directory)

    def duration(name: str, default: float) -> float:
        if name not in raw:
            return default
        try:
            return parse_duration(raw[name])
        except ValueError as exc:
            problems.append(f"keys.{name}: {exc}")
            return default

    settings = KeySettings(
        algorithm=algorithm,
        directory=Path(directory) if Path(directory).is_absolute() else base / directory,
        overlap=duration("overlap", d.overlap),
        reload_interval=duration("reload_interval", d.reload_interval),
    )
    return settings, problems


def _base(config: GatewayConfig) -> Path:
    return config.source.resolve().parent if config.source is not None else Path.cwd()


def key_settings(config: GatewayConfig) -> KeySettings:
    settings, problems = parse_key_settings(config.raw_keys, _base(config))
    if problems:
        raise ConfigError(problems)
    return settings


def check_keys(config: GatewayConfig) -> list[str]:
    settings, problems = parse_key_settings(config.raw_keys, _base(config))
    if problems or not settings.asymmetric:
        return problems
    needed = config.sessions.access_ttl + config.tokens.leeway
    if settings.overlap < needed:
        problems.append(
            f"keys.overlap ({settings.overlap:g}s) must be at least tokens.access_ttl plus leeway ({needed:g}s):"
            " a replaced key must verify every token it signed"
        )
    try:
        files = settings.key_directory().files()
    except ValueError as exc:
        return [*problems, f"keys.directory: {exc}"]
    if not files:
        problems.append(
            f"keys.directory {settings.directory} holds no key for keys.algorithm = {settings.algorithm!r};"
            " create the first one with: frontdesk keys rotate"
        )
    elif files[0].algorithm != settings.algorithm:
        problems.append(
            f"the newest key in {settings.directory} is {files[0].algorithm}, but keys.algorithm is"
            f" {settings.algorithm!r}; run frontdesk keys rotate to add a {settings.algorithm} key"
        )
    return problems



def access_keyring(config: GatewayConfig, *, clock: Clock = system_clock) -> KeyRing:
    """The ring that signs access tokens: the shared secret(s), or the key directory (reloadable)."""
    settings = key_settings(config)
    if not settings.asymmetric:
        return KeyRing.from_secrets(config.tokens.access_secret, config.tokens.access_previous)
    return DirectoryKeyRing.load(settings.key_directory(), clock=clock)


async def jwks_response(ring: KeyRing, now: float) -> HttpResponse:
    if isinstance(ring, DirectoryKeyRing):
        # A fresh rotation is published at once; the directory is read in a thread, never on the event loop
        # (reload swaps the key list in one assignment, so readers on the loop see the old or the new ring).
        await asyncio.to_thread(ring.reload)
    # Short caching: upstreams refetch on an unknown kid anyway; retired keys should disappear soon.
    return json_response(200, jwks_document(ring, now), [("cache-control", "public, max-age=60")])


def watch_keys(gateway: Gateway) -> None:
    """Reload the key directory every ``reload_interval`` while the gateway runs (no-op for HS256)."""
    ring = gateway.engine.access_codec.keyring
    if not isinstance(ring, DirectoryKeyRing):
        return
    interval = key_settings(gateway.config).reload_interval
    tasks: list[asyncio.Task[None]] = []

    async def reload_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            if await asyncio.to_thread(ring.reload):
                log.info("access-token keys reloaded; signing with %s", ring.signing_key().kid)

    async def start() -> None:
        tasks.append(asyncio.create_task(reload_forever(), name="frontdesk-keys"))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()

    gateway.on_startup.append(start)
    gateway.on_shutdown.append(stop)
