"""Path safety: which route a raw request path belongs to, and the exact upstream target it becomes.

Routing works on the *raw* path (``scope["raw_path"]``), never on the decoded one, and a path on a proxied
route is refused when it holds anything an upstream could resolve differently from us: dot segments (also
Tomcat's ``..;``), percent-encoded ``/`` ``\\`` ``.`` or control bytes (also encoded twice, ``%252f``, for
upstreams that decode twice), raw backslashes, empty segments, control or non-ASCII bytes. A path that
misses every route only because of such tricks (``/api%2fx``, ``//api/x``, ``/x/../api/y``) is refused too
instead of falling through. What passes is forwarded byte for byte after the prefix, so it provably stays
under the route's upstream path.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

from .errors import BadPath
from .routes import Route, RouteTable

__all__ = ["is_unsafe", "resolve_route", "upstream_target"]

# Every alternative starts with a byte from a small set, so the regular expression engine skips ahead to those
# bytes instead of trying each alternative at every position of the path (about a third of the cost on a short
# path, less still on a long one); the one that could start at the path's beginning is _LEADING_DOT.
_UNSAFE = re.compile(
    rb"[\x00-\x20\x7f-\xff\\]"  # control, space, non-ASCII, backslash
    rb"|//"  # empty segment
    rb"|%(?![0-9A-Fa-f]{2})"  # broken escape
    rb"|%(?:25)*(?:2[EeFf]|5[Cc]|[01][0-9A-Fa-f]|7[Ff])"  # encoded (even twice) . / \ or control byte
    rb"|/\.\.?(?:[/;]|$)"  # dot segment, also "..;" which Java servers treat as ".."
)
_LEADING_DOT = re.compile(rb"\.\.?(?:[/;]|$)").match  # a dot segment at the very start
_UNSAFE_QUERY = re.compile(rb"[\x00-\x20\x7f-\xff#]")
_SUSPICIOUS = re.compile(rb"[%\\]|//|/\.|[\x00-\x20\x7f-\xff]")


def _normalize_loosely(raw_path: bytes) -> str:
    """What a lenient upstream or framework might make of a path; only used to spot disguised routes."""
    text = raw_path.decode("latin-1")
    for _ in range(3):  # double and triple encoding
        decoded = unquote(text, encoding="latin-1")
        if decoded == text:
            break
        text = decoded
    text = re.sub(r"[\\/]+", "/", text.replace(";", "/"))
    norm = posixpath.normpath("/" + text.lstrip("/"))  # POSIX keeps a leading "//"
    return norm + "/" if text.endswith("/") and norm != "/" else norm


def is_unsafe(raw_path: bytes) -> bool:
    """Whether a path on a route holds a dot segment, an encoded slash, dot or backslash, an empty segment, a
    broken escape, a backslash or a control, space or non-ASCII byte."""
    return _UNSAFE.search(raw_path) is not None or (raw_path[:1] == b"." and _LEADING_DOT(raw_path) is not None)


def resolve_route(table: RouteTable, raw_path: bytes) -> Route | None:
    """The route for this path, or None for paths outside every route (the SPA's).

    Raises :class:`BadPath` for an unsafe path on a route, or one that only misses its route by a trick.
    """
    route = table.match(raw_path.decode("latin-1"))
    if route is not None:
        if is_unsafe(raw_path):
            raise BadPath("the path holds dot segments, encoded slashes, backslashes or control characters")
        return route
    if _SUSPICIOUS.search(raw_path) is not None and table.match(_normalize_loosely(raw_path)) is not None:
        raise BadPath("the path is disguised (encoded slashes, dot segments or doubled slashes)")
    return None


def upstream_target(route: Route, raw_path: bytes, query: bytes) -> bytes:
    """The request-target for the upstream: the raw path (prefix swapped for the upstream path, if any)."""
    base = route.upstream.base_path
    target = raw_path if base is None else base + raw_path[len(route.prefix) :]
    if query:
        if _UNSAFE_QUERY.search(query) is not None:
            raise BadPath("the query string holds control characters")
        return target + b"?" + query
    return target
