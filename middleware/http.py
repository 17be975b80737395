"""A tiny transport-neutral request/response pair, so ``/auth/*`` is written once for ASGI and WSGI."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import FrontdeskError, RateLimited

__all__ = [
    "HttpRequest",
    "HttpResponse",
    "json_response",
    "error_json",
    "error_response",
    "error_body",
    "headers_from_pairs",
]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ", " (cookies with "; ")
    body: bytes = b""
    client: str | None = None  # the direct peer's address
    scheme: str = "http"  # a WebSocket handshake's ws/wss already read as http/https (what its Origin says)
    websocket: bool = False  # a WebSocket upgrade (method GET)


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def headers_from_pairs(pairs: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in out:
            out[name] = out[name] + ("; " if name == "cookie" else ", ") + value
        else:
            out[name] = value
    return out


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def error_json(code: str, detail: str) -> bytes:
    """The one writer of every error body, whichever layer refuses: ``{"error":"code","detail":"text"}``.

    Compact and ASCII-only, so a client (or a test) can rely on one byte shape from ``/auth/*``, the proxy,
    the static files, bearer mode and a refused WebSocket upgrade alike.
    """
    return _json({"error": code, "detail": detail})


def _response(status: int, body: bytes, headers: Iterable[tuple[str, str]]) -> HttpResponse:
    return HttpResponse(
        status,
        [("content-type", "application/json"), ("content-length", str(len(body))), *headers],
        body,
    )


def json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    return _response(status, _json(payload), headers)


def error_response(exc: FrontdeskError, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    extra = list(headers)
    if isinstance(exc, RateLimited):
        extra.append(("retry-after", str(exc.retry_after)))
    return _response(exc.status, error_json(exc.code, exc.detail), extra)


def error_body(status: int, code: str, detail: str) -> HttpResponse:
    """An error answer that has no :class:`FrontdeskError` behind it (a 404, a 405)."""
    return _response(status, error_json(code, detail), ())
