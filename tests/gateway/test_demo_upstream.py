"""The demo upstream API, in process through httpx's ASGI transport (raw ASGI for the SSE clock)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import jwt
import pytest

from frontdesk.gateway.demo_upstream import MAX_ITEM_TEXT, bearer_auth_from_env, create_demo_upstream
from frontdesk.middleware.tokens import KeyRing, SigningKey

SECRET = "a-test-access-secret-that-is-long-enough-for-hs512-too-0123456789abcdef"
OTHER_SECRET = "another-secret-that-is-also-long-enough-for-hs512-9876543210fedcba"
KID = SigningKey.from_secret(SECRET).kid


def token(
    sub: str = "u1",
    *,
    secret: str = SECRET,
    typ: str = "at+jwt",
    ttl: int = 60,
    drop: tuple[str, ...] = (),
    alg: str = "HS256",
    kid: str | None = None,
    **overrides: Any,
) -> str:
    """An access token shaped like the gateway's (kid names the secret, as KeyRing does)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "sid": "s-" + sub,
        "jti": f"j-{sub}-{now}",
        "iat": now,
        "exp": now + ttl,
        "iss": "frontdesk",
        "aud": "frontdesk-api",
    }
    claims.update(overrides)
    for name in drop:
        claims.pop(name)
    key_id = kid if kid is not None else SigningKey.from_secret(secret).kid
    return jwt.encode(claims, secret, algorithm=alg, headers={"typ": typ, "kid": key_id})


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def make_client(**kwargs: Any) -> httpx.AsyncClient:
    env = {"FRONTDESK_ACCESS_SECRET": SECRET}
    app = create_demo_upstream(bearer_auth_from_env(env, **kwargs), clock_interval=0.01)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://upstream")


@pytest.fixture
def client() -> httpx.AsyncClient:
    return make_client()


# --- verification, by frontdesk's bearer-mode middleware ---------------------------------------------


async def test_valid_access_token_is_accepted(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/me", headers=bearer(token("alice")))
    assert r.status_code == 200
    assert r.json()["claims"]["sub"] == "alice"


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        f"Bearer {token(secret=OTHER_SECRET)}",
        f"Bearer {token(secret=OTHER_SECRET, kid=KID)}",
        f"Bearer {token(typ='rt+jwt')}",
        f"Bearer {token(typ='JWT')}",
        f"Bearer {token(ttl=-60)}",
        f"Bearer {token(iss='someone-else')}",
        f"Bearer {token(aud='another-api')}",
        f"Bearer {token(drop=('sid',))}",
        f"Bearer {token(drop=('jti',))}",
        f"Bearer {token(alg='HS512')}",
    ],
)
async def test_invalid_access_tokens_are_refused(client: httpx.AsyncClient, header: str) -> None:
    r = await client.get("/api/me", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    body = r.json()
    assert set(body) == {"error", "detail"}
    assert header.split(" ", 1)[1] not in r.text  # never echoes the token


async def test_alg_none_is_refused(client: httpx.AsyncClient) -> None:
    claims = {"sub": "u", "sid": "s", "jti": "j", "iat": 1, "exp": 2**40, "iss": "frontdesk", "aud": "frontdesk-api"}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"typ": "at+jwt", "kid": KID})
    assert (await client.get("/api/me", headers=bearer(unsigned))).status_code == 401


async def test_audience_is_configurable() -> None:
    async with make_client(audience="billing") as billing:
        assert (await billing.get("/api/me", headers=bearer(token(aud="billing")))).status_code == 200
        assert (await billing.get("/api/me", headers=bearer(token()))).status_code == 401


async def test_previous_secret_still_verifies_during_a_rotation() -> None:
    env = {"FRONTDESK_ACCESS_SECRET": OTHER_SECRET, "FRONTDESK_ACCESS_SECRET_PREVIOUS": SECRET}
    app = create_demo_upstream(bearer_auth_from_env(env))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://upstream") as c:
        assert (await c.get("/api/me", headers=bearer(token()))).status_code == 200
        assert (await c.get("/api/me", headers=bearer(token(secret=OTHER_SECRET)))).status_code == 200


def test_the_secret_is_required() -> None:
    with pytest.raises(RuntimeError, match="FRONTDESK_ACCESS_SECRET"):
        bearer_auth_from_env({})


def test_keyring_matches_the_gateway() -> None:
    # The demo verifies with exactly the ring the gateway signs with: same kid for the same secret.
    assert KeyRing.from_secrets(SECRET).signing_key().kid == KID


# --- endpoints ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/me"),
        ("GET", "/api/items"),
        ("POST", "/api/items"),
        ("DELETE", "/api/items/abc"),
        ("GET", "/api/clock"),
        ("GET", "/api/slow?ms=0"),
    ],
)
async def test_every_endpoint_requires_a_valid_access_token(client: httpx.AsyncClient, method: str, path: str) -> None:
    for headers in ({}, bearer(token(typ="rt+jwt")), bearer(token(ttl=-60))):
        r = await client.request(method, path, headers=headers, json={"text": "x"})
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer ")
        body = r.json()
        assert isinstance(body["error"], str)
        assert isinstance(body["detail"], str)


async def test_me_returns_claims_not_the_token(client: httpx.AsyncClient) -> None:
    tok = token("alice")
    r = await client.get("/api/me", headers=bearer(tok))
    assert r.status_code == 200
    body = r.json()
    assert body["claims"]["sub"] == "alice"
    assert set(body["claims"]) >= {"sub", "sid", "jti", "iat", "exp", "iss", "aud"}
    assert tok not in r.text
    assert tok.split(".")[2] not in r.text


async def test_items_create_list_delete(client: httpx.AsyncClient) -> None:
    h = bearer(token("alice"))
    assert (await client.get("/api/items", headers=h)).json() == {"items": []}

    r = await client.post("/api/items", headers=h, json={"text": "  buy milk  "})
    assert r.status_code == 201
    item = r.json()
    assert item["text"] == "buy milk"
    assert item["id"] and item["created_at"].endswith("Z")

    await client.post("/api/items", headers=h, json={"text": "call bob"})
    listed = (await client.get("/api/items", headers=h)).json()["items"]
    assert [i["text"] for i in listed] == ["buy milk", "call bob"]

    assert (await client.delete(f"/api/items/{item['id']}", headers=h)).status_code == 204
    assert (await client.delete(f"/api/items/{item['id']}", headers=h)).status_code == 404
    listed = (await client.get("/api/items", headers=h)).json()["items"]
    assert [i["text"] for i in listed] == ["call bob"]


async def test_items_are_per_user(client: httpx.AsyncClient) -> None:
    alice, bob = bearer(token("alice")), bearer(token("bob"))
    item = (await client.post("/api/items", headers=alice, json={"text": "secret plan"})).json()
    assert (await client.get("/api/items", headers=bob)).json() == {"items": []}
    # Bob cannot delete Alice's item, even knowing its id.
    assert (await client.delete(f"/api/items/{item['id']}", headers=bob)).status_code == 404
    assert len((await client.get("/api/items", headers=alice)).json()["items"]) == 1


@pytest.mark.parametrize(
    ("body", "content"),
    [
        (None, b"not json"),
        (None, b'["a list"]'),
        ({}, None),
        ({"text": ""}, None),
        ({"text": "   "}, None),
        ({"text": 42}, None),
        ({"text": "x" * (MAX_ITEM_TEXT + 1)}, None),
    ],
)
async def test_bad_item_bodies_are_400(client: httpx.AsyncClient, body: Any, content: bytes | None) -> None:
    h = bearer(token())
    if content is not None:
        r = await client.post("/api/items", headers={**h, "Content-Type": "application/json"}, content=content)
    else:
        r = await client.post("/api/items", headers=h, json=body)
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request"


async def test_item_count_is_capped(client: httpx.AsyncClient) -> None:
    h = bearer(token())
    statuses = [(await client.post("/api/items", headers=h, json={"text": f"n{i}"})).status_code for i in range(101)]
    assert statuses[:100] == [201] * 100
    assert statuses[100] == 409


async def test_slow_sleeps_then_answers(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/slow?ms=20", headers=bearer(token()))
    assert r.status_code == 200
    assert r.json()["slept_ms"] == 20


@pytest.mark.parametrize("ms", ["-1", "abc", "999999"])
async def test_slow_rejects_bad_durations(client: httpx.AsyncClient, ms: str) -> None:
    r = await client.get(f"/api/slow?ms={ms}", headers=bearer(token()))
    assert r.status_code == 400


async def test_clock_streams_server_sent_events() -> None:
    """Drive the ASGI app directly: httpx's ASGI transport would wait for an endless stream to finish."""
    app = create_demo_upstream(bearer_auth_from_env({"FRONTDESK_ACCESS_SECRET": SECRET}), clock_interval=0.01)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/clock",
        "raw_path": b"/api/clock",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {token()}".encode()), (b"host", b"upstream")],
        "client": ("127.0.0.1", 1234),
        "server": ("upstream", 80),
    }
    enough = asyncio.Event()
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await enough.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        text = b"".join(m.get("body", b"") for m in sent).decode()
        if text.count("event: tick") >= 3:
            enough.set()

    await asyncio.wait_for(app(scope, receive, send), timeout=10)

    start = sent[0]
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert headers[b"cache-control"] == b"no-store"
    events = [e for e in b"".join(m.get("body", b"") for m in sent[1:]).decode().split("\n\n") if "data:" in e]
    payloads = [json.loads(e.split("data: ", 1)[1]) for e in events]
    assert [p["seq"] for p in payloads[:3]] == [1, 2, 3]
    assert all(p["time"].endswith("Z") for p in payloads)
