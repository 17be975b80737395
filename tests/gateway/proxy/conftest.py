"""Fixtures for the proxy tests: ``proxy_factory`` builds a real uvicorn gateway (ProxyApp) and upstream.

Every test that uses it runs twice: on ``frontdesk serve``'s protocol, whose fast path answers proxied requests
without ASGI (``[server] fast_path = true``, the default), and on uvicorn's own protocol, through ASGI (what
``fast_path = false`` and any other ASGI server run).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from proxy_support import FakeEngine, Gateway, Servers, Trust, Upstream, route_config, spa

from frontdesk.gateway.proxy import ProxyApp, parse_proxy_settings, parse_routes
from frontdesk.gateway.serving import FastHttp
from tests.support import loop_factories


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    """Tests marked ``BOTH_LOOPS`` run on asyncio and on uvloop, the loop ``frontdesk serve`` runs (its
    transports differ); the others on asyncio."""
    return loop_factories(item)


SERVER_PROTOCOLS = {"fast": FastHttp, "asgi": "httptools"}


@pytest.fixture(params=list(SERVER_PROTOCOLS))
def server_protocol(request: pytest.FixtureRequest) -> Any:
    """uvicorn's ``http`` option for the gateway under test: the fast path's protocol, or plain ASGI."""
    return SERVER_PROTOCOLS[request.param]


@pytest.fixture
async def proxy_factory(server_protocol: Any) -> AsyncIterator[Any]:
    servers = Servers()
    apps: list[ProxyApp] = []

    async def make(
        *,
        upstream_port: int | None = None,
        trusted: tuple[str, ...] = (),
        proxy: dict[str, Any] | None = None,
    ) -> Gateway:
        upstream = Upstream()
        up_port = upstream_port or await servers.start(upstream)
        routes, problems = parse_routes(route_config(up_port), default_audience="frontdesk-api")
        assert problems == []
        settings, problems = parse_proxy_settings({"max_body_size": "1MB", **(proxy or {})})
        assert problems == []
        engine = FakeEngine()
        app = ProxyApp(routes, engine, settings=settings, trusted=Trust(*trusted), fallback=spa)
        apps.append(app)
        port = await servers.start(app, http=server_protocol)
        return Gateway(port, app, engine, upstream, up_port)

    try:
        yield make
    finally:
        await servers.stop()
        for app in apps:
            await app.aclose()


@pytest.fixture
async def gw(proxy_factory: Any) -> Gateway:
    gateway: Gateway = await proxy_factory()
    return gateway
