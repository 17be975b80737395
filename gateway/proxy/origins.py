"""Which origins count as the gateway's own for one request: its own scheme and host (the forwarded ones
behind a trusted proxy) plus the configured extra origins. Shared by plain requests and WebSocket upgrades.
"""

from __future__ import annotations

from starlette.types import Scope

from .contracts import TrustPolicy
from .headers import ScannedRequest

__all__ = ["OriginPolicy"]

_HTTP_SCHEME = {"ws": "http", "wss": "https"}


class OriginPolicy:
    __slots__ = ("_allowed", "_trusted")

    def __init__(self, trusted: TrustPolicy, allowed: tuple[str, ...]) -> None:
        self._trusted = trusted
        self._allowed = allowed

    def own_origins(self, scope: Scope, scanned: ScannedRequest) -> frozenset[str]:
        scheme = scope.get("scheme", "http")
        scheme = _HTTP_SCHEME.get(scheme, scheme)
        host = scanned.host.decode("latin-1").lower()
        client = scope.get("client")
        if client and self._trusted.is_trusted(client[0]):
            # Behind a TLS-terminating proxy the browser's origin is the forwarded one (as for /auth/*).
            scheme = _first(scanned.xfp) or scheme
            host = _first(scanned.xfh) or host
        return frozenset({f"{scheme}://{host}", *self._allowed})


def _first(value: bytes | None) -> str:
    """The first entry of a comma-separated forwarded header, lower-cased ("" when absent)."""
    return value.decode("latin-1").split(",")[0].strip().lower() if value else ""
