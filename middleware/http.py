"""A tiny transport-neutral request/response pair, so ``/auth/*`` is written once for ASGI and WSGI."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import FrontdeskError, RateLimited, StoreError

__all__ = [
    "HttpRequest",
    "HttpResponse",
    "json_response",
    "error_json",
    "error_response",
    "error_body",
    "headers_from_pairs",
    "PairHeaders",
]


@dataclass(slots=True)  # read-only by convention: a frozen dataclass costs ~1.5 us more to build, per request
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ", " (cookies with "; ")
    body: bytes = b""
    client: str | None = None  # the direct peer's address
    scheme: str = "http"  # a WebSocket handshake's ws/wss already read as http/https (what its Origin says)
    websocket: bool = False  # a WebSocket upgrade (method GET)
    query: bytes = b""  # the raw query string (undecoded: most requests never look at it)


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


_RAW_NAMES = {name: name.encode("latin-1") for name in ("authorization", "cookie", "origin", "host")}


class PairHeaders(Mapping[str, str]):
    """The lower-case header mapping of raw ``(name, value)`` byte pairs (an ASGI scope's), built lazily.

    A bearer-mode request only ever asks for ``authorization``: :meth:`get` of one name scans the pairs
    without decoding the rest, and the whole dict is built on first use of anything else. Repeated headers are
    joined as in :func:`headers_from_pairs`.
    """

    __slots__ = ("_all", "_pairs")

    def __init__(self, pairs: Sequence[tuple[bytes, bytes]]) -> None:
        self._pairs = pairs
        self._all: dict[str, str] | None = None

    def _built(self) -> dict[str, str]:
        if self._all is None:
            self._all = headers_from_pairs(self._pairs)
        return self._all

    def __getitem__(self, name: str) -> str:
        return self._built()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())

    def get(self, name: str, default: Any = None) -> Any:
        if self._all is not None:
            return self._all.get(name, default)
        raw = _RAW_NAMES.get(name) or name.encode("latin-1")
        found: bytes | None = None
        for key, value in self._pairs:
            if key == raw:  # ASGI servers give lower-case names (the spec's rule); a miss fails closed
                found = value if found is None else found + (b"; " if name == "cookie" else b", ") + value
        return default if found is None else found.decode("latin-1")


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
    if isinstance(exc, (RateLimited, StoreError)):
        extra.append(("retry-after", str(exc.retry_after)))
    return _response(exc.status, error_json(exc.code, exc.detail), extra)


def error_body(status: int, code: str, detail: str) -> HttpResponse:
    """An error answer that has no :class:`FrontdeskError` behind it (a 404, a 405)."""
    return _response(status, error_json(code, detail), ())
