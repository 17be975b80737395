"""Read-only views of verified claims, for handing to apps.

Claims are cached and shared by every request of one token (the session engine's access-token cache, bearer
mode's verified-token cache), so an app that could write into them would change what later requests are
admitted with. Apps get a frozen deep copy instead: a :class:`ReadOnlyDict` (still a ``dict``, so
``json.dumps``, ``JSONResponse`` and ``jsonify`` take it as they are), with lists turned into tuples.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, NoReturn

__all__ = ["ReadOnlyDict", "read_only"]


class ReadOnlyDict(dict[str, Any]):
    """A ``dict`` whose every mutator raises ``TypeError``. Copies (``dict(d)``, ``copy``, pickling) are plain,
    mutable dicts: an app that wants to change claims changes its own copy."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("claims are read-only; copy them with dict(claims) to change a copy")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        return dict, (dict(self),)


def read_only(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    """A frozen deep copy of ``claims``: writing to it (or to anything inside it) raises."""
    return ReadOnlyDict({key: _frozen(value) for key, value in claims.items()})


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return read_only(value)
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, set | frozenset):
        return frozenset(value)
    return value
