"""The one rule for a response that carries a rotated refresh cookie: it must never be stored by a cache.

A shared cache that kept such a response would hand a live refresh token to the next person asking for the
URL, so whatever the app (or upstream) said about caching is replaced by ``Cache-Control: no-store`` and its
``Expires`` dropped. The gateway's proxy and both session-mode adapters apply it; WSGI headers are ``str``
pairs, ASGI and the proxy's raw ones ``bytes``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import AnyStr

__all__ = ["with_refresh_cookie"]

_CACHING = frozenset({"cache-control", "expires", b"cache-control", b"expires"})


def with_refresh_cookie(headers: Iterable[tuple[AnyStr, AnyStr]], set_cookie: AnyStr) -> list[tuple[AnyStr, AnyStr]]:
    """``headers`` without caching headers, plus ``Cache-Control: no-store`` and the ``Set-Cookie``."""
    kept = [(name, value) for name, value in headers if name.lower() not in _CACHING]
    if isinstance(set_cookie, bytes):
        kept += [(b"cache-control", b"no-store"), (b"set-cookie", set_cookie)]
    else:
        kept += [("Cache-Control", "no-store"), ("Set-Cookie", set_cookie)]
    return kept
