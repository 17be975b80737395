"""How a response to an admitted request is decorated, one rule for the proxy and both session-mode adapters.

A response that carries a rotated refresh cookie must never be stored by a cache: a shared cache that kept
it would hand a live refresh token to the next person asking for the URL, so whatever the app (or upstream)
said about caching is replaced by ``Cache-Control: no-store`` and its ``Expires`` dropped. Any answer to an
authenticated request is that user's: ``Cache-Control: private`` unless the app chose its own caching, and
``Vary: Cookie`` beside any ``Vary`` of the app's (a second field means the same as one joined with ", ",
RFC 9110). WSGI headers are ``str`` pairs, ASGI and the proxy's raw ones ``bytes``; the rule is written once.
A WebSocket accept (the ``101`` answer) that carries a rotated cookie follows the same rule
(:func:`decorate_accept`, used by the proxy and the ASGI middleware alike).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, AnyStr, Generic

__all__ = ["decorate_raw", "decorate_text", "decorate_accept"]


@dataclass(frozen=True, slots=True)
class _Words(Generic[AnyStr]):
    cache_control: AnyStr  # the names written; matched lower-cased
    expires: AnyStr
    vary: AnyStr
    set_cookie: AnyStr
    no_store: AnyStr
    private: AnyStr
    cookie: AnyStr  # the Vary value added
    star: AnyStr
    match_cache_control: AnyStr
    match_expires: AnyStr
    match_vary: AnyStr
    match_cookie: AnyStr
    matched: frozenset[AnyStr]  # the three names matched


_name = itemgetter(0)
_RAW = _Words(
    b"cache-control", b"expires", b"vary", b"set-cookie", b"no-store", b"private", b"Cookie", b"*",
    b"cache-control", b"expires", b"vary", b"cookie", frozenset({b"cache-control", b"expires", b"vary"}),
)  # fmt: skip
_TEXT = _Words(
    "Cache-Control", "Expires", "Vary", "Set-Cookie", "no-store", "private", "Cookie", "*",
    "cache-control", "expires", "vary", "cookie", frozenset({"cache-control", "expires", "vary"}),
)  # fmt: skip


def _decorate(
    headers: list[tuple[AnyStr, AnyStr]],
    set_cookie: AnyStr | None,
    authenticated: bool,
    w: _Words[AnyStr],
    fold: bool,
) -> list[tuple[AnyStr, AnyStr]]:
    if set_cookie is None and not authenticated:
        return headers
    rotated = set_cookie is not None
    has_cache_control = False
    varies_by_cookie = False
    if not fold and w.matched.isdisjoint(map(_name, headers)):
        # Names known to be lower-case, none of them one of the three looked at (the proxy's common answer):
        # decided in C, every header kept, as the loop below would.
        out = list(headers)
    else:
        out = []
        for name, value in headers:
            low = name.lower() if fold else name
            if low == w.match_cache_control:
                if rotated:
                    continue
                has_cache_control = True
            elif low == w.match_expires:
                if rotated:
                    continue
            elif low == w.match_vary:
                lowered = value.lower()
                varies_by_cookie = varies_by_cookie or w.match_cookie in lowered or w.star in lowered
            out.append((name, value))
    if set_cookie is not None:
        out += [(w.cache_control, w.no_store), (w.set_cookie, set_cookie)]
    elif not has_cache_control:
        out.append((w.cache_control, w.private))
    if not varies_by_cookie:
        out.append((w.vary, w.cookie))
    return out


def decorate_raw(
    headers: list[tuple[bytes, bytes]], set_cookie: bytes | None, *, authenticated: bool, lower_case: bool = False
) -> list[tuple[bytes, bytes]]:
    """ASGI ``bytes`` headers decorated for an admitted request (unchanged when it was not authenticated).

    ``lower_case``: the names are known to be lower-case (the proxy's parser writes them so) and are matched as
    they are; an app's ASGI headers should be, but one that sends ``Cache-Control`` must not slip through.
    """
    return _decorate(headers, set_cookie, authenticated, _RAW, not lower_case)


def decorate_text(
    headers: list[tuple[str, str]], set_cookie: str | None, *, authenticated: bool
) -> list[tuple[str, str]]:
    """WSGI ``str`` headers decorated for an admitted request (unchanged when it was not authenticated)."""
    return _decorate(headers, set_cookie, authenticated, _TEXT, True)


def decorate_accept(message: MutableMapping[str, Any], set_cookie: bytes | None) -> MutableMapping[str, Any]:
    """A ``websocket.accept`` message carrying ``set_cookie`` (a refresh cookie rotated for this upgrade).

    The one place a rotated cookie joins a WebSocket handshake, for the proxy and the ASGI middleware: the
    cookie once, ``Cache-Control: no-store`` instead of whatever the app put on its accept, and ``Vary: Cookie``
    as on every decorated answer. Without a rotated cookie the accept goes as the app wrote it.
    """
    if set_cookie is None:
        return message
    headers = decorate_raw(list(message.get("headers") or ()), set_cookie, authenticated=False)
    return {**message, "headers": headers}
