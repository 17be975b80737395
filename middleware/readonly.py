"""Read-only views of verified claims, for handing to apps.

Claims are cached and shared by every request of one token (the session engine's access-token cache, bearer
mode's verified-token cache), so an app that could write into them would change what later requests are
admitted with. Apps get a frozen deep copy instead: mappings become ``MappingProxyType``, lists tuples.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["read_only"]


def read_only(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    """A frozen deep copy of ``claims``: writing to it (or to anything inside it) raises."""
    return MappingProxyType({key: _frozen(value) for key, value in claims.items()})


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return read_only(value)
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, set | frozenset):
        return frozenset(value)
    return value
