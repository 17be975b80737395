"""The decoration of an admitted request's answer (``middleware/no_store.py``) as pure functions: the proxy's
lower-case headers take a shortcut decided in C when none of Cache-Control, Expires, Vary is there; its result
must be the one the full walk gives."""

from __future__ import annotations

import pytest

from frontdesk.middleware.no_store import decorate_raw

Headers = list[tuple[bytes, bytes]]

PLAIN: Headers = [(b"content-type", b"application/json"), (b"content-length", b"2"), (b"x-app", b"1")]
CASES: list[Headers] = [
    [],
    PLAIN,
    [*PLAIN, (b"set-cookie", b"theme=dark")],
    [*PLAIN, (b"cache-control", b"max-age=60")],
    [*PLAIN, (b"expires", b"0")],
    [(b"vary", b"Accept"), *PLAIN],
    [(b"vary", b"Cookie"), *PLAIN],
    [(b"vary", b"*"), (b"cache-control", b"no-cache"), (b"expires", b"0")],
]


@pytest.mark.parametrize("headers", CASES)
@pytest.mark.parametrize(("set_cookie", "authenticated"), [(None, True), (b"__Host-fd=new", True), (None, False)])
def test_lower_case_headers_are_decorated_as_the_full_walk_decorates_them(
    headers: Headers, set_cookie: bytes | None, authenticated: bool
) -> None:
    fast = decorate_raw(list(headers), set_cookie, authenticated=authenticated, lower_case=True)
    walked = decorate_raw(list(headers), set_cookie, authenticated=authenticated, lower_case=False)
    assert fast == walked


def test_the_proxys_common_answer_gets_private_and_vary_or_no_store_with_the_cookie() -> None:
    assert decorate_raw(list(PLAIN), None, authenticated=True, lower_case=True) == [
        *PLAIN,
        (b"cache-control", b"private"),
        (b"vary", b"Cookie"),
    ]
    assert decorate_raw(list(PLAIN), b"__Host-fd=new", authenticated=True, lower_case=True) == [
        *PLAIN,
        (b"cache-control", b"no-store"),
        (b"set-cookie", b"__Host-fd=new"),
        (b"vary", b"Cookie"),
    ]
    assert decorate_raw(PLAIN, None, authenticated=False, lower_case=True) is PLAIN  # not a session's: as it came


def test_an_upper_case_cache_control_is_never_missed_without_lower_case() -> None:
    out = decorate_raw([(b"Cache-Control", b"public"), (b"Expires", b"1")], b"c=1", authenticated=True)
    assert out == [(b"cache-control", b"no-store"), (b"set-cookie", b"c=1"), (b"vary", b"Cookie")]
