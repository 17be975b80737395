"""The optional ``[proxy]`` table: limits and timeouts, parsed once into a frozen object.

Every key is optional; the defaults below are what a fresh ``config.toml`` gets. Problems are returned as
plain-word strings (never raised) so the start-up error can list every configuration problem at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ..validators import count, host, origins, parse_duration, positive_int, positive_size, string, unknown_key

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


_PARSERS: dict[str, Callable[[object], Any]] = {
    "max_body_size": positive_size,
    "max_header_size": positive_size,
    "max_response_header_size": positive_size,
    "connect_timeout": parse_duration,
    "read_timeout": parse_duration,
    "keepalive_timeout": parse_duration,
    "pool_size": count,  # 0 is allowed: no idle connections kept
    "tls_ca_file": string,  # empty: the system store
    "allowed_origins": origins,  # the same rule as server.origins
    "public_host": host,
    "max_websockets_per_session": positive_int,
    "max_websocket_message_size": positive_size,
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
            problems.append(unknown_key("proxy", key, _PARSERS, table="[proxy]"))
            continue
        try:
            values[key] = parser(value)
        except ValueError as exc:
            problems.append(f"proxy.{key}: {exc}")
    return replace(settings, **values), problems
