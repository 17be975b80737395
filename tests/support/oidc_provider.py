"""A real OpenID Provider for the tests: panva's certified ``oidc-provider`` (npm, in ``tests/oidc/``) run by
node in a subprocess on a free loopback port. Nothing about the provider is mocked.

- :func:`running_provider` starts one (clients, users and token lifetimes as arguments) and waits until its
  discovery document answers; the session fixture ``oidc_provider`` (in :mod:`tests.support.fixtures`) is one
  such provider with :data:`DEFAULT_CLIENTS` and :data:`DEFAULT_USERS` for the whole run.
- :func:`provider_login` drives the provider's devInteractions login and consent forms with httpx, from an
  authorization URL to the redirect back to the relying party (returned, not followed), so a test without a
  browser can complete a login.
- :meth:`OidcProvider.counts` reads how often each grant succeeded at the token endpoint (``/_test/counts``,
  the one test-only route of ``tests/oidc/provider.mjs``).

Clients are ``application_type = "native"`` with loopback redirect URIs, so the provider accepts them on any
port (RFC 8252 section 7.3, implemented by oidc-provider): one session-wide provider serves gateways started
later on ports nobody knew in advance. A client that needs an exact ``backchannel_logout_uri`` (which has no
such port rule) is given to :func:`running_provider` by the test that knows its gateway's port.
"""

from __future__ import annotations

import html.parser
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from .ports import free_port
from .processes import ServerProcess

__all__ = [
    "DEFAULT_CLIENTS",
    "DEFAULT_USERS",
    "OIDC_DIR",
    "OidcClient",
    "OidcProvider",
    "OidcUser",
    "ensure_provider_installed",
    "provider_login",
    "running_provider",
    "sign_out_at_provider",
]

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
TEST_TOKEN_KEY = "test-only-idp-token-key-" + "k" * 24  # FRONTDESK_OIDC_TOKEN_KEY of the test gateways
START_TIMEOUT = 60.0  # node + oidc-provider start in about a second; a loaded CI machine may take longer


@dataclass(frozen=True)
class OidcClient:
    """A confidential client registered at the provider. ``redirect_uris`` etc. are full URLs; loopback ones
    match any port (native client)."""

    client_id: str
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    auth_method: str = "client_secret_basic"  # or "client_secret_post", or "private_key_jwt" (with jwks)
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    jwks: tuple[Mapping[str, Any], ...] = ()  # the client's public keys (private_key_jwt)

    def metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "application_type": "native",
            "token_endpoint_auth_method": self.auth_method,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
        }
        if self.jwks:
            data["jwks"] = {"keys": [dict(key) for key in self.jwks]}
        if self.backchannel_logout_uri:
            data["backchannel_logout_uri"] = self.backchannel_logout_uri
            data["backchannel_logout_session_required"] = True
        return data


@dataclass(frozen=True)
class OidcUser:
    """A user the provider knows: ``sub`` is also what the login form takes (devInteractions makes the typed
    login the account id), with any password."""

    sub: str
    claims: Mapping[str, Any]

    def config(self) -> dict[str, Any]:
        return {"sub": self.sub, "claims": dict(self.claims)}


def loopback_uris(path: str) -> tuple[str, ...]:
    """``path`` on both loopback names (any port matches: native client)."""
    return (f"http://127.0.0.1{path}", f"http://localhost{path}")


def _client(client_id: str, provider_name: str, auth_method: str) -> OidcClient:
    return OidcClient(
        client_id=client_id,
        auth_method=auth_method,
        redirect_uris=loopback_uris(f"/auth/oidc/{provider_name}/callback"),
        post_logout_redirect_uris=loopback_uris("/"),
    )


# One client per token-endpoint authentication method; the [[oidc]] name each expects is in its redirect URI.
DEFAULT_CLIENTS: tuple[OidcClient, ...] = (
    _client("frontdesk", "corp", "client_secret_basic"),
    _client("frontdesk-post", "partner", "client_secret_post"),
)

DEFAULT_USERS: tuple[OidcUser, ...] = (
    OidcUser("alice", {"preferred_username": "alice", "email": "alice@example.com", "groups": ["staff"]}),
    OidcUser("bob", {"preferred_username": "bob", "email": "bob@elsewhere.test", "groups": ["guests"]}),
)


@dataclass
class OidcProvider:
    """A running provider: ``issuer`` (also its base URL), its clients by id, its users by sub."""

    issuer: str
    port: int
    clients: dict[str, OidcClient]
    users: dict[str, OidcUser]
    process: ServerProcess

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        return dict(httpx.get(self.discovery_url, timeout=10).json())

    def counts(self) -> dict[str, Any]:
        """``{"grants": {"authorization_code": n, "refresh_token": m}, "backchannel_logout": k, ...}``."""
        return dict(httpx.get(f"{self.issuer}/_test/counts", timeout=10).json())

    def client(self, client_id: str = "frontdesk") -> OidcClient:
        return self.clients[client_id]

    def secret_env(self, provider_name: str, client_id: str = "frontdesk") -> dict[str, str]:
        """The environment variable a gateway reads this client's secret from, for ``[[oidc]] name``, and the key
        that seals the provider's tokens kept with each session (needed once any provider is configured)."""
        return {
            f"FRONTDESK_OIDC_{provider_name.upper()}_CLIENT_SECRET": self.clients[client_id].client_secret,
            "FRONTDESK_OIDC_TOKEN_KEY": TEST_TOKEN_KEY,
        }

    def log(self) -> str:
        return self.process.log()


def ensure_provider_installed() -> None:
    """``tests/oidc/node_modules`` present (``.ci/run`` runs ``npm ci --prefix tests/oidc``); installs it once
    from the lock file if missing and npm is here, skips (fails on CI) when node is absent."""
    if shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed; .ci/run needs it for the OpenID Provider tests")
        pytest.skip("node is not installed (the OpenID Provider tests run oidc-provider)")
    if (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"{OIDC_DIR}/node_modules is missing and npm is not installed: run `npm ci --prefix tests/oidc`")
    subprocess.run([npm, "ci", "--prefix", str(OIDC_DIR), "--no-audit", "--no-fund"], check=True, timeout=600)


@contextmanager
def running_provider(
    workdir: Path,
    *,
    clients: Sequence[OidcClient] = DEFAULT_CLIENTS,
    users: Sequence[OidcUser] = DEFAULT_USERS,
    ttl: Mapping[str, int] | None = None,
    rotate_refresh_token: bool = True,
    host: str = "127.0.0.1",
    name: str = "oidc-provider",
) -> Iterator[OidcProvider]:
    """Start ``tests/oidc/provider.mjs`` on a free port (issuer ``http://{host}:{port}``), wait until discovery
    answers, stop it on exit. ``ttl`` in seconds per artifact (``AccessToken``, ``IdToken``, ``RefreshToken``,
    ``Session``, ``Grant``, ``Interaction``, ``AuthorizationCode``)."""
    ensure_provider_installed()
    port = free_port()
    issuer = f"http://{host}:{port}"
    settings = {
        "port": port,
        "issuer": issuer,
        "clients": [c.metadata() for c in clients],
        "users": [u.config() for u in users],
        "ttl": dict(ttl or {}),
        "rotateRefreshToken": rotate_refresh_token,
    }
    env = {**os.environ, "OIDC_PROVIDER_CONFIG": json.dumps(settings)}
    args = ["node", str(OIDC_DIR / "provider.mjs")]
    with ServerProcess(args, workdir / f"{name}.log", cwd=OIDC_DIR, env=env, name=name) as process:
        process.wait_answers(f"{issuer}/.well-known/openid-configuration", status=200, timeout=START_TIMEOUT)
        yield OidcProvider(
            issuer=issuer,
            port=port,
            clients={c.client_id: c for c in clients},
            users={u.sub: u for u in users},
            process=process,
        )


# --- driving the devInteractions forms -----------------------------------------------------------


class _Forms(html.parser.HTMLParser):
    """The forms of a page: action and the named inputs' values (the devInteractions pages are plain HTML)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.forms.append((values.get("action") or "", {}))
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1][1][values["name"] or ""] = values.get("value") or ""


def _form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(page.text)
    assert parser.forms, f"no form on {page.url} ({page.status_code}):\n{page.text[:2000]}"
    action, fields = parser.forms[0]
    return urljoin(str(page.url), action), fields


def provider_login(
    authorize_url: str,
    login: str,
    *,
    password: str = "any-password",
    browser: httpx.Client | None = None,
    max_steps: int = 12,
) -> str:
    """Follow ``authorize_url`` through the provider's login form (as ``login``, a user's sub) and consent
    form, and return the URL the provider finally redirects to (the relying party's callback with ``code``,
    ``state`` and ``iss``, or with ``error``), without requesting it. ``browser`` keeps the provider's cookies between
    calls (single sign-on); a fresh client is used otherwise."""
    own = browser is None
    client = browser or httpx.Client(timeout=30)
    provider = httpx.URL(authorize_url)
    try:
        response = client.get(authorize_url)
        for _ in range(max_steps):
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                there = httpx.URL(target)
                if (there.scheme, there.host, there.port) != (provider.scheme, provider.host, provider.port):
                    return target  # back to the relying party
                response = client.get(target)
                continue
            action, fields = _form(response)
            if fields.get("prompt") == "login":
                fields.update(login=login, password=password)
            response = client.post(action, data=fields)
        raise AssertionError(f"the provider did not redirect back within {max_steps} steps (last: {response.url})")
    finally:
        if own:
            client.close()


def sign_out_at_provider(browser: httpx.Client, url: str) -> httpx.Response:
    """Follow an end-session URL in the provider's session (``browser``): its confirmation form, "yes". The
    provider calls each client's ``backchannel_logout_uri`` before it answers."""
    page = browser.get(url)
    action, fields = _form(page)
    return browser.post(action, data={**fields, "logout": "yes"})
