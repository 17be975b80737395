"""``PairHeaders``: the lazy header mapping of an ASGI scope answers exactly as the eager dict would."""

from __future__ import annotations

from frontdesk.middleware.http import PairHeaders, headers_from_pairs

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
