"""A ``CookiePolicy`` is checked when it is built: a Flask or Starlette user who writes a cookie the browser
would drop (a bad name, ``__Host-`` without ``Secure``, an unknown ``SameSite``) hears so at start-up, by the
parameter names, not at the first login when the browser silently ignores the ``Set-Cookie``."""

from __future__ import annotations

from typing import Any

import pytest

from frontdesk import SessionAuth, User
from frontdesk.middleware.cookies import CookiePolicy, CookiePolicyError

GATEWAY_KEYS = ("cookie.", "[cookie]")


def refused(**fields: Any) -> list[str]:
    with pytest.raises(CookiePolicyError) as caught:
        CookiePolicy(**fields)
    assert isinstance(caught.value, ValueError)  # what a bad argument is in Python
    for problem in caught.value.problems:
        assert not any(key in problem for key in GATEWAY_KEYS), problem
    assert str(caught.value).startswith("CookiePolicy: ")
    return list(caught.value.problems)


def test_the_default_policy_is_the_documented_one() -> None:
    policy = CookiePolicy()
    expected = "__Host-frontdesk=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Strict"
    assert policy.set_cookie("v", max_age=60) == expected


@pytest.mark.parametrize("same_site", ["Strict", "Lax", "None"])
def test_each_same_site_value_is_accepted(same_site: str) -> None:
    assert CookiePolicy(same_site=same_site).same_site == same_site


def test_every_problem_is_reported_at_once_by_parameter_name() -> None:
    found = refused(name="sid", same_site="Loose", secure=False, path="/app", domain="example.com")
    assert [p.split(" ")[0] for p in found] == ["name", "secure", "path", "domain", "same_site"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("__Host-", "is not a valid cookie name"),
        ("__Host-a b", "is not a valid cookie name"),
        ("__Host-a;b", "is not a valid cookie name"),
        ("__Host-a=b", "is not a valid cookie name"),
        ("__Host-é", "is not a valid cookie name"),
        ("", 'must start with "__Host-"'),
        ("frontdesk", 'must start with "__Host-"'),
        ("__host-frontdesk", 'must start with "__Host-"'),
        ("__Secure-frontdesk", "a sibling sub-domain"),
    ],
)
def test_the_name_is_a_host_prefixed_cookie_token(name: str, expected: str) -> None:
    (problem,) = refused(name=name)
    assert problem.startswith("name ") and expected in problem, problem


def test_the_host_prefix_requires_secure_root_path_and_no_domain() -> None:
    assert refused(secure=False) == [
        "secure must be true: browsers accept a __Host- cookie (and SameSite=None) only with Secure"
    ]
    assert refused(path="/app") == ["path must be \"/\" for a __Host- cookie, not '/app'"]
    assert refused(domain="example.com") == ["domain must not be set for a __Host- cookie"]


def test_same_site_is_one_of_three_and_a_wrong_case_gets_a_hint() -> None:
    (problem,) = refused(same_site="strict")
    assert problem == "same_site must be one of Strict, Lax, None, not 'strict' (did you mean 'Strict'?)"
    (problem,) = refused(same_site="none", secure=False)[1:]
    assert "did you mean 'None'" in problem


def test_wrong_types_are_named_not_crashed_on() -> None:
    found = refused(name=7, same_site=None, secure="yes", path=None, domain=3)
    assert [p.split(" ")[0] for p in found] == ["name", "secure", "path", "domain", "same_site"]


def test_session_auth_refuses_a_bad_policy_before_the_first_login() -> None:
    async def nobody(username: str, password: str) -> User | None:
        return None

    with pytest.raises(CookiePolicyError, match="secure must be true"):
        SessionAuth.from_secrets(
            access_secret="a" * 40,
            refresh_secret="r" * 40,
            authenticator=nobody,
            store="memory://",
            cookie=CookiePolicy(secure=False),
        )
