"""Which origins count as the gateway's own for one request: its own scheme and host (the forwarded ones
behind a trusted proxy, by ``middleware.forwarded.browser_origin``, the rule ``/auth/*`` and session mode
use) plus the configured extra origins. Shared by plain requests and WebSocket upgrades.
"""

from __future__ import annotations

from starlette.types import Scope

from frontdesk.middleware.forwarded import TrustPolicy, browser_origin

from .headers import ScannedRequest

__all__ = ["OriginPolicy"]


class OriginPolicy:
    __slots__ = ("_allowed", "_trusted")

    def __init__(self, trusted: TrustPolicy, allowed: tuple[str, ...]) -> None:
        self._trusted = trusted
        self._allowed = allowed

    def own_origins(self, scope: Scope, scanned: ScannedRequest) -> frozenset[str]:
        client = scope.get("client")
        own = browser_origin(
            scope.get("scheme", "http"),
            scanned.host.decode("latin-1"),
            client=client[0] if client else None,
            forwarded_proto=scanned.xfp.decode("latin-1") if scanned.xfp else None,
            forwarded_host=scanned.xfh.decode("latin-1") if scanned.xfh else None,
            trusted=self._trusted,
        )
        return frozenset({own, *self._allowed})
