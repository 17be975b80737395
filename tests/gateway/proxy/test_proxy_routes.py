"""Route and [proxy] config parsing: every bad input becomes a plain-word problem, never an exception."""

from __future__ import annotations

import pytest

from frontdesk.gateway.proxy.routes import RouteTable, parse_routes
from frontdesk.gateway.proxy.settings import ProxySettings, parse_proxy_settings


def _one(**kw: object) -> dict[str, object]:
    return {"prefix": "/api/", "upstream": "http://127.0.0.1:9000", **kw}


def test_defaults() -> None:
    routes, problems = parse_routes([_one()], default_audience="frontdesk-api")
    assert problems == []
    (r,) = routes
    assert r.prefix == "/api/" and r.auth == "required" and r.audience == "frontdesk-api"
    assert r.csrf is True and r.websocket is False and r.timeout == 30.0
    assert r.upstream.base_path is None and r.upstream.host_header == b"127.0.0.1:9000"
    assert "HEAD" in r.methods and "OPTIONS" not in r.methods


def test_full_route() -> None:
    routes, problems = parse_routes(
        [
            _one(
                upstream="https://api.example.com/v1/",
                auth="optional",
                audience="orders",
                methods=["get", "POST"],
                csrf=False,
                timeout="2m",
                websocket=True,
                max_body_size="1GiB",
            )
        ],
        default_audience="x",
    )
    assert problems == []
    (r,) = routes
    assert r.upstream.key == ("https", "api.example.com", 443)
    assert r.upstream.host_header == b"api.example.com"
    assert r.upstream.base_path == b"/v1/"
    assert r.methods == {"GET", "HEAD", "POST"}
    assert (r.auth, r.audience, r.csrf, r.timeout, r.websocket) == ("optional", "orders", False, 120.0, True)
    assert r.max_body_size == 1024**3


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"prefix": "/api/"}, "upstream"),
        (_one(prefix="api/"), "prefix"),
        (_one(prefix="/"), "prefix"),
        (_one(prefix="/a/../b/"), "prefix"),
        (_one(prefix="/a%2fb/"), "prefix"),
        (_one(prefix="/a//b/"), "prefix"),
        (_one(upstream="ftp://x"), "http://"),
        (_one(upstream="http://u:p@x"), "user name"),
        (_one(upstream="http://x/v1?a=1"), "query"),
        (_one(upstream="http://x/v1"), 'end with "/"'),
        (_one(upstream="http://x:99999"), "not a valid URL"),
        (_one(upstream="http:///v1/"), "no host"),
        (_one(auth="sometimes"), "auth"),
        (_one(methods=["GET", "BREW"]), "BREW"),
        (_one(methods=[]), "methods"),
        (_one(csrf="yes"), "csrf"),
        (_one(timeout=30), "timeout"),
        (_one(timeout="soon"), "timeout"),
        (_one(audience=""), "audience"),
        (_one(colour="red"), "colour"),
        ("nope", "table"),
    ],
)
def test_problems(item: object, fragment: str) -> None:
    routes, problems = parse_routes([item], default_audience="a")
    assert routes == []
    assert problems and any(fragment in p for p in problems), problems


def test_duplicate_prefix_and_not_a_list() -> None:
    _, problems = parse_routes([_one(), _one()], default_audience="a")
    assert problems == ["routes[1].prefix: '/api/' is already used by routes[0]"]
    assert parse_routes({"a": 1}, default_audience="a")[1] == ["routes: must be a list of [[routes]] tables"]
    assert parse_routes(None, default_audience="a") == ([], [])


def test_longest_prefix_first_and_boundaries() -> None:
    routes, _ = parse_routes(
        [_one(), _one(prefix="/api/admin/", upstream="http://127.0.0.1:9001"), _one(prefix="/files")],
        default_audience="a",
    )
    table = RouteTable(routes)
    assert table.match("/api/admin/x") is routes[1]
    assert table.match("/api/x") is routes[0]
    assert table.match("/api") is None
    assert table.match("/files") is routes[2]
    assert table.match("/files/a") is routes[2]
    assert table.match("/filesystem") is None


def test_proxy_settings() -> None:
    s, problems = parse_proxy_settings(None)
    assert s == ProxySettings() and problems == []
    s, problems = parse_proxy_settings(
        {"max_body_size": "1MB", "connect_timeout": "2s", "pool_size": 8, "allowed_origins": ["https://A.b/"]}
    )
    assert problems == []
    assert (s.max_body_size, s.connect_timeout, s.pool_size) == (1_000_000, 2.0, 8)
    assert s.allowed_origins == ("https://a.b",)
    s, problems = parse_proxy_settings({"max_body_size": "lots", "pool_size": -1, "warp": 9})
    assert s == ProxySettings()
    assert len(problems) == 3 and all(p.startswith("proxy.") for p in problems)
    assert parse_proxy_settings([1])[1] == ["[proxy] must be a table of settings"]
