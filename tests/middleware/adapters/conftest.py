"""Fixtures for the adapter tests; the apps, keys and servers live in ``mw_world`` (importable by name)."""

from mw_world import adapter, adapters, asgi_adapter, bearer_adapter, keys, session_adapter, store

__all__ = ["adapter", "adapters", "asgi_adapter", "bearer_adapter", "keys", "session_adapter", "store"]
