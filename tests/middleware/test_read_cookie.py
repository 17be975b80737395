"""``read_cookie``: the session cookie's value out of a Cookie header (whitespace, quotes, an empty value, and
two different values, which is cookie tossing: believe neither)."""

from __future__ import annotations

import pytest

from frontdesk.middleware.cookies import read_cookie


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("sid=abc", "abc"),
        ("theme=dark; sid=abc", "abc"),
        ("theme=dark; sid=abc; lang=en", "abc"),
        ("theme=dark;sid=abc", "abc"),
        ('sid="abc"', "abc"),
        ("sid= abc ;x=1", "abc"),
        ("sid=", None),
        ("xsid=abc", None),
        ("a=sid=abc", None),
        ("sid=abc; sid=def", None),
        ("sid=abc; sid=abc", "abc"),
        ("  sid = abc", None),
        ("sid =abc", None),
        (None, None),
        ("", None),
    ],
)
def test_the_session_cookie_is_read_by_the_rule(header: str | None, expected: str | None) -> None:
    assert read_cookie(header, "sid") == expected
