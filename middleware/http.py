"""A tiny transport-neutral request/response pair, so ``/auth/*`` is written once for ASGI and WSGI."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import FrontdeskError, RateLimited

__all__ = ["HttpRequest", "HttpResponse", "json_response", "error_response", "error_body", "headers_from_pairs"]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ", " (cookies with "; ")
    body: bytes = b""
    client: str | None = None  # the direct peer's address
    scheme: str = "http"


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


def json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return HttpResponse(
        status,
        [("content-type", "application/json"), ("content-length", str(len(body))), *headers],
        body,
    )


def error_response(exc: FrontdeskError, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    extra = list(headers)
    if isinstance(exc, RateLimited):
        extra.append(("retry-after", str(exc.retry_after)))
    return json_response(exc.status, {"error": exc.code, "detail": exc.detail}, extra)


def error_body(status: int, code: str, detail: str) -> HttpResponse:
    return json_response(status, {"error": code, "detail": detail})
