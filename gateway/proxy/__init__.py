"""The streaming reverse proxy: routes from config, strict path and header hygiene, a lean upstream client."""

from __future__ import annotations

from .app import ProxyApp
from .contracts import GrantLike, TokenSource, TrustPolicy
from .routes import Route, RouteTable, Upstream, parse_routes
from .settings import ProxySettings, parse_proxy_settings
from .wiring import build_proxy

__all__ = [
    "GrantLike",
    "ProxyApp",
    "ProxySettings",
    "Route",
    "RouteTable",
    "TokenSource",
    "TrustPolicy",
    "Upstream",
    "build_proxy",
    "parse_proxy_settings",
    "parse_routes",
]
