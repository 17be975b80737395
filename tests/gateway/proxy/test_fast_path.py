"""The fast path (issue 11): under ``frontdesk serve``'s protocol a plain request on a proxied route is answered
by the protocol itself (``proxy/fast.py``), everything else by the ASGI app; the rest of this directory's battery
runs on both (``conftest.server_protocol``). These tests show which side answered what, and what only the fast
path's own byte writer decides (pipelining order, HEAD, framing, keep-alive)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from proxy_support import Gateway, Servers, raw_request, refresh_cookie
from uvicorn.server import ServerState

from frontdesk.gateway.app import create_app
from frontdesk.gateway.config import load_config
from frontdesk.gateway.errors import ConfigError
from frontdesk.gateway.proxy.app import ProxyApp
from frontdesk.gateway.proxy.fast import header_lines
from frontdesk.gateway.serving import DrainingHttp, FastHttp, uvicorn_options

ENV = {"FRONTDESK_ACCESS_SECRET": "a" * 32, "FRONTDESK_REFRESH_SECRET": "b" * 32}


@pytest.fixture
def sides(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The client side each proxied exchange ran with: ``ProtocolClient`` (fast path) or ``AsgiClient``."""
    seen: list[str] = []
    run_cycle = ProxyApp.run_cycle

    async def recording(self: ProxyApp, scope: Any, client: Any, route: Any, raw_path: bytes) -> None:
        seen.append(type(client).__name__)
        await run_cycle(self, scope, client, route, raw_path)

    monkeypatch.setattr(ProxyApp, "run_cycle", recording)
    return seen


def _get(path: str, *, cookie: bool = True, extra: str = "") -> bytes:
    head = f"GET {path} HTTP/1.1\r\nhost: gw\r\nx-csrf: 1\r\n"
    if cookie:
        head += f"cookie: {refresh_cookie('alice', 'sid-alice')}\r\n"
    return (head + extra + "\r\n").encode()


@pytest.mark.parametrize("server_protocol", [FastHttp])
async def test_proxied_requests_take_the_fast_path_and_the_rest_go_to_asgi(gw: Gateway, sides: list[str]) -> None:
    async with gw.client() as c:
        answered = await c.get("/api/echo", params={"q": "1"})
        assert answered.status_code == 200 and answered.json()["target"] == "/api/echo?q=1"
        assert sides == ["ProtocolClient"]
        assert (await c.get("/")).json() == {"spa": "/"}  # the SPA: the ASGI app's
        refused = await c.get("/api/%2e%2e/admin")  # a bad path on a route: refused by the ASGI side
        assert refused.status_code == 400 and refused.json()["error"] == "bad_path"
        assert (await c.post("/api/echo", json={})).status_code == 200  # a body: the fast path too
    assert sides == ["ProtocolClient", "ProtocolClient"]


@pytest.mark.parametrize("server_protocol", ["httptools"])
async def test_uvicorns_own_protocol_answers_everything_through_asgi(gw: Gateway, sides: list[str]) -> None:
    async with gw.client() as c:
        assert (await c.get("/api/echo")).status_code == 200
    assert sides == ["AsgiClient"]


@pytest.mark.parametrize("server_protocol", [FastHttp, "httptools"])
async def test_pipelined_requests_are_answered_in_order_across_both_sides(gw: Gateway) -> None:
    # proxied, SPA (ASGI), proxied, refused on the fast path (no session), last one closes: one write for all
    data = _get("/api/echo?n=1") + _get("/app") + _get("/api/echo?n=3") + _get("/api/echo?n=4", cookie=False)
    data += _get("/api/echo?n=5", extra="connection: close\r\n")
    out = await raw_request(gw.port, data)
    answers = out.split(b"HTTP/1.1 ")[1:]  # each body runs straight into the next status line
    assert [a[:3] for a in answers] == [b"200", b"200", b"200", b"401", b"200"], out
    assert b"n=1" in answers[0] and b'"spa": "/app"' in answers[1] and b"n=3" in answers[2]
    assert b"n=5" in answers[4] and b"connection: close" in answers[4]


@pytest.mark.parametrize("server_protocol", [FastHttp])
async def test_head_and_streamed_answers_are_framed_by_the_fast_path(gw: Gateway) -> None:
    head = await raw_request(gw.port, _get("/api/echo", extra="connection: close\r\n").replace(b"GET", b"HEAD", 1))
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n"), head  # a head, never a body
    big = await raw_request(gw.port, _get("/api/big?n=200000", extra="connection: close\r\n"))
    head_part, _, body = big.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head_part  # no length from the upstream: chunked, as uvicorn does
    assert body.endswith(b"0\r\n\r\n")
    size = 0
    while body:
        line, _, body = body.partition(b"\r\n")
        n = int(line, 16)
        size += n
        body = body[n + 2 :]
        if n == 0:
            break
    assert size == 200000


def _config(tmp_path: Path, server: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[server]\n{server}\n[[routes]]\nprefix = "/api/"\nupstream = "http://127.0.0.1:9"\n')
    return path


def test_the_gateway_offers_the_fast_path_for_its_routes_only_and_it_can_be_turned_off(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path), env=ENV)
    assert config.fast_path is True
    assert uvicorn_options(config)["http"] is FastHttp
    fast = create_app(config).fast_path
    assert fast is not None
    assert fast.route("/api/orders", b"/api/orders") is not None
    for own in ("/auth/login", "/healthz", "/readyz", "/.well-known/jwks.json", "/metrics", "/index.html"):
        assert fast.route(own, own.encode()) is None, own
    off = load_config(_config(tmp_path, "fast_path = false"), env=ENV)
    assert uvicorn_options(off)["http"] is DrainingHttp
    assert create_app(off).fast_path is None


def test_a_fast_path_setting_that_is_not_a_boolean_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fast_path"):
        load_config(_config(tmp_path, 'fast_path = "yes"'), env=ENV)


@pytest.mark.parametrize("level", ["info", "trace"])
async def test_frontdesk_serves_own_uvicorn_options_find_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    """What ``frontdesk serve`` hands uvicorn (one worker: the app; several: the factory) reaches the protocol
    unwrapped, so its proxied requests take the fast path; ``--log-level trace`` wraps the app: no fast path."""
    path = _config(tmp_path)
    config = load_config(path, env=ENV)
    monkeypatch.setenv("FRONTDESK_CONFIG", str(path))
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    for app, factory in ((create_app(config), False), ("frontdesk.gateway.asgi:app_factory", True)):
        options = uvicorn_options(config, log_level=level)
        options.pop("log_config")  # not this test's business (it would reconfigure pytest's logging)
        served = uvicorn.Config(app, factory=factory, lifespan="on", **options)
        served.load()
        protocol = served.http_protocol_class(config=served, server_state=ServerState(), app_state={})  # type: ignore[call-arg]
        assert isinstance(protocol, FastHttp)
        assert (protocol._fast is not None) == (level != "trace"), (app, level)


async def _raw_upstream(head: bytes) -> tuple[Any, int]:
    """An upstream that answers every request with ``head`` and the body ``ok``, then closes."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head + b"\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("value", "passes"),
    [(b"a\tb", True), (b"caf\xe9", True), (b"a\x01b", False), (b"a\x1fb", False), (b"a\x7fb", False)],
)
async def test_an_upstream_header_value_with_a_control_byte_never_reaches_the_browser(
    proxy_factory: Any, value: bytes, passes: bool
) -> None:
    """Response splitting's cousins: a control byte (other than a tab) in an upstream's header value is refused
    by the upstream parser (502) on both sides, before the writer's own check; tabs and obs-text pass as they
    came. The fast path's writer (``ProtocolClient.start``) keeps its own check for every header it writes."""
    server, port = await _raw_upstream(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-up: " + value)
    try:
        gw = await proxy_factory(upstream_port=port)
        answer = await raw_request(gw.port, _get("/api/x", extra="connection: close\r\n"))
    finally:
        server.close()
    if passes:
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert b"\r\nx-up: " + value + b"\r\n" in answer
    else:
        assert answer.startswith(b"HTTP/1.1 502 "), answer  # the upstream parser refuses it
        assert value not in answer


_CONTROL_BYTES = [bytes([b]) for b in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F)]


@pytest.mark.parametrize("byte", _CONTROL_BYTES)
@pytest.mark.parametrize("where", ["name", "value"])
def test_the_fast_writer_refuses_any_control_byte_in_a_header_it_writes(byte: bytes, where: str) -> None:
    """What uvicorn's own writer refuses (its HEADER_VALUE_RE), the fast path's refuses too, CR and LF included:
    whether it came from the upstream, a rotated cookie or the gateway's own headers."""
    bad = (b"x-" + byte + b"a", b"v") if where == "name" else (b"x-a", b"v" + byte + b"w")
    with pytest.raises(RuntimeError, match="Invalid HTTP header value"):
        header_lines([(b"content-type", b"text/plain"), bad, (b"x-b", b"1")])


def test_the_fast_writer_renders_tabs_and_obs_text_as_they_came() -> None:
    headers = [(b"x-a", b"1\t2"), (b"x-b", b"caf\xe9"), (b"set-cookie", b"a=b; Path=/")]
    assert header_lines(headers) == b"x-a: 1\t2\r\nx-b: caf\xe9\r\nset-cookie: a=b; Path=/\r\n"
    assert header_lines([]) == b""


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    return head + await asyncio.wait_for(reader.readexactly(length), 5)


@pytest.mark.parametrize("server_protocol", [FastHttp])
async def test_an_idle_keep_alive_connection_is_closed_after_the_timeout_and_a_busy_one_is_not(
    proxy_factory: Any,
) -> None:
    # FastHttp keeps one keep-alive timer per connection rather than one per answer: the rule must not change.
    gw: Gateway = await proxy_factory()
    servers = Servers()  # the same proxy once more, with a 1 s keep-alive timeout (uvicorn's default is 5 s)
    port = await servers.start(gw.app, http=FastHttp, timeout_keep_alive=1)
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        began = loop.time()
        for n in range(5):  # a request every 0.4 s for 2 s: never idle for the whole second
            writer.write(_get(f"/api/echo?n={n}"))
            assert (await _read_answer(reader)).startswith(b"HTTP/1.1 200 ")
            await asyncio.sleep(0.4)
        assert loop.time() - began > 1.5
        writer.write(_get("/api/echo?n=last"))
        assert (await _read_answer(reader)).startswith(b"HTTP/1.1 200 ")
        answered = loop.time()
        assert await asyncio.wait_for(reader.read(1), 5) == b""  # closed by the server ...
        assert 0.8 < loop.time() - answered < 2.5  # ... about a second after the last answer
    finally:
        writer.close()
        await servers.stop()
