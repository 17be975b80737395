"""The SPA's static files: security headers, SPA fallback, and JSON refusals instead of 500s."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontdesk.gateway.static_files import ClientSettings, SecureStaticFiles


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


@pytest.mark.parametrize(
    "path", ["/.git/config", "/.env", "/.git/", "/.git", "/ui/.secret.js", "/.well-known/thing", "/ui/.hidden/panel.js"]
)
async def test_dotfiles_and_dot_directories_are_never_served(tmp_path: Path, path: str) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[remote] url = https://token@example.com/x.git")
    (tmp_path / ".git" / "index.html").write_text("secret index")
    (tmp_path / ".env").write_text("FRONTDESK_REFRESH_SECRET=secret")
    (tmp_path / "ui" / ".hidden").mkdir(parents=True)
    (tmp_path / "ui" / ".hidden" / "panel.js").write_text("secret")
    (tmp_path / "ui" / ".secret.js").write_text("secret")
    async with client(SecureStaticFiles(tmp_path)) as c:
        r = await c.get(path)
        missing = await c.get("/no-such-file.js")
    assert r.status_code == 404, (path, r.text)
    assert r.content == missing.content and r.headers["content-type"] == missing.headers["content-type"]
    assert b"secret" not in r.content


@pytest.mark.parametrize(
    ("target", "location"),
    [("/ui", "/ui/"), ("/ui?tab=2", "/ui/?tab=2"), ("//ui", "/ui/"), ("/caf%C3%A9", "/caf%C3%A9/")],
)
async def test_the_directory_redirect_is_relative_whatever_the_host(tmp_path: Path, target: str, location: str) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
    for name in ("ui", "café"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.html").write_text("<!doctype html><title>sub</title>")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    raw_path, _, query = target.partition("?")
    from urllib.parse import unquote

    for host in (b"evil.example", b"a b", b"gw.example:8443"):
        sent.clear()
        scope = {
            "type": "http",
            "method": "GET",
            "scheme": "https",
            "path": unquote(raw_path),
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "headers": [(b"host", host)],
            "root_path": "",
            "server": ("127.0.0.1", 8000),
        }
        await SecureStaticFiles(tmp_path)(scope, receive, send)
        headers = dict(sent[0]["headers"])
        assert sent[0]["status"] in (301, 302, 307, 308), sent[0]
        assert headers[b"location"].decode() == location


SHELL = """<!doctype html>
<html><head>
  <meta charset="utf-8">
  <meta name="frontdesk-csrf-header" content="X-CSRF">
  <META content='/auth' NAME=frontdesk-auth-prefix />
  <meta name="frontdesk-csrf-header-note" content="left alone">
  <title>app</title>
</head><body></body></html>"""


def _settings(html: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, content in re.findall(r'<meta name="(frontdesk-(?:auth-prefix|csrf-header))" content="([^"]*)">', html):
        found.setdefault(name, []).append(content)
    return found


async def test_the_shell_carries_the_gateways_client_settings(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(SHELL)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.html").write_text(SHELL)
    settings = ClientSettings(auth_prefix="/account", csrf_header="x-requested-by")
    async with client(SecureStaticFiles(tmp_path, client=settings)) as c:
        shells = [await c.get(path) for path in ("/", "/index.html", "/settings/profile")]
        other_page = await c.get("/docs/")
    for r in shells:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.headers["cache-control"] == "no-cache"
        assert "script-src 'self'" in r.headers["content-security-policy"]
        # Each tag filled in where the page had it, once; a look-alike name is not ours.
        assert _settings(r.text) == {"frontdesk-csrf-header": ["x-requested-by"], "frontdesk-auth-prefix": ["/account"]}
        assert '<meta name="frontdesk-csrf-header-note" content="left alone">' in r.text
        assert int(r.headers["content-length"]) == len(r.content)
    assert shells[0].content == shells[1].content == shells[2].content
    assert other_page.text == SHELL  # only the shell is rendered


async def test_missing_tags_are_added_to_the_head(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><html><head><title>app</title></HEAD><body></body></html>")
    async with client(SecureStaticFiles(tmp_path, client=ClientSettings(csrf_header="x-requested-by"))) as c:
        page = (await c.get("/")).text
    assert _settings(page) == {"frontdesk-auth-prefix": ["/auth"], "frontdesk-csrf-header": ["x-requested-by"]}
    assert page.index("frontdesk-csrf-header") < page.index("</HEAD>")


async def test_without_client_settings_the_shell_is_served_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(SHELL)
    async with client(SecureStaticFiles(tmp_path)) as c:
        assert (await c.get("/")).text == SHELL


async def test_the_shell_etag_follows_the_settings_and_the_file(tmp_path: Path) -> None:
    shell = tmp_path / "index.html"
    shell.write_text(SHELL)
    one = SecureStaticFiles(tmp_path, client=ClientSettings(csrf_header="x-csrf"))
    other = SecureStaticFiles(tmp_path, client=ClientSettings(csrf_header="x-requested-by"))
    async with client(one) as c1, client(other) as c2:
        first = await c1.get("/")
        etag = first.headers["etag"]
        again = await c1.get("/", headers={"if-none-match": etag})
        assert again.status_code == 304 and again.content == b""
        # The same file under another header setting (a restarted gateway): a browser's cached copy is stale.
        changed = await c2.get("/", headers={"if-none-match": etag})
        assert changed.status_code == 200 and _settings(changed.text)["frontdesk-csrf-header"] == ["x-requested-by"]
        # A deploy changes the file: new body, new ETag.
        shell.write_text(SHELL.replace("<title>app</title>", "<title>app v2</title>"))
        deployed = await c1.get("/", headers={"if-none-match": etag})
        assert deployed.status_code == 200 and "app v2" in deployed.text and deployed.headers["etag"] != etag
        head = await c1.head("/")
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == deployed.headers["etag"]
