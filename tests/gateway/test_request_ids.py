"""Request ids in-process: which id a request gets, that every response start carries it, and that the edge
layer gets there without copying the request (the proxy writes the id upstream: test_proxy_headers.py)."""

from __future__ import annotations

import copy
from typing import Any

from frontdesk.gateway.edge import GatewayEdge
from frontdesk.gateway.request_ids import RequestIds, current_request_id, is_sane
from frontdesk.gateway.security_headers import SecurityHeaders
from frontdesk.middleware.forwarded import TrustedProxies


class Inner:
    """Records the scope it was called with and the id in the context, then answers with ``start``."""

    def __init__(self, start: dict[str, Any]) -> None:
        self.start = start
        self.scope: Any = None
        self.context_id: str | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        self.context_id = current_request_id()
        await send(self.start)


async def run(start: dict[str, Any], *, kind: str = "http", peer: str = "203.0.113.9", given: bytes | None = None):
    inner, sent = Inner(start), []
    headers = [(b"host", b"gw")] + ([(b"x-request-id", given)] * 2 if given is not None else [])
    layer = GatewayEdge(inner, ids=RequestIds(trusted=TrustedProxies(["10.0.0.0/8"])), security=SecurityHeaders())

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": kind, "headers": headers, "client": (peer, 1234), "path": "/", "method": "GET"}
    original, answer = list(headers), copy.deepcopy(start)
    await layer(scope, None, send)
    # The request goes on exactly as it came: no copy of the scope, nothing added to or taken from its headers.
    assert inner.scope is scope and scope["headers"] is headers and headers == original
    out = [v for n, v in sent[0]["headers"] if n == b"x-request-id"]
    assert len(out) == 1 and inner.context_id == out[0].decode()  # exactly one id, the one in the logs
    assert start == answer  # the inner app's own message is left as it was (a copy went out)
    return out[0]


async def test_an_untrusted_peer_gets_a_fresh_id_and_a_trusted_proxy_keeps_its_own() -> None:
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"from-upstream")]}
    fresh = await run(start, given=b"chosen-by-client")
    assert fresh != b"chosen-by-client" and len(fresh) == 32
    assert await run(start, given=b"chosen-by-client") != fresh  # unique per request
    assert await run(start, peer="10.1.2.3", given=b"nginx-req-1") == b"nginx-req-1"
    assert await run(start, peer="10.1.2.3", given=b"bad id\t") != b"bad id\t"
    assert len(await run(start, peer="10.1.2.3")) == 32  # a trusted proxy that sent none


async def test_websocket_accepts_and_refusals_carry_the_id() -> None:
    assert len(await run({"type": "websocket.accept"}, kind="websocket")) == 32
    refusal = {"type": "websocket.http.response.start", "status": 403, "headers": []}
    assert len(await run(refusal, kind="websocket")) == 32


def test_sane_ids() -> None:
    for good in (b"a", b"0b6c0d2e-7f1a-4c3b-9e8d-7a6f5e4d3c2b", b"01HV3K:nginx/1+x=", b"x" * 128):
        assert is_sane(good), good
    for bad in (b"", b"x" * 129, b"two words", b"line\nbreak", b'quote"', b"\xff"):
        assert not is_sane(bad), bad
