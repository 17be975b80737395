"""An https upstream: verified against a configured CA file, refused when the certificate is not trusted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_support import FakeEngine, Trust, Upstream, refresh_cookie, spa

from frontdesk.gateway.proxy import ProxyApp, parse_proxy_settings, parse_routes
from tests.support import serve_in_loop
from tests.support.certificates import self_signed


@pytest.mark.parametrize("trust_the_ca", [True, False])
async def test_https_upstream(tmp_path: Path, trust_the_ca: bool, server_protocol: Any) -> None:
    cert, key = self_signed(tmp_path)
    upstream = Upstream()
    async with serve_in_loop(upstream, ssl_certfile=str(cert), ssl_keyfile=str(key)) as up:
        routes, problems = parse_routes(
            [{"prefix": "/api/", "upstream": f"https://127.0.0.1:{up.port}"}], default_audience="a"
        )
        settings, more = parse_proxy_settings({"tls_ca_file": str(cert)} if trust_the_ca else {})
        assert problems == more == []
        app = ProxyApp(routes, FakeEngine(), settings=settings, trusted=Trust(), fallback=spa)
        async with serve_in_loop(app, http=server_protocol) as gateway:
            headers = {"x-csrf": "1", "cookie": refresh_cookie("alice", "sid-alice")}
            async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as c:
                r = await c.get("/api/echo")
                if trust_the_ca:
                    assert r.status_code == 200 and r.json()["target"] == "/api/echo"
                    assert (await c.get("/api/echo")).status_code == 200
                    assert len({s.client_port for s in upstream.seen}) == 1  # TLS keep-alive reused
                else:
                    assert r.status_code == 502 and r.json()["error"] == "upstream_unavailable"
                    assert upstream.seen == []
        await app.aclose()
