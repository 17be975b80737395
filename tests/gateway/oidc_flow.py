"""Driving ``/auth/oidc/{name}/login`` and ``/callback`` of a live gateway against the real test provider with
httpx: the gateway half carries its cookies by hand (as :class:`AuthClient` does), the provider half goes
through :func:`tests.support.oidc_provider.provider_login`. Import as ``from oidc_flow import ...``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from live_gateway import AuthClient, SetCookie, set_cookies

from frontdesk.middleware.oidc import LOGIN_STATE_COOKIE
from tests.support.oidc_provider import OidcProvider, provider_login

__all__ = [
    "NAVIGATION",
    "Started",
    "callback_path",
    "finish_login",
    "gateway_tables",
    "provider_table",
    "secrets_env",
    "sign_in",
    "start_login",
    "with_params",
]


# What Chromium sends for a top-level navigation (the provider redirecting the browser back).
NAVIGATION = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
}


def provider_table(provider: OidcProvider, name: str, client_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "issuer": provider.issuer,
        "client_id": client_id,
        "scopes": ["openid", "profile", "email", "groups", "offline_access"],
        **extra,
    }


def gateway_tables(provider: OidcProvider, **extra: Any) -> dict[str, Any]:
    """``[[oidc]]`` corp (client_secret_basic) and partner (client_secret_post) at the test provider."""
    return {
        "oidc": [
            provider_table(provider, "corp", "frontdesk"),
            provider_table(provider, "partner", "frontdesk-post", token_endpoint_auth_method="client_secret_post"),
        ],
        **extra,
    }


def secrets_env(provider: OidcProvider) -> dict[str, str]:
    return {**provider.secret_env("corp", "frontdesk"), **provider.secret_env("partner", "frontdesk-post")}


@dataclass
class Started:
    """A login started at the gateway: its answer, the login-state cookie it set, the provider URL."""

    response: httpx.Response
    state_cookie: SetCookie
    authorize_url: str

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.authorize_url).query).items()}


def start_login(client: AuthClient, name: str = "corp", return_to: str | None = "/dashboard") -> Started:
    query = f"?{urlencode({'return_to': return_to})}" if return_to is not None else ""
    response = client.request("GET", f"/auth/oidc/{name}/login{query}", csrf=False, follow=False)
    assert response.status_code == 302, response.text
    (state_cookie,) = [c for c in set_cookies(response) if c.name == LOGIN_STATE_COOKIE]
    return Started(response, state_cookie, response.headers["location"])


def callback_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def with_params(url: str, **changes: str | None) -> str:
    """``url`` with query parameters replaced (``None`` drops one)."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return parts._replace(query=urlencode(query)).geturl()


def finish_login(
    client: AuthClient, callback_url: str, state_cookie: str | None, *, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """Request the callback with the login-state cookie (and no refresh cookie). By default as a script would
    (``Accept: application/json``: errors answer JSON saying why); pass :data:`NAVIGATION` as ``headers`` for
    what a browser's top-level navigation gets (errors: a redirect to the SPA with a reason code)."""
    sent = {"Accept": "application/json"}
    if state_cookie is not None:
        sent["Cookie"] = f"{LOGIN_STATE_COOKIE}={state_cookie}"
    sent.update(headers or {})
    return client.request("GET", callback_path(callback_url), csrf=False, cookie=None, headers=sent)


def sign_in(
    client: AuthClient, login: str = "alice", name: str = "corp", return_to: str | None = "/dashboard"
) -> httpx.Response:
    """The whole flow; returns the callback's answer (a 302 with the refresh cookie when it worked)."""
    started = start_login(client, name, return_to)
    back = provider_login(started.authorize_url, login)
    return finish_login(client, back, started.state_cookie.value)
