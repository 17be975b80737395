"""The library speaks its own terms: a Flask or Starlette user has no TOML, so a bad argument is reported by
the name it has in Python; the gateway adds its config key when it reports the same problem."""

from __future__ import annotations

import pytest

from frontdesk.gateway.errors import ConfigError
from frontdesk.middleware import errors
from frontdesk.middleware.cookies import CookiePolicy, CookiePolicyError
from frontdesk.middleware.forwarded import TrustedProxies
from frontdesk.middleware.store import RedisOptions, store_from_url

GATEWAY_KEYS = ("server.", "cookie.", "store.", "tokens.", "sessions.", "[")


def _speaks_library_terms(message: str) -> None:
    assert not any(key in message for key in GATEWAY_KEYS), message


def test_cookie_policy_problems_name_the_fields() -> None:
    with pytest.raises(CookiePolicyError) as caught:
        CookiePolicy(name="sid", same_site="Loose", secure=False, path="/app", domain="example.com")
    found = caught.value.problems
    assert [p.split(" ")[0] for p in found] == ["name", "secure", "path", "domain", "same_site"]
    for problem in found:
        _speaks_library_terms(problem)


def test_trusted_proxies_take_strings_and_refuse_junk_in_plain_words() -> None:
    trusted = TrustedProxies(["10.0.0.0/8", "192.0.2.7"])
    assert trusted.client_ip("10.1.2.3", "203.0.113.9, 192.0.2.7") == "203.0.113.9"
    with pytest.raises(ValueError, match="'not-an-ip' is not an IP address or network") as caught:
        TrustedProxies(["not-an-ip"])
    _speaks_library_terms(str(caught.value))


def test_an_unsupported_store_url_is_called_a_store_url() -> None:
    with pytest.raises(ValueError, match="store URL 'postgres://x' is not supported") as caught:
        store_from_url("postgres://x")
    _speaks_library_terms(str(caught.value))


def test_configuration_errors_belong_to_the_gateway() -> None:
    assert not hasattr(errors, "ConfigError")
    assert "ConfigError" not in errors.__all__
    assert issubclass(ConfigError, errors.FrontdeskError)


def test_every_redis_url_form_makes_a_redis_store_and_a_bad_one_says_why() -> None:
    for url in ("redis://h:6379/0", "rediss://h/0", "redis+sentinel://h1,h2:26380/mymaster", "redis+cluster://h:7000"):
        assert type(store_from_url(url, redis=RedisOptions(password="pw"))).__name__ == "RedisStore"
    with pytest.raises(ValueError, match="service_name") as caught:
        store_from_url("redis+sentinel://h1:26379")
    _speaks_library_terms(str(caught.value))
