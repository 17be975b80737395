"""``PairHeaders``: the lazy header mapping of an ASGI scope answers exactly as the eager dict would."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from frontdesk.middleware.asgi_io import request_from_scope
from frontdesk.middleware.http import HttpRequest, PairHeaders, headers_from_pairs

PAIRS = [
    (b"host", b"app.example"),
    (b"cookie", b"a=1"),
    (b"authorization", b"Bearer one"),
    (b"cookie", b"b=2"),
    (b"authorization", b"Bearer two"),
    (b"x-csrf", b"1"),
]


def test_a_single_lookup_answers_as_the_whole_mapping_would() -> None:
    eager = headers_from_pairs(PAIRS)
    for name in ("host", "cookie", "authorization", "x-csrf", "origin"):
        assert PairHeaders(PAIRS).get(name) == eager.get(name)
    # repeated headers are joined, so two Authorization headers never pass for one token
    assert PairHeaders(PAIRS).get("authorization") == "Bearer one, Bearer two"
    assert PairHeaders(PAIRS).get("cookie") == "a=1; b=2"
    assert PairHeaders(PAIRS).get("origin", "none") == "none"


def test_the_mapping_protocol_builds_the_dict_once() -> None:
    headers = PairHeaders(PAIRS)
    assert "x-csrf" in headers and "origin" not in headers
    assert dict(headers) == headers_from_pairs(PAIRS) and len(headers) == 4
    assert headers["host"] == "app.example" and headers.get("cookie") == "a=1; b=2"


class _WatchedScope(dict[str, Any]):
    """A scope that records which keys were read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def _scope(kind: str = "http", **extra: Any) -> _WatchedScope:
    return _WatchedScope(type=kind, path="/x", headers=PAIRS, **extra)


def test_an_asgi_request_reads_only_what_is_asked_of_it() -> None:
    """Bearer mode reads the path and one header: the method, client and scheme are not even looked up."""
    scope = _scope(method="POST", client=("10.0.0.1", 5), scheme="https")
    request = request_from_scope(scope)
    assert (request.path, request.headers.get("x-csrf"), request.websocket) == ("/x", "1", False)
    assert scope.read == {"type", "path", "headers"}
    assert (request.method, request.client, request.scheme) == ("POST", "10.0.0.1", "https")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (_scope(), ("GET", None, "http", False)),
        (_scope("websocket", scheme="wss", client=("10.0.0.2", 7)), ("GET", "10.0.0.2", "https", True)),
        (_scope("websocket", scheme="ws"), ("GET", None, "http", True)),
        (_scope(method="PUT", scheme="https", client=None), ("PUT", None, "https", False)),
    ],
)
def test_an_asgi_request_answers_as_an_eager_one(scope: _WatchedScope, expected: tuple[Any, ...]) -> None:
    request = request_from_scope(scope)
    assert (request.method, request.client, request.scheme, request.websocket) == expected
    eager = HttpRequest(expected[0], "/x", request.headers, b"", *expected[1:])
    assert [getattr(request, f.name) for f in fields(HttpRequest)] == [getattr(eager, f.name) for f in fields(eager)]
