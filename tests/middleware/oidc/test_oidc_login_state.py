"""The login-state cookie between /login and /callback (signed, 10 minutes, single use, bound to its state and
provider) and the return path (same origin only)."""

from __future__ import annotations

import pytest

from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import InvalidLoginState
from frontdesk.middleware.oidc import LOGIN_STATE_COOKIE, LoginState, LoginStateCookie, safe_return_path

LOGIN = LoginState(provider="corp", state="state-1", nonce="nonce-1", verifier="v" * 64, return_to="/orders?id=1")


def cookie_header(set_cookie: str) -> str:
    return set_cookie.split(";")[0]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def cookies(clock: ManualClock) -> LoginStateCookie:
    return LoginStateCookie(b"k" * 32, clock=clock)


def test_the_cookie_attributes(cookies: LoginStateCookie) -> None:
    set_cookie = cookies.issue(LOGIN)
    assert set_cookie.startswith(f"{LOGIN_STATE_COOKIE}=")
    for attribute in ("Path=/", "Max-Age=600", "HttpOnly", "Secure", "SameSite=Lax"):
        assert attribute in set_cookie.split("; ")
    assert "Max-Age=0" in cookies.clear()


def test_a_round_trip_then_never_again(cookies: LoginStateCookie) -> None:
    header = cookie_header(cookies.issue(LOGIN))
    assert cookies.read(header, provider="corp", state="state-1") == LOGIN
    with pytest.raises(InvalidLoginState, match="completed already"):
        cookies.read(header, provider="corp", state="state-1")


@pytest.mark.parametrize(
    ("state", "provider", "why"),
    [("state-2", "corp", "does not match"), (None, "corp", "does not match"), ("", "corp", "does not match"),
     ("state-1", "partner", "another provider")],
)  # fmt: skip
def test_a_mismatch_is_refused(cookies: LoginStateCookie, state: str | None, provider: str, why: str) -> None:
    with pytest.raises(InvalidLoginState, match=why):
        cookies.read(cookie_header(cookies.issue(LOGIN)), provider=provider, state=state)


def test_missing_tampered_foreign_and_expired_cookies(cookies: LoginStateCookie, clock: ManualClock) -> None:
    header = cookie_header(cookies.issue(LOGIN))
    with pytest.raises(InvalidLoginState, match="missing"):
        cookies.read(None, provider="corp", state="state-1")
    with pytest.raises(InvalidLoginState, match="missing"):
        cookies.read("other=1", provider="corp", state="state-1")
    name, value = header.split("=", 1)
    tampered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    with pytest.raises(InvalidLoginState, match="not one this gateway signed"):
        cookies.read(f"{name}={tampered}", provider="corp", state="state-1")
    other_gateway = LoginStateCookie(b"x" * 32, clock=clock)
    with pytest.raises(InvalidLoginState, match="not one this gateway signed"):
        other_gateway.read(header, provider="corp", state="state-1")
    clock.advance(601)
    with pytest.raises(InvalidLoginState, match="longer than 10 minutes"):
        cookies.read(header, provider="corp", state="state-1")


@pytest.mark.parametrize(
    "value",
    ["/", "/orders", "/orders?id=1&x=%2F%2Fevil", "/a/b#frag", "/path:with:colons"],
)
def test_same_origin_paths_are_kept(value: str) -> None:
    assert safe_return_path(value) == value


@pytest.mark.parametrize(
    "value",
    [None, "", "orders", "https://evil.example", "//evil.example", "//evil.example/x", "/\\evil.example",
     "\\\\evil.example", "/x\\y", "javascript:alert(1)", "http:/evil", "/x\r\nSet-Cookie: a=b", "/\tevil",
     "/" + "a" * 3000],
)  # fmt: skip
def test_anything_else_becomes_the_root(value: str | None) -> None:
    assert safe_return_path(value) == "/"


def test_non_ascii_and_spaces_are_percent_encoded() -> None:
    """The path goes into a Location header (latin-1 at most): anything outside printable ASCII is encoded,
    never dropped or left to break the header."""
    assert safe_return_path("/caf\u00e9/\u20ac?q=a b") == "/caf%C3%A9/%E2%82%AC?q=a%20b"
