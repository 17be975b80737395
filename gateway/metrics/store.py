"""A :class:`~frontdesk.middleware.store.Store` wrapper that times every protocol call and counts its errors.

The operations are read off the ``Store`` protocol itself, so a method added to the protocol is timed without
touching this file; anything a backend offers beyond the protocol passes through untimed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from frontdesk.middleware.store import Store
from frontdesk.middleware.store.base import CountsRevocations, CountsSessions

from .definitions import GatewayMetrics

__all__ = ["STORE_OPERATIONS", "MeteredStore", "metered_store"]

STORE_OPERATIONS = tuple(
    sorted(
        name
        for protocol in (Store, CountsSessions, CountsRevocations)
        for name, value in vars(protocol).items()
        if not name.startswith("_") and callable(value)
    )
)


class MeteredStore:
    """``store`` with each protocol method replaced, once at construction, by a timed one."""

    def __init__(self, store: Store, metrics: GatewayMetrics) -> None:
        self.inner = store
        for name in STORE_OPERATIONS:
            if hasattr(store, name):  # an optional extra (CountsSessions, ...) the backend may lack
                setattr(self, name, _timed(name, getattr(store, name), metrics))

    def __getattr__(self, name: str) -> Any:
        # Only reached for what is not set above: a backend's own extras (schema_version, db, ...).
        return getattr(self.inner, name)


def _timed(name: str, call: Callable[..., Awaitable[Any]], metrics: GatewayMetrics) -> Callable[..., Awaitable[Any]]:
    latency = metrics.store_seconds.labels(name)
    errors = metrics.store_errors.labels(name)

    @functools.wraps(call)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call(*args, **kwargs)
        except Exception:  # a cancelled call (BaseException) is not the store's error
            errors.inc()
            raise
        finally:
            latency.observe(time.perf_counter() - started)

    return timed


def metered_store(store: Store, metrics: GatewayMetrics) -> Store:
    """``store``, timed; typed as the protocol it still implements (its methods are set per instance)."""
    return cast(Store, MeteredStore(store, metrics))
