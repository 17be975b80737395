"""CSRF defence for JSON endpoints: a custom header plus a cross-site check.

A browser cannot attach a custom header to a cross-origin request without a CORS preflight, which
frontdesk never grants, so requiring ``X-CSRF`` stops forged form posts and simple fetches. Fetch
metadata and ``Origin`` are checked as a second, independent layer.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import CsrfRejected, WebSocketRefused

__all__ = ["check_csrf", "check_same_origin", "check_request"]


def check_same_origin(headers: Mapping[str, str], *, own_origins: frozenset[str] | set[str]) -> None:
    """Refuse requests a browser marks as cross-site, or whose Origin is not ours."""
    if headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise CsrfRejected("cross-site requests are not allowed")
    origin = headers.get("origin")
    if origin is not None and origin.lower().rstrip("/") not in own_origins:
        raise CsrfRejected("request origin is not allowed")


def check_csrf(headers: Mapping[str, str], *, header_name: str, own_origins: frozenset[str] | set[str]) -> None:
    """``headers`` must have lower-case names. Raises :class:`CsrfRejected`."""
    if headers.get(header_name) is None:
        raise CsrfRejected(f"missing {header_name} header")
    check_same_origin(headers, own_origins=own_origins)


def check_request(
    headers: Mapping[str, str], *, websocket: bool, csrf_header: str | None, own_origins: frozenset[str] | set[str]
) -> None:
    """The one CSRF and origin rule for an admitted request (gateway routes and session mode alike).

    A WebSocket upgrade cannot carry a custom header and cookies ride along on a cross-site handshake, so its
    ``Origin`` is the only guard: browsers always send one, and an upgrade without it is not from a page we
    served. A plain request carries ``csrf_header`` (a cross-site page cannot send it without a preflight we
    never grant) unless it is None (EventSource, plain downloads); a foreign Origin or a cross-site fetch is
    refused either way. Raises :class:`WebSocketRefused` or :class:`CsrfRejected`.
    """
    if websocket:
        if "origin" not in headers:
            raise WebSocketRefused("a WebSocket upgrade must carry an Origin header")
        check_same_origin(headers, own_origins=own_origins)
    elif csrf_header is not None:
        check_csrf(headers, header_name=csrf_header, own_origins=own_origins)
    else:
        check_same_origin(headers, own_origins=own_origins)
