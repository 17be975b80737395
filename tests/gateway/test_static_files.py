"""The SPA's static files: security headers, SPA fallback, and JSON refusals instead of 500s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.static_files import SecureStaticFiles


@pytest.fixture
def static(tmp_path: Path) -> SecureStaticFiles:
    (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
    (tmp_path / "app.js").write_text("export {};")
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "panel.js").write_text("export {};")
    return SecureStaticFiles(tmp_path)


def client(app: SecureStaticFiles) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_files_and_the_spa_fallback_carry_security_headers(static: SecureStaticFiles) -> None:
    async with client(static) as c:
        for path in ("/", "/app.js", "/settings/profile"):
            r = await c.get(path)
            assert r.status_code == 200, path
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
            assert r.headers["x-content-type-options"] == "nosniff"
        assert (await c.get("/settings/profile")).text.startswith("<!doctype html>")


@pytest.mark.parametrize("path", ["/favicon.ico", "/app.js.map", "/ui", "/" + "a" * 300 + ".js"])
async def test_missing_or_odd_paths_are_json_404s(static: SecureStaticFiles, path: str) -> None:
    async with client(static) as c:
        r = await c.get(path)
    assert r.status_code == 404, (path, r.text)
    assert r.json()["error"] == "not_found"


async def test_an_overlong_client_route_still_gets_the_spa_shell(static: SecureStaticFiles) -> None:
    async with client(static) as c:
        r = await c.get("/" + "a" * 300)  # too long a name for the filesystem: not a file, so the SPA
    assert r.status_code == 200 and r.text.startswith("<!doctype html>")


@pytest.mark.parametrize("path", ["/../../../../etc/passwd", "/ui/../../x", "/./index.html"])
async def test_dot_segments_never_reach_the_filesystem(static: SecureStaticFiles, path: str) -> None:
    # Sent as a raw ASGI scope: HTTP clients would normalise these paths before sending them.
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "root_path": "",
    }
    await static(scope, receive, send)
    assert sent[0]["status"] == 404


async def test_writes_are_refused(static: SecureStaticFiles) -> None:
    async with client(static) as c:
        r = await c.post("/", content=b"x")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


async def test_a_websocket_upgrade_outside_every_route_is_closed(static: SecureStaticFiles) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await static({"type": "websocket", "path": "/", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
