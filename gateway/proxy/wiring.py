"""How the gateway builds its proxy from the loaded configuration, in two calls.

``create_app`` wraps the SPA with :func:`build_proxy`; ``gateway.config`` calls :func:`proxy_problems`
so bad ``[[routes]]`` / ``[proxy]`` entries join the one start-up error. Both read
the same raw tables, so what the check accepts is exactly what the builder builds.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.types import ASGIApp

from .app import ProxyApp
from .contracts import TokenSource, TrustPolicy
from .routes import Route, parse_routes
from .settings import ProxySettings, parse_proxy_settings

__all__ = ["ProxyConfigLike", "build_proxy", "parse_proxy_config", "proxy_problems"]


class _Tokens(Protocol):
    @property
    def audience(self) -> str: ...


class ProxyConfigLike(Protocol):
    """The slice of ``gateway.config.GatewayConfig`` the proxy reads."""

    @property
    def raw_routes(self) -> list[Any]: ...
    @property
    def raw_proxy(self) -> dict[str, Any]: ...
    @property
    def tokens(self) -> _Tokens: ...
    @property
    def trusted_proxies(self) -> TrustPolicy: ...
    @property
    def csrf_header(self) -> str: ...
    @property
    def origins(self) -> tuple[str, ...]: ...


def parse_proxy_config(config: ProxyConfigLike) -> tuple[list[Route], ProxySettings, list[str]]:
    routes, problems = parse_routes(config.raw_routes, default_audience=config.tokens.audience)
    settings, more = parse_proxy_settings(config.raw_proxy or None)
    return routes, settings, problems + more


def proxy_problems(config: ProxyConfigLike) -> list[str]:
    """For ``gateway.config.load_config``: every [[routes]] and [proxy] problem, in plain words."""
    return parse_proxy_config(config)[2]


def build_proxy(config: ProxyConfigLike, engine: TokenSource, *, fallback: ASGIApp) -> ProxyApp:
    """The proxy in front of ``fallback`` (the SPA). Call ``aclose()`` on it at shutdown."""
    routes, settings, problems = parse_proxy_config(config)
    if problems:  # load_config already refused these; reaching here means the check was not registered
        raise ValueError("; ".join(problems))
    # server.origins are the gateway's other legitimate origins: CSRF-checked routes accept them as well.
    extra = tuple(o.lower().rstrip("/") for o in config.origins)
    if extra:
        from dataclasses import replace

        settings = replace(settings, allowed_origins=tuple(dict.fromkeys(settings.allowed_origins + extra)))
    return ProxyApp(
        routes,
        engine,
        settings=settings,
        trusted=config.trusted_proxies,
        csrf_header=config.csrf_header,
        fallback=fallback,
    )
