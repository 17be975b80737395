"""The session engine's per-cookie memo of whole verified grants (see ``SessionEngine._grant``).

A browser sends the same refresh cookie on every request until it rotates, so the engine remembers, per
(cookie value, audience), the :class:`Grant` it last handed out: a repeated request skips verifying the JWT
and checking the token's standing. An entry is only ever a shortcut to the answer the full path would give:
it keeps the session row it was decided on, and is served only while the engine's own state cache still holds
that very row (so a revocation seen by another worker ends it exactly when it ends the cached row), and only
before its deadline (the access token's refresh margin, the refresh token's expiry, the session's ends).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["GrantMemo"]

G = TypeVar("G")
R = TypeVar("R")


class GrantMemo(Generic[G, R]):
    """A bounded map (cookie value, audience) -> (grant, the session row it was decided on, deadline).

    Entries of one session can all be dropped at once (:meth:`drop`): logout, revocation, rotation, a new mint.
    Past ``max_size`` the oldest entry goes. Deadlines are compared with a ``now`` the caller passes.
    """

    __slots__ = ("_by_sid", "_entries", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[tuple[str, str], tuple[G, R, float, str]] = OrderedDict()
        self._by_sid: dict[str, set[tuple[str, str]]] = {}

    def get(self, key: tuple[str, str], now: float) -> tuple[G, R] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry[2]:
            self._remove(key, entry[3])
            return None
        return entry[0], entry[1]

    def set(self, key: tuple[str, str], sid: str, grant: G, record: R, deadline: float) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._unindex(key, old[3])
        self._entries[key] = (grant, record, deadline, sid)
        self._by_sid.setdefault(sid, set()).add(key)
        while len(self._entries) > self.max_size:
            oldest, entry = self._entries.popitem(last=False)
            self._unindex(oldest, entry[3])

    def drop(self, sid: str) -> None:
        """Forget every entry of session ``sid``."""
        for key in self._by_sid.pop(sid, ()):
            self._entries.pop(key, None)

    def _remove(self, key: tuple[str, str], sid: str) -> None:
        del self._entries[key]
        self._unindex(key, sid)

    def _unindex(self, key: tuple[str, str], sid: str) -> None:
        keys = self._by_sid.get(sid)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_sid[sid]

    def __len__(self) -> int:
        return len(self._entries)
