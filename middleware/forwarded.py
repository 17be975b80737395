"""Which client address to believe: ``X-Forwarded-For`` only counts when the direct peer is a trusted proxy.

The list is parsed once into network objects (uvicorn ``proxy_headers`` style); the request path only
looks addresses up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Protocol

__all__ = ["Network", "TrustPolicy", "TrustedProxies", "browser_origin", "trusted_network"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_network(item: object) -> Network:
    """One trusted proxy, an address or a CIDR network (``"10.0.0.1"``, ``"10.0.0.0/8"``); a ValueError says
    in plain words what is wrong (the gateway adds its config key, ``server.trusted_proxies``)."""
    if not isinstance(item, str):
        raise ValueError(f'{item!r} is not an address string such as "10.0.0.1"')
    try:
        return ipaddress.ip_network(item.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{item!r} is not an IP address or network (CIDR)") from None


class TrustPolicy(Protocol):
    """Whether a direct peer is a proxy whose forwarded headers may be believed."""

    def is_trusted(self, host: str | None) -> bool: ...


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` is believed: networks, or strings such as ``"10.0.0.0/8"``."""

    def __init__(self, networks: Iterable[Network | str] = ()) -> None:
        self._networks = tuple(trusted_network(n) if isinstance(n, str) else n for n in networks)

    @property
    def trusts_any(self) -> bool:
        """Whether any proxy is trusted at all (the gateway runs behind one)."""
        return bool(self._networks)

    def is_trusted(self, host: str | None) -> bool:
        if not host or not self._networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self._networks)

    def client_ip(self, peer_host: str | None, x_forwarded_for: str | None) -> str | None:
        """The real client: walk the X-Forwarded-For chain from the right while hops are trusted.

        A forged left-most entry is never believed because we stop at the first untrusted hop.
        """
        if not x_forwarded_for or not self.is_trusted(peer_host):
            return peer_host
        hops = [h.strip() for h in x_forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.is_trusted(hop):
                return hop
        return hops[0] if hops else peer_host


_HTTP_SCHEME = {"ws": "http", "wss": "https"}


def browser_origin(
    scheme: str,
    host: str,
    *,
    client: str | None,
    forwarded_proto: str | None,
    forwarded_host: str | None,
    trusted: TrustPolicy | None,
) -> str:
    """``scheme://host`` as the browser sees this server, the value its ``Origin`` header carries for a page
    we served. Behind a trusted TLS-terminating proxy that is the forwarded scheme and host; a WebSocket's
    ``ws``/``wss`` count as ``http``/``https``. The one rule for ``/auth/*``, session mode and the proxy."""
    scheme = _HTTP_SCHEME.get(scheme, scheme)
    if trusted is not None and trusted.is_trusted(client):
        scheme = _first(forwarded_proto) or scheme
        host = _first(forwarded_host) or host
    return f"{scheme}://{host}".lower()


def _first(value: str | None) -> str:
    """The first entry of a comma-separated forwarded header ("" when absent)."""
    return value.split(",")[0].strip() if value else ""
