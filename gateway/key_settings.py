"""The ``[keys]`` table: parsed once into a frozen :class:`KeySettings`, and checked against the key directory.

Kept apart from :mod:`frontdesk.gateway.keys` (the key ring, the JWKS endpoint, the reload watcher) so that the
configuration loader and ``frontdesk keys`` can read it without importing anything that runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontdesk.middleware.jwks import DEFAULT_MIN_REFETCH_INTERVAL
from frontdesk.middleware.key_directory import KeyDirectory
from frontdesk.middleware.keys import ASYMMETRIC_ALGORITHMS

from .validators import Problems, allowance, parse_duration, unknown_key

__all__ = ["ALGORITHMS", "KeySettings", "parse_key_settings", "key_directory_problems"]

ALGORITHMS = ("HS256", *ASYMMETRIC_ALGORITHMS)
_KNOWN = ("algorithm", "directory", "overlap", "reload_interval", "publish_ahead")


@dataclass(frozen=True, slots=True)
class KeySettings:
    algorithm: str = "HS256"
    directory: Path = Path("keys")
    overlap: float = 86400.0  # how long a replaced key still verifies (and stays in the JWKS)
    reload_interval: float = 10.0
    # A new key is published this long before it signs: above the middleware's default JWKS refetch interval
    # (30 s) plus reload_interval, so a verifier that fetched just before the rotation can learn it in time.
    publish_ahead: float = 60.0

    @property
    def asymmetric(self) -> bool:
        return self.algorithm in ASYMMETRIC_ALGORITHMS

    def key_directory(self) -> KeyDirectory:
        return KeyDirectory(self.directory, overlap=self.overlap, publish_ahead=self.publish_ahead)


def parse_key_settings(raw: Mapping[str, Any], base: Path) -> tuple[KeySettings, list[str]]:
    """Settings from a raw ``[keys]`` table plus every problem found, in plain words (no file access).

    A relative ``directory`` is taken relative to ``base`` (the config file's folder)."""
    p = Problems()
    for key in raw:
        if key not in _KNOWN:
            p.add(unknown_key("keys", key, _KNOWN, table="[keys]"))
    d = KeySettings()
    algorithm = raw.get("algorithm", d.algorithm)
    if algorithm not in ALGORITHMS:
        p.add(f"keys.algorithm {algorithm!r} must be one of {', '.join(ALGORITHMS)}")
        algorithm = d.algorithm
    directory = raw.get("directory", str(d.directory))
    if not isinstance(directory, str) or not directory.strip():
        p.add(f"keys.directory {directory!r} must be a non-empty string")
        directory = str(d.directory)
    settings = KeySettings(
        algorithm=algorithm,
        directory=Path(directory) if Path(directory).is_absolute() else base / directory,
        overlap=p.get(raw, "keys", "overlap", d.overlap, parse_duration),
        reload_interval=p.get(raw, "keys", "reload_interval", d.reload_interval, parse_duration),
        publish_ahead=p.get(raw, "keys", "publish_ahead", d.publish_ahead, allowance),
    )
    if 0 < settings.publish_ahead <= settings.reload_interval:
        p.add(
            f"keys.publish_ahead ({settings.publish_ahead:g}s) must be longer than keys.reload_interval"
            f" ({settings.reload_interval:g}s): a running gateway publishes a new key only when it reloads, and"
            f" verifiers need time to refetch the JWKS after that (the middleware's default is"
            f" {DEFAULT_MIN_REFETCH_INTERVAL:g}s); 0s signs at once"
        )
    return settings, p.items


def key_directory_problems(settings: KeySettings, *, longest_token: float) -> list[str]:
    """For asymmetric keys: the overlap covers every token a key signed (``longest_token``: the access-token
    lifetime plus leeway), and the directory holds a newest key of the configured algorithm."""
    if not settings.asymmetric:
        return []
    problems: list[str] = []
    if settings.overlap < longest_token:
        problems.append(
            f"keys.overlap ({settings.overlap:g}s) must be at least tokens.access_ttl plus leeway"
            f" ({longest_token:g}s): a replaced key must verify every token it signed"
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
