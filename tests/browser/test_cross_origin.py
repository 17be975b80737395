"""A page from another origin cannot log the user out or touch their data through the gateway.

The gateway is browsed as http://localhost:PORT; the attacker's page is served from http://127.0.0.1:OTHER,
a different origin and a different site. It tries form posts (into frames and at the top level) and
fetches, with and without the X-CSRF header, against /auth/logout and /api/items. Afterwards the user's
session and items must be exactly as before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from string import Template

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.support import free_port

from .helpers import ConsoleWatch, Credentials, add_item, claims, login, screenshot, wait_for_dashboard
from .servers import Stack

ATTACK_PAGE = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Totally harmless page</title></head>
<body>
<h1>Win a prize!</h1>
<ol id="log"></ol>
<iframe name="sink1" title="sink1"></iframe>
<iframe name="sink2" title="sink2"></iframe>
<iframe name="sink3" title="sink3"></iframe>
<form id="f-logout" method="post" action="$gw/auth/logout" target="sink1">
  <input name="x" value="1"></form>
<form id="f-create" method="post" action="$gw/api/items" target="sink2">
  <input name="text" value="pwned by form"></form>
<form id="f-create-plain" method="post" action="$gw/api/items" target="sink3" enctype="text/plain">
  <input name='{"text":"pwned by text/plain","x":"' value='"}'></form>
<script>
const gw = "$gw";
const log = (line) => {
  const li = document.createElement("li");
  li.textContent = line;
  document.getElementById("log").append(li);
};
const attempt = async (name, url, init) => {
  try { const r = await fetch(url, init); log(name + ": status " + r.status + " (" + r.type + ")"); }
  catch (e) { log(name + ": blocked (" + e.name + ")"); }
};
const loaded = (name) => new Promise((resolve) =>
  document.querySelector("iframe[name=" + name + "]").addEventListener("load", resolve, { once: true }));
const framesLoaded = Promise.all(["sink1", "sink2", "sink3"].map(loaded));
(async () => {
  document.getElementById("f-logout").submit();
  document.getElementById("f-create").submit();
  document.getElementById("f-create-plain").submit();
  await attempt("fetch no-cors logout", gw + "/auth/logout",
    { method: "POST", mode: "no-cors", credentials: "include" });
  await attempt("fetch logout with X-CSRF", gw + "/auth/logout",
    { method: "POST", credentials: "include", headers: { "X-CSRF": "1" } });
  await attempt("fetch no-cors create", gw + "/api/items",
    { method: "POST", mode: "no-cors", credentials: "include", body: '{"text":"pwned by no-cors fetch"}' });
  await attempt("fetch create with X-CSRF", gw + "/api/items", { method: "POST", credentials: "include",
    headers: { "X-CSRF": "1", "Content-Type": "application/json" }, body: '{"text":"pwned by cors fetch"}' });
  await attempt("fetch delete with X-CSRF", gw + "/api/items/$item", { method: "DELETE", credentials: "include",
    headers: { "X-CSRF": "1" } });
  await attempt("fetch read items", gw + "/api/items", { credentials: "include", headers: { "X-CSRF": "1" } });
  await framesLoaded;
  log("done");
  document.body.dataset.done = "1";
})();
</script>
<form id="top-logout" method="post" action="$gw/auth/logout"><button>Claim the prize</button></form>
<form id="top-create" method="post" action="$gw/api/items"><input name="text" value="pwned at top level">
  <button>Claim another prize</button></form>
</body></html>
""")


class _AttackServer(ThreadingHTTPServer):
    page = b""


class _AttackHandler(BaseHTTPRequestHandler):
    server: _AttackServer

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.server.page)))
        self.end_headers()
        self.wfile.write(self.server.page)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[_AttackServer]:
    server = _AttackServer(("127.0.0.1", free_port()), _AttackHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _state(page: Page) -> tuple[int, list[str]]:
    """What the page's own script gets from /api/items: (status, item texts)."""
    status, texts = page.evaluate(
        """async () => {
            const r = await fetch('/api/items', { headers: { 'X-CSRF': '1' } });
            return [r.status, r.ok ? (await r.json()).items.map((i) => i.text) : []];
        }"""
    )
    return status, texts


def test_another_origin_cannot_log_out_or_change_data(
    page: Page,
    context: BrowserContext,
    stack: Stack,
    user: Credentials,
    attacker: _AttackServer,
    console: ConsoleWatch,
) -> None:
    login(page, stack, user)
    add_item(page, "keep me")
    item_id = page.locator("#items-list .item").first.get_attribute("data-id")
    assert _state(page) == (200, ["keep me"])
    cookies_before = context.cookies(stack.base_url)
    assert [c["name"] for c in cookies_before if c["name"] == "__Host-frontdesk"] == ["__Host-frontdesk"]

    attacker.page = ATTACK_PAGE.substitute(gw=stack.base_url, item=item_id).encode()
    evil_url = f"http://127.0.0.1:{attacker.server_address[1]}/"
    assert not evil_url.startswith(stack.base_url)
    evil = context.new_page()
    evil.goto(evil_url)
    expect(evil.locator("body")).to_have_attribute("data-done", "1")
    log = evil.locator("#log").inner_text()
    screenshot(evil, "09-cross-origin-attack-page")
    # Nothing readable came back: CORS-mode requests were blocked, no-cors ones are opaque.
    assert "status 200 (cors)" not in log and "status 204 (cors)" not in log, log

    # Top-level form posts, as if the user clicked the attacker's buttons.
    evil.goto(evil_url)
    expect(evil.locator("body")).to_have_attribute("data-done", "1")
    evil.get_by_role("button", name="Claim the prize").click()
    evil.wait_for_load_state()
    evil.goto(evil_url)
    expect(evil.locator("body")).to_have_attribute("data-done", "1")
    evil.get_by_role("button", name="Claim another prize").click()
    evil.wait_for_load_state()
    evil.close()

    # Nothing changed: the same cookie (read before any call of ours could rotate it), the same session,
    # the same items, and the app still works.
    cookies_after = context.cookies(stack.base_url)
    assert [c["value"] for c in cookies_after] == [c["value"] for c in cookies_before]
    assert _state(page) == (200, ["keep me"])
    page.reload()
    wait_for_dashboard(page)
    expect(page.locator("#items-list .item")).to_have_count(1)
    expect(page.locator("#items-list")).to_contain_text("keep me")
    assert claims(page)["jti"]
    screenshot(page, "10-dashboard-after-attack")
