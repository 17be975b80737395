"""The demo upstream API, in process through httpx's ASGI transport (raw ASGI for the SSE clock)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import jwt
import pytest

from gateway.demo_upstream import (
    MAX_ITEM_TEXT,
    InvalidBearer,
    create_demo_upstream,
    make_verifier,
    verify_bearer,
)

SECRET = "a-test-access-secret-that-is-long-enough-for-hs512-too-0123456789abcdef"
OTHER_SECRET = "another-secret-that-is-also-long-enough-for-hs512-9876543210fedcba"


def token(
    sub: str = "u1",
    *,
    secret: str = SECRET,
    typ: str = "at+jwt",
    ttl: int = 60,
    drop: tuple[str, ...] = (),
    alg: str = "HS256",
    **overrides: Any,
) -> str:
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
    return jwt.encode(claims, secret, algorithm=alg, headers={"typ": typ})


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = create_demo_upstream(make_verifier(SECRET), clock_interval=0.01)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://upstream")


# --- verify_bearer ---------------------------------------------------------------------------------------


def test_verify_bearer_returns_claims() -> None:
    claims = verify_bearer(f"Bearer {token('alice')}", secret=SECRET)
    assert claims["sub"] == "alice"
    assert claims["sid"] == "s-alice"


def test_verify_bearer_accepts_media_type_spelling_of_typ() -> None:
    assert verify_bearer(f"bearer {token(typ='application/AT+JWT')}", secret=SECRET)["sub"] == "u1"


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Basic dXNlcjpwYXNz", "not a bearer"),
        ("Bearer ", "not a bearer"),
        ("Bearer not-a-jwt", "rejected"),
        (f"Bearer {token(secret=OTHER_SECRET)}", "rejected"),
        (f"Bearer {token(typ='refresh+jwt')}", "not an access token"),
        (f"Bearer {token(typ='JWT')}", "not an access token"),
        (f"Bearer {token(ttl=-60)}", "expired"),
        (f"Bearer {token(iss='someone-else')}", "rejected"),
        (f"Bearer {token(aud='another-api')}", "rejected"),
        (f"Bearer {token(drop=('sid',))}", "rejected"),
        (f"Bearer {token(drop=('jti',))}", "rejected"),
        (f"Bearer {token(drop=('iat',))}", "rejected"),
        (f"Bearer {token(alg='HS512')}", "rejected"),
    ],
)
def test_verify_bearer_rejects(header: str | None, why: str) -> None:
    with pytest.raises(InvalidBearer, match=why):
        verify_bearer(header, secret=SECRET)


def test_verify_bearer_rejects_alg_none() -> None:
    unsigned = jwt.encode(
        {
            "sub": "u",
            "sid": "s",
            "jti": "j",
            "iat": 1,
            "exp": 2**40,
            "iss": "frontdesk",
            "aud": "frontdesk-api",
        },
        None,
        algorithm="none",
        headers={"typ": "at+jwt"},
    )
    with pytest.raises(InvalidBearer):
        verify_bearer(f"Bearer {unsigned}", secret=SECRET)


def test_audience_is_configurable() -> None:
    tok = token(aud="billing")
    assert verify_bearer(f"Bearer {tok}", secret=SECRET, audience="billing")["aud"] == "billing"


def test_verifier_reads_secret_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_ACCESS_SECRET", SECRET)
    assert make_verifier()(f"Bearer {token()}")["sub"] == "u1"
    monkeypatch.delenv("FRONTDESK_ACCESS_SECRET")
    with pytest.raises(RuntimeError, match="FRONTDESK_ACCESS_SECRET"):
        make_verifier()


def test_rejection_detail_never_echoes_the_token() -> None:
    bad = token(secret=OTHER_SECRET)
    with pytest.raises(InvalidBearer) as info:
        verify_bearer(f"Bearer {bad}", secret=SECRET)
    assert bad not in str(info.value)
    assert bad.split(".")[2] not in str(info.value)


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
async def test_every_endpoint_requires_a_valid_access_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    for headers in ({}, bearer(token(typ="refresh+jwt")), bearer(token(ttl=-60))):
        r = await client.request(method, path, headers=headers, json={"text": "x"})
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        body = r.json()
        assert body["error"] == "invalid_token"
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
        r = await client.post(
            "/api/items", headers={**h, "Content-Type": "application/json"}, content=content
        )
    else:
        r = await client.post("/api/items", headers=h, json=body)
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request"


async def test_item_count_is_capped(client: httpx.AsyncClient) -> None:
    h = bearer(token())
    statuses = [
        (await client.post("/api/items", headers=h, json={"text": f"n{i}"})).status_code for i in range(101)
    ]
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
    app = create_demo_upstream(make_verifier(SECRET), clock_interval=0.01)
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
    events = [
        e for e in b"".join(m.get("body", b"") for m in sent[1:]).decode().split("\n\n") if "data:" in e
    ]
    payloads = [json.loads(e.split("data: ", 1)[1]) for e in events]
    assert [p["seq"] for p in payloads[:3]] == [1, 2, 3]
    assert all(p["time"].endswith("Z") for p in payloads)
