"""Everything the metrics add to one gateway, built from the config by ``create_app`` (when metrics are on)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from frontdesk.middleware.sessions import SessionEngine
from frontdesk.middleware.store import Store
from frontdesk.middleware.store.base import CountsSessions

from ..proxy.routes import Route
from .definitions import GatewayMetrics
from .event_sink import EventMetrics
from .proxy_meter import RouteMeter
from .requests import RequestMeter
from .sampler import Sampler
from .store import metered_store

__all__ = ["Instrumentation"]


class Instrumentation:
    """The metric definitions and the hooks that feed them: an event sink for the session engine, a meter
    for the proxy, a timed store, the request meter (for the gateway's edge layer) and the state sampler."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        self.metrics = GatewayMetrics(route.prefix for route in self.routes)
        self.events = EventMetrics(self.metrics)
        self.proxy = RouteMeter(self.metrics)

    def store(self, store: Store) -> Store:
        return metered_store(store, self.metrics)

    def requests(self, *, is_auth: Callable[[str], bool], internal: Iterable[str]) -> RequestMeter:
        return RequestMeter(self.metrics, routes=self.routes, is_auth=is_auth, internal=internal)

    def sampler(self, engine: SessionEngine) -> Sampler:
        """Samples ``engine``'s caches, and its store's live sessions when the store can count them."""
        store = engine.store

        async def live_sessions() -> int | None:
            if not isinstance(store, CountsSessions):  # a store of the library user's own making
                return None
            return await store.count_live_sessions(now=engine.clock())

        return Sampler(self.metrics, engine.cache_sizes, live_sessions)
