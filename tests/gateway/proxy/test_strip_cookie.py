"""The proxy cuts the session cookie and its device cookie out of the Cookie header it forwards; every other
cookie passes as it came."""

from __future__ import annotations

import pytest

from frontdesk.gateway.proxy.headers import strip_cookie


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"sid=v", b""),
        (b"a=1; sid=v", b"a=1"),
        (b"sid=v; a=1", b"a=1"),
        (b"a=1; sid=v; b=2", b"a=1; b=2"),
        (b"a=1;sid=v;b=2", b"a=1;b=2"),
        (b"a=1; sid-device=d; sid=v", b"a=1"),
        (b"sid=v; sid=w; a=1", b"a=1"),
        (b"xsid=v; a=1", b"xsid=v; a=1"),
        (b"a=sid=v", b"a=sid=v"),
        (b"a=1; b=2", b"a=1; b=2"),
        (b"", b""),
    ],
)
def test_the_session_and_device_cookies_are_cut_out(header: bytes, expected: bytes) -> None:
    assert strip_cookie(header, b"sid") == expected
