"""The optional ``[proxy]`` table: limits and timeouts, parsed once into a frozen object.

Every key is optional; the defaults below are what a fresh ``config.toml`` gets. Problems are returned as
plain-word strings (never raised) so the start-up error can list every configuration problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from middleware.durations import parse_duration, parse_size

__all__ = ["ProxySettings", "parse_proxy_settings"]


@dataclass(frozen=True, slots=True)
class ProxySettings:
    # Request bodies larger than this answer 413 (before reading them when Content-Length says so).
    max_body_size: int = 10 * 1000**2
    # Total bytes of request header names and values; more answers 431.
    max_header_size: int = 32 * 1024
    # Total bytes of an upstream's response head; more is a 502 (a sick upstream, not the browser's fault).
    max_response_header_size: int = 64 * 1024
    # Time to open a TCP (and TLS) connection to an upstream; expiry answers 504.
    connect_timeout: float = 5.0
    # Longest silence allowed while a response body streams (an SSE stream must send at least this often).
    read_timeout: float = 300.0
    # How long an idle pooled upstream connection is kept; below uvicorn's 5 s default so that we,
    # not the upstream, close it first and a request never lands on a connection being closed.
    keepalive_timeout: float = 4.0
    # Idle keep-alive connections kept per upstream (busy ones are not capped).
    pool_size: int = 64
    # CA bundle (PEM) to verify https upstreams with; empty means the system store.
    tls_ca_file: str = ""
    # Extra origins accepted on CSRF-protected routes and WebSocket upgrades, besides the request's own.
    allowed_origins: tuple[str, ...] = ()
    # The host name (and port) browsers use to reach the gateway, sent upstream as X-Forwarded-Host. Empty:
    # only a trusted proxy's X-Forwarded-Host is passed on, never the Host a client wrote.
    public_host: str = ""
    # Open WebSockets one session may hold in one worker; one more is refused with 403. Each socket can
    # buffer messages in both directions, so this with the message size bounds what one user can pin.
    max_websockets_per_session: int = 8
    # Largest WebSocket message, either direction; a larger one closes the socket with 1009 (message too
    # big). Well below the 16 MiB that uvicorn and websockets accept by default.
    max_websocket_message_size: int = 1024 * 1024


def _positive_size(value: object) -> int:
    size = parse_size(value)
    if size <= 0:
        raise ValueError(f"{value!r} must be larger than zero")
    return size


def _whole_number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a whole number >= 0")
    return value


def _at_least_one(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{value!r} is not a whole number >= 1")
    return value


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _origins(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f'{value!r} is not a list of origins such as ["https://app.example.com"]')
    out: list[str] = []
    for origin in value:
        norm = origin.strip().lower().rstrip("/")
        scheme, sep, host = norm.partition("://")
        if scheme not in ("http", "https") or not sep or not host or "/" in host:
            raise ValueError(f'{origin!r} is not an origin such as "https://app.example.com"')
        out.append(norm)
    return tuple(out)


_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?::[0-9]{1,5})?")
_IPV6_HOST = re.compile(r"\[[0-9a-f:.]+\](?::[0-9]{1,5})?")


def _host(value: object) -> str:
    """A host name or address with an optional port, as in a Host header: ``app.example.com:8443``."""
    host = value.strip().lower() if isinstance(value, str) else None
    if not host or not (_HOST.fullmatch(host) or _IPV6_HOST.fullmatch(host)):
        raise ValueError(f'{value!r} is not a host name such as "app.example.com" (no scheme, no path)')
    return host


_PARSERS: dict[str, Callable[[object], Any]] = {
    "max_body_size": _positive_size,
    "max_header_size": _positive_size,
    "max_response_header_size": _positive_size,
    "connect_timeout": parse_duration,
    "read_timeout": parse_duration,
    "keepalive_timeout": parse_duration,
    "pool_size": _whole_number,  # 0 is allowed: no idle connections kept
    "tls_ca_file": _string,
    "allowed_origins": _origins,
    "public_host": _host,
    "max_websockets_per_session": _at_least_one,
    "max_websocket_message_size": _positive_size,
}
assert set(_PARSERS) == {f.name for f in fields(ProxySettings)}  # import-time self-check


def parse_proxy_settings(raw: object) -> tuple[ProxySettings, list[str]]:
    """Parse the ``[proxy]`` table (``None`` when absent); bad keys keep their defaults and add a problem."""
    settings = ProxySettings()
    if raw is None:
        return settings, []
    if not isinstance(raw, Mapping):
        return settings, ["[proxy] must be a table of settings"]
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        parser = _PARSERS.get(key)
        if parser is None:
            known = ", ".join(sorted(_PARSERS))
            problems.append(f"proxy.{key}: unknown setting (known: {known})")
            continue
        try:
            values[key] = parser(value)
        except ValueError as exc:
            problems.append(f"proxy.{key}: {exc}")
    return replace(settings, **values), problems
