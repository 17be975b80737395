"""Upstream latency and errors, by route prefix: the proxy's :class:`~frontdesk.gateway.proxy.contracts.ProxyMeter`."""

from __future__ import annotations

import time
from typing import Any

from frontdesk.middleware.errors import FrontdeskError

from ..proxy.routes import Route
from .definitions import GatewayMetrics, upstream_error_kind

__all__ = ["RouteMeter"]


class RouteMeter:
    """Each route's histogram child looked up once, so the hot path is one dict lookup and one observe."""

    __slots__ = ("_errors", "_latency", "_metrics")

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics
        self._latency: dict[str, Any] = {prefix: metrics.upstream_seconds.labels(prefix) for prefix in metrics.routes}
        self._errors: dict[tuple[str, str], Any] = {}

    def answered(self, route: Route, started: float) -> None:
        child = self._latency.get(route.prefix)
        if child is not None:  # a route the metrics were not built with (never, in the gateway) is not counted
            child.observe(time.perf_counter() - started)

    def failed(self, route: Route, error: FrontdeskError) -> None:
        kind = upstream_error_kind(error)
        if kind is None or route.prefix not in self._latency:
            return
        key = (route.prefix, kind)
        child = self._errors.get(key)
        if child is None:
            child = self._errors[key] = self._metrics.upstream_errors.labels(route.prefix, kind)
        child.inc()
