"""Every bad input to /auth/* against a real server: CSRF and cross-site checks, malformed bodies, bad
credentials, login rate limits per username and per address, and X-Forwarded-For from untrusted peers.

Each test speaks from its own loopback source address (127.0.0.x) and uses its own usernames, so the
per-address and per-username rate-limit buckets of one test never touch another's.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from live_gateway import AuthClient, GatewayProcess, set_cookies

USERS = {name: f"{name}-password-123" for name in ("alice", "bob", "carol", "erin", "fred", "gina", "hugo")}
PER_USER = 3
PER_ADDRESS = 6
WINDOW = 600
TRUSTED_PROXY = "127.0.0.3"


@pytest.fixture(scope="module")
def gw(gateway_factory: Any) -> GatewayProcess:
    return gateway_factory(
        "bad-input",
        users=USERS,
        login={"max_attempts_per_user": PER_USER, "max_attempts_per_address": PER_ADDRESS, "window": f"{WINDOW}s"},
        server={"trusted_proxies": [TRUSTED_PROXY]},
    )


def client_from(gw: GatewayProcess, address: str) -> AuthClient:
    return gw.client(local_address=address)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert "Traceback" not in response.text
    if code is not None:
        assert body["error"] == code, body
    assert set_cookies(response) == [], "a refused request must not set a cookie"
    return body


def session_count(gw: GatewayProcess) -> int:
    return int(gw.query("SELECT COUNT(*) FROM sessions")[0][0])


def attempts(gw: GatewayProcess, key: str) -> int | None:
    rows = gw.query("SELECT count FROM attempts WHERE key = ?", (key,))
    return int(rows[0][0]) if rows else None


def login_body(name: str, password: str | None = None) -> dict[str, Any]:
    return {"username": name, "password": USERS[name] if password is None else password}


# --- CSRF and cross-site -------------------------------------------------------------------------


def test_missing_csrf_header_is_403_and_changes_nothing(gw: GatewayProcess) -> None:
    address = "127.0.0.10"
    with client_from(gw, address) as client:
        sessions_before = session_count(gw)
        assert_error(client.request("POST", "/auth/login", csrf=False, json=login_body("alice")), 403, "csrf_rejected")
        assert session_count(gw) == sessions_before
        assert attempts(gw, f"login:addr:{address}") is None  # not even counted as a login attempt

        assert client.login("alice", USERS["alice"]).status_code == 200
        claims = client.claims()
        before = gw.session_row(claims["sid"])
        for method, path in (("GET", "/auth/session"), ("POST", "/auth/refresh"), ("POST", "/auth/logout")):
            assert_error(client.request(method, path, csrf=False), 403, "csrf_rejected")
        # No rotation, no logout: the row is exactly as it was, and the cookie still works.
        assert gw.session_row(claims["sid"]) == before
        assert client.session().status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # same host, another port: another origin
    ],
    ids=["sec-fetch-site-cross-site", "foreign-origin", "null-origin", "other-port-origin"],
)
def test_cross_site_requests_are_403_and_change_nothing(gw: GatewayProcess, headers: dict[str, str]) -> None:
    with client_from(gw, "127.0.0.11") as client:
        sessions_before = session_count(gw)
        assert_error(client.request("POST", "/auth/login", headers=headers, json=login_body("bob")), 403)
        assert session_count(gw) == sessions_before

        assert client.login("bob", USERS["bob"]).status_code == 200
        claims = client.claims()
        before = gw.session_row(claims["sid"])
        for method, path in (("GET", "/auth/session"), ("POST", "/auth/refresh"), ("POST", "/auth/logout")):
            assert_error(client.request(method, path, headers=headers), 403, "csrf_rejected")
        assert gw.session_row(claims["sid"]) == before
        assert client.session().status_code == 200
        assert client.logout().status_code == 204


def test_same_origin_signals_are_accepted(gw: GatewayProcess) -> None:
    with client_from(gw, "127.0.0.12") as client:
        own = {"Origin": gw.url, "Sec-Fetch-Site": "same-origin"}
        assert client.login("carol", USERS["carol"], headers=own).status_code == 200
        assert client.session(headers=own).status_code == 200
        assert client.session(headers={"Sec-Fetch-Site": "none"}).status_code == 200  # typed into the address bar
        assert client.logout(headers=own).status_code == 204


# --- malformed bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"username": "alice", "password": ', "application/json", 400),  # truncated JSON
        (b"not json at all", "application/json", 400),
        (b"\xff\xfe\x00garbage", "application/json", 400),  # not even UTF-8
        (b'["alice", "pw"]', "application/json", 400),  # JSON, but not an object
        (b"null", "application/json", 400),
        (b"username=alice&password=alice-password-123", "application/x-www-form-urlencoded", 415),
        (b'{"username": "alice", "password": "alice-password-123"}', "text/plain", 415),  # a "simple" request
        (b'{"username": "alice", "password": "alice-password-123"}', "multipart/form-data; boundary=x", 415),
        (b'{"username": "alice", "password": "alice-password-123"}', None, 415),
    ],
    ids=["truncated", "not-json", "not-utf8", "array", "null", "form", "text-plain", "multipart", "no-type"],
)
def test_malformed_or_non_json_login_bodies(
    gw: GatewayProcess, content: bytes, content_type: str | None, status: int
) -> None:
    with client_from(gw, "127.0.0.13") as client:
        sessions_before = session_count(gw)
        headers = {"Content-Type": content_type} if content_type else {}
        r = client.request("POST", "/auth/login", content=content, headers=headers)
        assert_error(r, status)
        assert session_count(gw) == sessions_before


@pytest.mark.parametrize(
    "body",
    [
        {"username": 1, "password": "alice-password-123"},
        {"username": ["alice"], "password": "alice-password-123"},
        {"username": "alice", "password": None},
        {"username": "alice", "password": 12345678},
        {"username": "alice"},
        {"password": "alice-password-123"},
        {"username": "", "password": "alice-password-123"},
        {"username": "   ", "password": "alice-password-123"},
        {"username": "alice", "password": ""},
        {"username": "alice", "password": "alice-password-123", "remember": "yes"},
        {"username": "alice", "password": "alice-password-123", "remember": 1},
        {"username": "alice", "password": "alice-password-123", "admin": True},
        {"username": "a" * 300, "password": "alice-password-123"},
    ],
    ids=[
        "username-int",
        "username-list",
        "password-null",
        "password-int",
        "no-password",
        "no-username",
        "empty-username",
        "blank-username",
        "empty-password",
        "remember-string",
        "remember-int",
        "unknown-field",
        "long-username",
    ],
)
def test_wrong_types_are_400(gw: GatewayProcess, body: dict[str, Any]) -> None:
    with client_from(gw, "127.0.0.14") as client:
        sessions_before = session_count(gw)
        assert_error(client.request("POST", "/auth/login", json=body), 400, "bad_request")
        assert session_count(gw) == sessions_before


def test_oversized_login_body_is_refused(gw: GatewayProcess) -> None:
    with client_from(gw, "127.0.0.15") as client:
        r = client.request("POST", "/auth/login", json={"username": "alice", "password": "x" * 20_000})
        assert_error(r, 413)


# --- credentials and rate limits -----------------------------------------------------------------


def test_bad_credentials_are_401_with_the_same_body_for_unknown_user_and_wrong_password(gw: GatewayProcess) -> None:
    with client_from(gw, "127.0.0.16") as client:
        unknown = client.login("nobody-here", "some-password-1")
        wrong = client.login("gina", "not-the-password")
        assert_error(unknown, 401, "invalid_credentials")
        assert_error(wrong, 401, "invalid_credentials")
        assert unknown.content == wrong.content
        drop = {"date", "x-request-id"}  # per response by design
        assert [(k, v) for k, v in unknown.headers.items() if k not in drop] == [
            (k, v) for k, v in wrong.headers.items() if k not in drop
        ]
        assert client.cookie is None


def test_rate_limit_per_username_spares_other_users(gw: GatewayProcess) -> None:
    with client_from(gw, "127.0.0.20") as client, client_from(gw, "127.0.0.21") as elsewhere:
        for _ in range(PER_USER):
            assert_error(client.login("erin", "wrong-password-x"), 401, "invalid_credentials")
        # Over the limit: refused before the password is even checked (the right one included) ...
        limited = client.login("erin", USERS["erin"])
        assert_error(limited, 429, "rate_limited")
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= WINDOW + 1
        # ... from any address (the username is the bucket), and whatever the case of the name.
        assert_error(elsewhere.login("erin", USERS["erin"]), 429, "rate_limited")
        assert_error(elsewhere.login("ERIN", USERS["erin"]), 429, "rate_limited")
        # Another user, from the very same address, is not affected.
        assert client.login("fred", USERS["fred"]).status_code == 200
        assert client.session().status_code == 200


def test_rate_limit_per_address_ignores_x_forwarded_for_from_an_untrusted_peer(gw: GatewayProcess) -> None:
    address = "127.0.0.30"
    with client_from(gw, address) as client, client_from(gw, "127.0.0.31") as other:
        # Different usernames (so the per-user limit never triggers) and a new forged X-Forwarded-For each
        # time: the peer is not a trusted proxy, so all of these count against 127.0.0.30.
        for i in range(PER_ADDRESS):
            forged = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
            assert_error(client.login(f"stranger{i}", "some-password-1", headers=forged), 401)
        limited = client.login("hugo", USERS["hugo"], headers={"X-Forwarded-For": "203.0.113.200"})
        assert_error(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["retry-after"]) <= WINDOW + 1
        assert attempts(gw, f"login:addr:{address}") == PER_ADDRESS  # the refused attempt counted nothing
        assert gw.query("SELECT key FROM attempts WHERE key LIKE 'login:addr:203.0.113.%'") == []
        # Another address, and the same user, are fine.
        assert other.login("hugo", USERS["hugo"]).status_code == 200


def test_x_forwarded_for_is_believed_from_a_trusted_proxy(gw: GatewayProcess) -> None:
    with client_from(gw, TRUSTED_PROXY) as proxy:
        first = {"X-Forwarded-For": "198.51.100.7"}
        for i in range(PER_ADDRESS):
            assert_error(proxy.login(f"visitor{i}", "some-password-1", headers=first), 401)
        assert_error(proxy.login("visitorX", "some-password-1", headers=first), 429, "rate_limited")
        assert attempts(gw, "login:addr:198.51.100.7") == PER_ADDRESS
        # A forged hop to the left of the real client is not believed: the bucket is still 198.51.100.7.
        chained = {"X-Forwarded-For": "10.9.9.9, 198.51.100.7"}
        assert_error(proxy.login("visitorY", "some-password-1", headers=chained), 429, "rate_limited")
        # Another client behind the same proxy has its own bucket.
        r = proxy.login("alice", USERS["alice"], headers={"X-Forwarded-For": "198.51.100.8"})
        assert r.status_code == 200, r.text
        assert attempts(gw, f"login:addr:{TRUSTED_PROXY}") is None
