"""Each proxied HTTP request is one ``HttpCycle`` (issue 9): what the request learned on its way and what its
answer did, on one object, whatever the outcome, for hooks such as metrics, request ids and an access log.

A recording subclass stands in for ``HttpCycle`` inside a real ``ProxyApp`` (uvicorn, a real upstream), the
way such a hook would see each request once it is over.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from proxy_support import Gateway

import frontdesk.gateway.proxy.app as proxy_app
from frontdesk.gateway.proxy.cycle import HttpCycle


@pytest.fixture
def cycles(monkeypatch: pytest.MonkeyPatch) -> list[HttpCycle]:
    finished: list[HttpCycle] = []

    class Recording(HttpCycle):
        __slots__ = ()

        async def run(self) -> None:
            try:
                await super().run()
            finally:
                finished.append(self)

    monkeypatch.setattr(proxy_app, "HttpCycle", Recording)
    return finished


async def finished_cycle(cycles: list[HttpCycle]) -> HttpCycle:
    """The one request's cycle, once its ``run`` returned (just after the browser got the last byte)."""
    async with asyncio.timeout(10):
        while not cycles:
            await asyncio.sleep(0.005)
    (cycle,) = cycles
    cycles.clear()
    return cycle


async def test_an_answered_request(gw: Gateway, cycles: list[HttpCycle]) -> None:
    async with gw.client() as c:
        r = await c.get("/api/echo?q=1")
    cycle = await finished_cycle(cycles)
    assert r.status_code == 200
    assert (cycle.method, cycle.route.prefix, cycle.target) == ("GET", "/api/", b"/api/echo?q=1")
    assert cycle.grant is not None and cycle.grant.sid == "sid-alice" and cycle.set_cookie is None
    assert cycle.conn is not None and cycle.error is None
    assert (cycle.status, cycle.response_started, cycle.response_complete) == (200, True, True)
    assert cycle.bytes_sent == len(r.content) > 0


async def test_a_streamed_answer_counts_every_byte(gw: Gateway, cycles: list[HttpCycle]) -> None:
    size = 3 * 65536 + 17  # above the size held back for one send: streamed in pieces
    async with gw.client() as c:
        r = await c.get(f"/api/big?n={size}")
    cycle = await finished_cycle(cycles)
    assert len(r.content) == size
    assert (cycle.status, cycle.response_complete, cycle.bytes_sent) == (200, True, size)


async def test_a_rotated_cookie_is_the_cycles(gw: Gateway, cycles: list[HttpCycle]) -> None:
    gw.engine.rotate_next = True
    async with gw.client() as c:
        r = await c.get("/api/echo")
    cycle = await finished_cycle(cycles)
    assert cycle.set_cookie is not None and r.headers["set-cookie"] == cycle.set_cookie


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("POST", "/ro/echo", {}, 405, "method_not_allowed"),
        ("POST", "/api/echo", {"x-csrf": ""}, 403, None),
        ("GET", "/api/echo", {"cookie": "theme=dark"}, 401, None),
        ("GET", "/dead/x", {}, 502, "upstream_unavailable"),
    ],
)
async def test_a_refused_request(
    gw: Gateway, cycles: list[HttpCycle], method: str, path: str, headers: dict[str, Any], status: int, code: str | None
) -> None:
    async with gw.client() as c:
        c.headers.update(headers)
        if not headers.get("x-csrf", "1"):
            del c.headers["x-csrf"]
        r = await c.request(method, path)
    cycle = await finished_cycle(cycles)
    assert r.status_code == status, r.text
    assert cycle.error is not None and cycle.error.status == status
    assert cycle.error.code == r.json()["error"] == (code or cycle.error.code)
    assert (cycle.status, cycle.response_started, cycle.response_complete) == (status, True, True)
    assert cycle.bytes_sent == len(r.content)
    assert cycle.conn is None  # nothing answered upstream
