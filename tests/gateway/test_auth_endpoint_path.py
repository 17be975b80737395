"""The gateway's own ``/auth/*`` is answered by the admission pipeline's endpoint path (issue 9).

One path for the gateway and session mode: ``asgi_io.answer_endpoint`` reads the body up to the endpoints'
``body_limit`` and hands it to their ``respond``. That every bad input gets the same answer from both is pinned
on real servers by ``tests/middleware/adapters/test_admission_table.py``; here, in-process, that the gateway
really goes through the ``Endpoints`` contract rather than a body reader of its own.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from frontdesk.gateway.app import create_app
from frontdesk.gateway.config import load_config
from frontdesk.middleware.admission import Endpoints

SECRETS = {"FRONTDESK_ACCESS_SECRET": "a" * 40, "FRONTDESK_REFRESH_SECRET": "r" * 40}
JSON = {"x-csrf": "1", "content-type": "application/json"}


async def nobody(username: str, password: str) -> None:
    return None


async def test_the_gateways_auth_goes_through_the_endpoint_path(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text('[store]\nurl = "memory://"\n')
    gateway = create_app(load_config(config_path, env=SECRETS), authenticator=nobody)
    assert isinstance(gateway.auth, Endpoints)
    gateway.auth.body_limit = 40  # the gateway reads what the endpoints allow, not a limit of its own
    await gateway.startup()
    try:
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=JSON) as client:
            small = await client.post("/auth/login", content=b'{"username":"ann","password":"pw"}')
            large = await client.post("/auth/login", content=b'{"username":"ann","password":"' + b"p" * 20 + b'"}')
    finally:
        await gateway.shutdown()
    assert small.status_code == 401 and small.json()["error"] == "invalid_credentials", small.text
    assert large.status_code == 413 and large.json()["error"] == "payload_too_large", large.text
    for response in (small, large):  # answered inside the security-headers layer, as before
        assert response.headers["x-content-type-options"] == "nosniff"
