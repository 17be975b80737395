"""ProxyApp end to end: a real uvicorn gateway in front of a real uvicorn upstream, both on free ports."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import httpx
import pytest
import uvloop
from proxy_support import COOKIE, Gateway, raw_request, refresh_cookie

from tests.support import BOTH_LOOPS, wait_until_async


@BOTH_LOOPS
async def test_the_gateway_is_served_on_the_loop_in_the_test_id(gw: Gateway, request: pytest.FixtureRequest) -> None:
    on_uvloop = isinstance(asyncio.get_running_loop(), uvloop.Loop)
    # the loop's id comes first in the test id ("[uvloop-fast]"): then the server protocol's
    assert on_uvloop == ("[uvloop" in request.node.name), request.node.name
    async with gw.client() as c:  # the gateway and its upstream are tasks of this very loop
        assert (await c.get("/api/echo")).status_code == 200


@BOTH_LOOPS
async def test_request_header_rules(gw: Gateway) -> None:
    headers = {
        "connection": "keep-alive, x-secret",
        "x-secret": "hop",
        "keep-alive": "timeout=5",
        "te": "trailers",
        "proxy-authorization": "Basic eA==",
        "authorization": "Bearer forged",
        "x-forwarded-for": "6.6.6.6",
        "x-forwarded-host": "evil.example",
        "x-forwarded-proto": "gopher",
        "forwarded": "for=6.6.6.6",
        "x-real-ip": "6.6.6.6",
        "x-frontdesk-user": "admin",
        "x-app": "kept",
    }
    async with gw.client(headers=headers) as c:
        r = await c.get("/api/echo?q=1")
    assert r.status_code == 200, r.text
    (seen,) = gw.upstream.seen
    assert seen.target == "/api/echo?q=1"
    assert seen.header("host") == [f"127.0.0.1:{gw.upstream_port}"]
    assert seen.header("authorization") == ["Bearer at.alice.sid-alice.orders-api.1"]
    assert seen.header("cookie") == ["theme=dark; lang=en"]
    assert seen.header("x-forwarded-for") == ["127.0.0.1"]
    assert seen.header("x-forwarded-proto") == ["http"]
    assert seen.header("x-forwarded-host") == []  # neither the client's Host nor its forged header
    assert seen.header("x-app") == ["kept"]
    assert seen.header("x-csrf") == ["1"]
    names = {n for n, _ in seen.headers}
    for gone in ("x-secret", "keep-alive", "te", "proxy-authorization", "forwarded", "x-real-ip", "x-frontdesk-user"):
        assert gone not in names
    assert gw.engine.calls[0]["audience"] == "orders-api"


async def test_forwarded_chain_only_from_trusted_peer(proxy_factory) -> None:  # type: ignore[no-untyped-def]
    gw = await proxy_factory(trusted=("127.0.0.1",))
    async with gw.client(headers={"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https"}) as c:
        assert (await c.get("/api/echo")).status_code == 200
    (seen,) = gw.upstream.seen
    assert seen.header("x-forwarded-for") == ["1.2.3.4, 127.0.0.1"]
    assert seen.header("x-forwarded-proto") == ["https"]


@pytest.mark.parametrize("host", [b"evil.example", b"a b"])
async def test_the_clients_host_never_reaches_the_upstream_as_x_forwarded_host(proxy_factory, host: bytes) -> None:  # type: ignore[no-untyped-def]
    plain = await proxy_factory()
    pinned = await proxy_factory(proxy={"public_host": "app.example.com"})
    for gw in (plain, pinned):
        cookie = refresh_cookie("alice", "sid-alice").encode()
        raw = b"GET /api/echo HTTP/1.1\r\nHost: " + host + b"\r\nX-CSRF: 1\r\nCookie: " + cookie
        reply = await raw_request(gw.port, raw + b"\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
    assert plain.upstream.seen[0].header("x-forwarded-host") == []
    assert pinned.upstream.seen[0].header("x-forwarded-host") == ["app.example.com"]


async def test_the_login_device_cookie_never_reaches_the_upstream(gw: Gateway) -> None:
    # The device cookie is a login credential (it lifts the per-username limit), as private as the session one.
    cookie = refresh_cookie("alice", "sid-alice").encode()
    raw = b"GET /api/echo HTTP/1.1\r\nHost: gw\r\nX-CSRF: 1\r\nCookie: a=1; " + cookie
    raw += b"; " + COOKIE.encode() + b"-device=D; b=2\r\nConnection: close\r\n\r\n"
    reply = await raw_request(gw.port, raw)
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
    assert gw.upstream.seen[0].header("cookie") == ["a=1; b=2"]


async def test_response_header_rules_and_rotated_cookie(gw: Gateway) -> None:
    gw.engine.rotate_next = True
    async with gw.client() as c:
        r = await c.get("/api/hop")
    assert r.status_code == 200
    assert r.headers["x-kept"] == "yes"
    for gone in ("x-hop", "keep-alive"):
        assert gone not in r.headers
    assert "secret-upstream" not in r.headers.get("server", "")
    (cookie,) = r.headers.get_list("set-cookie")
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    # The upstream said "public": a response carrying a refresh cookie must not be cached anyway.
    assert r.headers.get_list("cache-control") == ["no-store"]


async def test_upstream_caching_is_kept_when_no_cookie_rides_along(gw: Gateway) -> None:
    async with gw.client() as c:
        r = await c.get("/api/hop")
    assert "set-cookie" not in r.headers
    assert r.headers["cache-control"] == "public, max-age=300"


async def test_upstream_cookies_never_cross_users(gw: Gateway) -> None:
    async with gw.client("alice") as a, gw.client("bob") as b:
        for _ in range(3):
            ra, rb = await asyncio.gather(a.get("/api/cookies"), b.get("/api/cookies"))
            assert ra.headers.get_list("set-cookie") == ["upstream_user=alice; Path=/"]
            assert rb.headers.get_list("set-cookie") == ["upstream_user=bob; Path=/"]
            # what each browser sends is all the upstream gets: no jar in the shared client
            assert ra.json()["cookie"] == ["theme=dark; lang=en"] == rb.json()["cookie"]


async def test_auth_modes(gw: Gateway) -> None:
    async with gw.client(user=None) as anon:
        r = await anon.get("/api/echo")
        assert r.status_code == 401 and r.json()["error"] == "not_authenticated"
        assert (await anon.get("/open/echo")).status_code == 200
        assert (await anon.get("/opt/echo")).status_code == 200
    assert [s.header("authorization") for s in gw.upstream.seen] == [[], []]
    async with gw.client() as c:
        assert (await c.get("/opt/echo")).status_code == 200
    assert gw.upstream.seen[-1].header("authorization")[0].startswith("Bearer at.alice")
    gw.engine.revoked.add("sid-alice")
    async with gw.client() as c:
        r = await c.get("/api/echo")
    assert r.status_code == 401 and r.json() == {"error": "session_revoked", "detail": "session revoked"}


async def test_method_not_allowed(gw: Gateway) -> None:
    async with gw.client() as c:
        r = await c.post("/ro/echo")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD" and r.json()["error"]
        assert (await c.request("OPTIONS", "/api/echo")).status_code == 405
    assert gw.upstream.seen == []


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),
        ({"x-csrf": None}, 403),
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"sec-fetch-site": "same-origin"}, 200),
        ({"origin": "https://evil.example"}, 403),
        ({"origin": "OWN"}, 200),
    ],
)
async def test_csrf(gw: Gateway, headers: dict[str, str | None], status: int) -> None:
    async with gw.client() as c:
        if headers.get("x-csrf", "") is None:
            del c.headers["x-csrf"]
        for k, v in headers.items():
            if v is not None:
                c.headers[k] = gw.url if v == "OWN" else v
        r = await c.post("/api/echo", content=b"{}")
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["error"] == "csrf_rejected"
        assert gw.upstream.seen == []


async def test_csrf_off_route_passes_without_header(gw: Gateway) -> None:
    async with gw.client(user=None) as c:
        del c.headers["x-csrf"]
        assert (await c.post("/open/echo", content=b"x")).status_code == 200


@pytest.mark.parametrize("header", [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")])
async def test_csrf_off_route_still_refuses_cross_site(gw: Gateway, header: tuple[str, str]) -> None:
    async with gw.client(user=None) as c:
        del c.headers["x-csrf"]
        c.headers[header[0]] = header[1]
        r = await c.get("/open/echo")
    assert r.status_code == 403 and r.json()["error"] == "csrf_rejected"
    assert gw.upstream.seen == []


@pytest.mark.parametrize(
    "target",
    [
        b"/api/../x",
        b"/api/%2e%2e/x",
        b"/api/..%2fx",
        b"/api%2fx",
        b"//api/x",
        b"/api/..%5cx",
        b"/api/x/../../admin",
        b"/x/../api/echo",
        b"/api/..;/x",
    ],
)
async def test_path_tricks_refused(gw: Gateway, target: bytes) -> None:
    cookie = refresh_cookie("alice", "sid-alice").encode()
    raw = (
        b"GET " + target + b" HTTP/1.1\r\nHost: gw\r\nX-CSRF: 1\r\nCookie: " + cookie + b"\r\nConnection: close\r\n\r\n"
    )
    reply = await raw_request(gw.port, raw)
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    assert b'"error":"bad_path"' in reply
    assert gw.upstream.seen == []


async def test_absolute_form_stays_on_the_configured_upstream(gw: Gateway) -> None:
    cookie = refresh_cookie("alice", "sid-alice").encode()
    raw = (
        b"GET http://evil.example:1/api/echo HTTP/1.1\r\nHost: evil.example:1\r\nX-CSRF: 1\r\nCookie: "
        + cookie
        + b"\r\nConnection: close\r\n\r\n"
    )
    reply = await raw_request(gw.port, raw)
    assert reply.startswith(b"HTTP/1.1 200 ") or reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    for seen in gw.upstream.seen:  # if it went anywhere, it went to our upstream, at the intended path
        assert seen.target == "/api/echo"
        assert seen.header("host") == [f"127.0.0.1:{gw.upstream_port}"]


async def test_outside_routes_fall_through_to_spa(gw: Gateway) -> None:
    async with gw.client() as c:
        r = await c.get("/apix/../index.html")  # httpx normalises: this is /index.html
        assert r.json() == {"spa": "/index.html"}
        assert (await c.get("/api")).json() == {"spa": "/api"}
    assert gw.upstream.seen == []


SMUGGLED = b"GET /api/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def _post(headers: bytes, body: bytes) -> bytes:
    cookie = refresh_cookie("alice", "sid-alice").encode()
    return b"POST /api/echo HTTP/1.1\r\nHost: gw\r\nX-CSRF: 1\r\nCookie: " + cookie + b"\r\n" + headers + b"\r\n" + body


@pytest.mark.parametrize(
    "request_bytes",
    [
        _post(b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
        _post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", b"0\r\n\r\n" + SMUGGLED),
        _post(b"Content-Length: 4\r\nContent-Length: 45\r\n", b"abcd" + SMUGGLED),
        _post(b"Content-Length: 4, 45\r\n", b"abcd" + SMUGGLED),
        _post(b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n" + SMUGGLED),
        _post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n" + SMUGGLED),
        _post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
        _post(b"Transfer-Encoding:\tchunked\r\nContent-Length: 3\r\n", b"0\r\n\r\n" + SMUGGLED),
        _post(b"X: y\r\n Transfer-Encoding: chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
        _post(b"Transfer-Encoding: chunked\r\n", b"4;\nx\r\nabcd\r\n0\r\n\r\n" + SMUGGLED),
        _post(b"Transfer-Encoding: chunked\r\n", b"-4\r\nabcd\r\n0\r\n\r\n" + SMUGGLED),
        _post(b"Content-Length: +4\r\n", b"abcd" + SMUGGLED),
        _post(b"Content-Length: -1\r\n", b"abcd" + SMUGGLED),
    ],
)
async def test_smuggling_shapes(gw: Gateway, request_bytes: bytes) -> None:
    reply = await raw_request(gw.port, request_bytes, read_timeout=2)
    statuses = [int(line.split()[1]) for line in reply.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    # Refused (400) or the connection closed; never a second request slipping through.
    assert statuses in ([], [400]), reply[:300]
    assert all(s.target != "/api/smuggled" for s in gw.upstream.seen)


async def test_oversized_headers_431(gw: Gateway) -> None:
    async with gw.client(headers={"x-big": "a" * 40_000}) as c:
        r = await c.get("/api/echo")
    assert r.status_code == 431 and r.json()["error"] == "headers_too_large"
    assert gw.upstream.seen == []


async def test_oversized_body_413_by_length_and_while_streaming(gw: Gateway) -> None:
    async with gw.client() as c:
        r = await c.post("/api/echo", content=b"x" * 1_000_001)
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
        assert gw.upstream.seen == []

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(40):
                yield b"y" * 65536

        r = await c.post("/api/echo", content=chunks())
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    # the upstream saw at most the allowed part of the body, then a cut connection (never a whole request)
    assert all(s.body_len <= 1_000_000 for s in gw.upstream.seen)


async def test_502_and_504(gw: Gateway) -> None:
    async with gw.client() as c:
        r = await c.get("/dead/x")
        assert r.status_code == 502 and r.json()["error"] == "upstream_unavailable"
        r = await c.get("/slowapi/slow?s=5")
        assert r.status_code == 504 and r.json()["error"] == "upstream_timeout"
        # the gateway is fine afterwards
        assert (await c.get("/api/echo")).status_code == 200


@BOTH_LOOPS
async def test_sse_first_event_before_upstream_finishes(gw: Gateway) -> None:
    async with gw.client() as c, c.stream("GET", "/api/sse") as r:
        assert r.headers["content-type"] == "text/event-stream"
        events = r.aiter_bytes()
        first = await anext(events)
        assert first == b"data: first\n\n"
        assert not gw.upstream.sse_release.is_set()  # the upstream has not finished: it waits on us
        gw.upstream.sse_release.set()
        rest = b"".join([chunk async for chunk in events])
    assert rest == b"data: last\n\n"


@BOTH_LOOPS
async def test_browser_leaving_a_stream_ends_it_upstream(gw: Gateway) -> None:
    async with gw.client() as c, c.stream("GET", "/api/sse") as r:
        await anext(r.aiter_bytes())
    await asyncio.wait_for(gw.upstream.sse_disconnected.wait(), 10)
    assert gw.app.pool.open_connections == 0


@BOTH_LOOPS
async def test_large_download_and_upload(gw: Gateway) -> None:
    size = 64 * 1024 * 1024 + 123
    async with gw.client() as c:
        async with c.stream("GET", f"/api/big?n={size}") as r:
            got = 0
            async for chunk in r.aiter_raw():
                got += len(chunk)
        assert got == size

        digest = hashlib.sha256()

        async def chunks():  # type: ignore[no-untyped-def]
            block = bytes(range(256)) * 256
            for _ in range(512):
                digest.update(block)
                yield block

        r = await c.post("/bigup/x", content=chunks())
        assert r.status_code == 200, r.text
        assert r.json() == {"length": 512 * 65536, "sha256": digest.hexdigest()}
        data = b"z" * 5_000_000
        r = await c.put("/bigup/x", content=data)  # Content-Length framing
        assert r.json() == {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@BOTH_LOOPS
async def test_keep_alive_reuse(gw: Gateway) -> None:
    async with gw.client() as c:
        for _ in range(5):
            assert (await c.get("/api/echo")).status_code == 200
    assert len({s.client_port for s in gw.upstream.seen}) == 1


@BOTH_LOOPS
async def test_upstream_reset_mid_stream_closes_browser_connection(gw: Gateway) -> None:
    async with gw.client() as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get("/api/reset")
        assert (await c.get("/api/echo")).status_code == 200
    assert gw.app.pool.open_connections <= 1


async def test_retry_once_with_fresh_token_after_invalid_token(gw: Gateway) -> None:
    gw.engine.stale_first = True
    gw.engine.rotate_next = True
    async with gw.client() as c:
        r = await c.get("/api/strict")
        assert r.status_code == 200, r.text
        assert r.json()["authorization"][0].startswith("Bearer at.alice")
        assert r.headers["set-cookie"].startswith(COOKIE)
    assert [call["force_new"] for call in gw.engine.calls] == [False, True]
    # the forced mint saw the rotated cookie, not the one just rotated away
    assert gw.engine.calls[1]["cookie"] != gw.engine.calls[0]["cookie"]


async def test_no_token_retry_for_post(gw: Gateway) -> None:
    gw.engine.stale_first = True
    async with gw.client() as c:
        r = await c.post("/api/strict", content=b"{}")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert [call["force_new"] for call in gw.engine.calls] == [False]


@BOTH_LOOPS
async def test_chunked_request_body_and_head(gw: Gateway) -> None:
    async with gw.client() as c:

        async def chunks():  # type: ignore[no-untyped-def]
            yield b"hello "
            yield b""
            yield b"world"

        r = await c.post("/api/echo", content=chunks())
        assert r.json()["body"] == "hello world"
        r = await c.head("/api/echo")
        assert r.status_code == 200 and r.content == b""
        assert (await c.get("/api/echo")).status_code == 200
    assert [s.method for s in gw.upstream.seen] == ["POST", "HEAD", "GET"]
    assert gw.upstream.seen[0].header("transfer-encoding") == ["chunked"]


async def test_expect_100_continue(gw: Gateway) -> None:
    body = b'{"a": 1}'
    raw = _post(b"Expect: 100-continue\r\nContent-Length: %d\r\nConnection: close\r\n" % len(body), b"")
    reader_writer = await asyncio.open_connection("127.0.0.1", gw.port)
    reader, writer = reader_writer
    writer.write(raw)
    line = await reader.readline()
    assert line.startswith(b"HTTP/1.1 100 ")
    writer.write(body)
    rest = await reader.read()
    writer.close()
    assert b"HTTP/1.1 200 " in rest and json.loads(rest.split(b"\r\n\r\n")[-1])["body"] == body.decode()
    assert "expect" not in {n for n, _ in gw.upstream.seen[0].headers}


@BOTH_LOOPS
async def test_nothing_leaks_under_errors(gw: Gateway) -> None:
    import os

    def counts() -> tuple[int, int]:
        return len(asyncio.all_tasks()), len(os.listdir("/proc/self/fd"))

    async with gw.client() as c:
        assert (await c.get("/api/echo")).status_code == 200
    await asyncio.sleep(0.2)
    tasks_before, fds_before = counts()
    async with gw.client() as c:
        for _ in range(3):
            assert (await c.get("/dead/x")).status_code == 502
            assert (await c.get("/slowapi/slow?s=0.6")).status_code == 504
            with pytest.raises(httpx.RemoteProtocolError):
                await c.get("/api/reset")
            async with c.stream("GET", "/api/sse") as r:
                await anext(r.aiter_bytes())
            assert (await c.post("/api/echo", content=b"x" * 1_000_001)).status_code == 413
            assert (await c.get("/api/echo")).status_code == 200

    def settled() -> bool:  # at most one more file descriptor: an idle pooled connection
        tasks, fds = counts()
        return tasks <= tasks_before and fds <= fds_before + 1

    # Wait for closes and the upstream's slow handlers to finish; not a timing assertion.
    await wait_until_async(settled, timeout=10, what=f"tasks/fds back to {tasks_before}/{fds_before} (a leak)")
    assert gw.app.pool.open_connections <= 2


async def test_rotated_cookie_reaches_the_browser_even_on_502(gw: Gateway) -> None:
    gw.engine.rotate_next = True
    async with gw.client() as c:
        r = await c.get("/dead/x")
    assert r.status_code == 502 and r.json()["error"] == "upstream_unavailable"
    assert r.headers["set-cookie"].startswith(COOKIE + "=")


async def test_origin_behind_a_trusted_tls_proxy_is_the_forwarded_one(proxy_factory: Any) -> None:
    forwarded = {"x-forwarded-proto": "https", "x-forwarded-host": "app.example", "origin": "https://app.example"}
    trusting = await proxy_factory(trusted=("127.0.0.1",))
    async with trusting.client() as c:
        assert (await c.post("/api/echo", content=b"{}", headers=forwarded)).status_code == 200
    # The same forwarded headers from a peer that is not a trusted proxy prove nothing.
    untrusting = await proxy_factory()
    async with untrusting.client() as c:
        r = await c.post("/api/echo", content=b"{}", headers=forwarded)
    assert r.status_code == 403 and r.json()["error"] == "csrf_rejected"
