"""Everything the metrics add to one gateway, built from the config by ``create_app`` (when metrics are on)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from frontdesk.middleware.asgi_io import ASGIApp
from frontdesk.middleware.store import Store

from ..proxy.routes import Route
from .asgi import MeteredApp
from .definitions import GatewayMetrics
from .event_sink import EventMetrics
from .proxy_meter import RouteMeter
from .sampler import Sampler
from .store import metered_store

__all__ = ["Instrumentation"]


class Instrumentation:
    """The metric definitions and the hooks that feed them: an event sink for the session engine, a meter
    for the proxy, a timed store, the request-counting ASGI layer and the state sampler."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        self.metrics = GatewayMetrics(route.prefix for route in self.routes)
        self.events = EventMetrics(self.metrics)
        self.proxy = RouteMeter(self.metrics)

    def store(self, store: Store) -> Store:
        return metered_store(store, self.metrics)

    def app(self, app: ASGIApp, *, is_auth: Callable[[str], bool], internal: Iterable[str]) -> ASGIApp:
        return MeteredApp(app, self.metrics, routes=self.routes, is_auth=is_auth, internal=internal)

    def sampler(
        self,
        cache_sizes: Callable[[], dict[str, int]],
        live_sessions: Callable[[], Awaitable[int | None]] | None = None,
    ) -> Sampler:
        return Sampler(self.metrics, cache_sizes, live_sessions)
