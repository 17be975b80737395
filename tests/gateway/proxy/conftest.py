from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from proxy_support import FakeEngine, Trust, Upstream, free_port, refresh_cookie, serve, spa

from gateway.proxy import ProxyApp, parse_proxy_settings, parse_routes


@dataclass
class Gateway:
    port: int
    app: ProxyApp
    engine: FakeEngine
    upstream: Upstream
    upstream_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, user: str | None = "alice", sid: str | None = None, **kw: Any) -> httpx.AsyncClient:
        cookies = {}
        headers = {"x-csrf": "1"}
        if user is not None:
            name, _, value = refresh_cookie(user, sid or f"sid-{user}").partition("=")
            headers["cookie"] = f"theme=dark; {name}={value}; lang=en"
        headers.update(kw.pop("headers", {}))
        return httpx.AsyncClient(base_url=self.url, headers=headers, cookies=cookies, timeout=30, **kw)


def route_config(up: int) -> list[dict[str, Any]]:
    base = f"http://127.0.0.1:{up}"
    return [
        {"prefix": "/api/", "upstream": base, "audience": "orders-api"},
        {"prefix": "/open/", "upstream": f"{base}/api/", "auth": "none", "csrf": False},
        {"prefix": "/opt/", "upstream": f"{base}/api/", "auth": "optional", "csrf": False},
        {"prefix": "/slowapi/", "upstream": f"{base}/api/", "timeout": "300ms"},
        {"prefix": "/ws/", "upstream": f"{base}/api/", "websocket": True},
        {"prefix": "/dead/", "upstream": f"http://127.0.0.1:{free_port()}/"},
        {"prefix": "/bigup/", "upstream": f"{base}/up/", "max_body_size": "1GiB", "methods": ["POST", "PUT"]},
        {"prefix": "/ro/", "upstream": f"{base}/api/", "methods": ["GET"]},
    ]


@pytest.fixture
async def gateway_factory() -> AsyncIterator[Any]:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:

        async def make(
            *,
            upstream_port: int | None = None,
            trusted: tuple[str, ...] = (),
            proxy: dict[str, Any] | None = None,
        ) -> Gateway:
            upstream = Upstream()
            up_port = upstream_port or await stack.enter_async_context(serve(upstream))
            routes, problems = parse_routes(route_config(up_port), default_audience="frontdesk-api")
            assert problems == []
            settings, problems = parse_proxy_settings({"max_body_size": "1MB", **(proxy or {})})
            assert problems == []
            engine = FakeEngine()
            app = ProxyApp(routes, engine, settings=settings, trusted=Trust(*trusted), fallback=spa)
            stack.push_async_callback(app.aclose)
            port = await stack.enter_async_context(serve(app))
            return Gateway(port, app, engine, upstream, up_port)

        yield make


@pytest.fixture
async def gw(gateway_factory: Any) -> Gateway:
    gateway: Gateway = await gateway_factory()
    return gateway
