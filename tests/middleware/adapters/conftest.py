"""Fixtures for the adapter tests; the apps, keys and servers live in ``mw_world`` (importable by name)."""

from mw_world import adapter, adapters, keys, store

__all__ = ["adapter", "adapters", "keys", "store"]
