"""How the gateway builds its proxy from the loaded configuration.

``load_config`` has already parsed ``[[routes]]`` and ``[proxy]`` into frozen objects (and refused the
config when either had a problem); this only assembles them. It reads the configuration through
:class:`ProxyConfigLike`, not ``gateway.config``, because the config module imports the proxy's parsers.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from starlette.types import ASGIApp

from .app import ProxyApp
from .contracts import NO_METER, NO_REQUEST_ID, ProxyMeter, RequestIdSource, TokenSource, TrustPolicy
from .routes import Route
from .settings import ProxySettings

__all__ = ["ProxyConfigLike", "build_proxy"]


class ProxyConfigLike(Protocol):
    """The slice of ``gateway.config.GatewayConfig`` the proxy reads."""

    @property
    def routes(self) -> tuple[Route, ...]: ...
    @property
    def proxy(self) -> ProxySettings: ...
    @property
    def trusted_proxies(self) -> TrustPolicy: ...
    @property
    def csrf_header(self) -> str: ...
    @property
    def origins(self) -> tuple[str, ...]: ...


def build_proxy(
    config: ProxyConfigLike,
    engine: TokenSource,
    *,
    fallback: ASGIApp,
    meter: ProxyMeter = NO_METER,
    request_id: RequestIdSource = NO_REQUEST_ID,
) -> ProxyApp:
    """The proxy in front of ``fallback`` (the SPA). Call ``aclose()`` on it at shutdown."""
    settings = config.proxy
    # server.origins are the gateway's other legitimate origins: CSRF-checked routes accept them as well.
    # Both lists went through the same origin parser, so they are already in the same normal form.
    if config.origins:
        settings = replace(settings, allowed_origins=tuple(dict.fromkeys(settings.allowed_origins + config.origins)))
    return ProxyApp(
        config.routes,
        engine,
        settings=settings,
        trusted=config.trusted_proxies,
        csrf_header=config.csrf_header,
        fallback=fallback,
        meter=meter,
        request_id=request_id,
    )
