"""The request-id layer in-process: which id a request gets, and that every response start carries it."""

from __future__ import annotations

from typing import Any

from frontdesk.gateway.request_ids import RequestIds, current_request_id, is_sane
from frontdesk.middleware.forwarded import TrustedProxies


class Inner:
    """Records the request headers and the id in the context, then answers with ``start``."""

    def __init__(self, start: dict[str, Any]) -> None:
        self.start = start
        self.headers: list[tuple[bytes, bytes]] = []
        self.context_id: str | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.headers = scope["headers"]
        self.context_id = current_request_id()
        await send(self.start)


async def run(start: dict[str, Any], *, kind: str = "http", peer: str = "203.0.113.9", given: bytes | None = None):
    inner, sent = Inner(start), []
    headers = [(b"host", b"gw")] + ([(b"x-request-id", given)] * 2 if given is not None else [])
    layer = RequestIds(inner, trusted=TrustedProxies(["10.0.0.0/8"]))

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await layer({"type": kind, "headers": headers, "client": (peer, 1234)}, None, send)
    ids = [v for n, v in inner.headers if n == b"x-request-id"]
    assert len(ids) == 1  # the request carries exactly one, whatever came in
    out = [v for n, v in sent[0]["headers"] if n == b"x-request-id"]
    assert out == ids and inner.context_id == ids[0].decode()
    return ids[0]


async def test_an_untrusted_peer_gets_a_fresh_id_and_a_trusted_proxy_keeps_its_own() -> None:
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"from-upstream")]}
    fresh = await run(start, given=b"chosen-by-client")
    assert fresh != b"chosen-by-client" and len(fresh) == 32
    assert await run(start, given=b"chosen-by-client") != fresh  # unique per request
    assert await run(start, peer="10.1.2.3", given=b"nginx-req-1") == b"nginx-req-1"
    assert await run(start, peer="10.1.2.3", given=b"bad id\t") != b"bad id\t"


async def test_websocket_accepts_and_refusals_carry_the_id() -> None:
    assert len(await run({"type": "websocket.accept"}, kind="websocket")) == 32
    refusal = {"type": "websocket.http.response.start", "status": 403, "headers": []}
    assert len(await run(refusal, kind="websocket")) == 32


def test_sane_ids() -> None:
    for good in (b"a", b"0b6c0d2e-7f1a-4c3b-9e8d-7a6f5e4d3c2b", b"01HV3K:nginx/1+x=", b"x" * 128):
        assert is_sane(good), good
    for bad in (b"", b"x" * 129, b"two words", b"line\nbreak", b'quote"', b"\xff"):
        assert not is_sane(bad), bad
