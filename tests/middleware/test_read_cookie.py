"""``read_cookie``: the session cookie's value out of a Cookie header, the same whichever way it is read.

The usual header is read without splitting every pair (the proxy reads it on every request); the rules
(whitespace, quotes, an empty value, two different values: cookie tossing) must not depend on that shortcut,
so both are compared here with the straightforward reading on many generated headers.
"""

from __future__ import annotations

import random

import pytest

from frontdesk.middleware.cookies import read_cookie


def _by_pairs(header: str | None, name: str) -> str | None:
    """The rule, spelled out: every ``name=value`` pair; two different values believe neither."""
    if not header:
        return None
    found: str | None = None
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            value = value.strip().strip('"')
            if found is not None and found != value:
                return None
            found = value
    return found or None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("sid=abc", "abc"),
        ("theme=dark; sid=abc", "abc"),
        ("theme=dark; sid=abc; lang=en", "abc"),
        ('sid="abc"', "abc"),
        ("sid=", None),
        ("xsid=abc", None),
        ("a=sid=abc", None),
        ("sid=abc; sid=def", None),
        ("sid=abc; sid=abc", "abc"),
        ("theme=dark;sid=abc", "abc"),
        ("  sid = abc", None),
        ("sid =abc", None),
        ("sid= abc ;x=1", "abc"),
        (None, None),
        ("", None),
    ],
)
def test_examples(header: str | None, expected: str | None) -> None:
    assert read_cookie(header, "sid") == expected == _by_pairs(header, "sid")


def test_agrees_with_the_rule_on_generated_headers() -> None:
    pieces = ["sid", "sid=", "=", ";", " ", '"', "v", "x", "\t", "; ", "sid=v", "; sid=", "sid =", "w"]
    rng = random.Random(1)
    for _ in range(50_000):
        header = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert read_cookie(header, "sid") == _by_pairs(header, "sid"), header

