"""Callbacks in progress per client address are capped (each one calls the provider's token endpoint), with
the same 429 + Retry-After as password logins; a refused callback leaves the login usable."""

from __future__ import annotations

import dataclasses
import json

from frontdesk.gateway.oidc_login import OidcLogin
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.http import HttpRequest
from frontdesk.middleware.oidc import LoginStateCookie, ProviderConfig, RelyingParty
from frontdesk.middleware.sessions import SessionEngine
from frontdesk.middleware.store.memory import MemoryStore
from frontdesk.middleware.tokens import KeyRing


async def nobody(username: str, password: str) -> None:
    return None


async def test_a_second_callback_from_one_address_waits_its_turn() -> None:
    clock = ManualClock()
    engine = SessionEngine.from_keys(
        access_keyring=KeyRing.from_secrets("a" * 40), refresh_keyring=KeyRing.from_secrets("r" * 40),
        store=MemoryStore(), authenticator=nobody, clock=clock,
    )  # fmt: skip
    party = RelyingParty(ProviderConfig("corp", "https://idp.example.com", "frontdesk", "secret"), clock=clock)
    endpoints = OidcLogin(
        engine, {"corp": party}, LoginStateCookie(b"k" * 32, clock=clock), max_concurrent_per_address=1, clock=clock
    )
    request = HttpRequest(
        "GET",
        "/auth/oidc/corp/callback",
        {"host": "gw", "accept": "application/json"},
        client="10.0.0.1",
        query=b"state=s",
    )
    assert endpoints.in_progress is not None
    with endpoints.in_progress.hold("10.0.0.1"):  # one callback of this address is talking to the provider
        busy = await endpoints.respond(request)
        other = await endpoints.respond(dataclasses.replace(request, client="10.0.0.2"))
    assert busy.status == 429 and ("retry-after", "1") in busy.headers
    assert json.loads(busy.body)["error"] == "rate_limited"
    assert not any(name == "set-cookie" for name, _ in busy.headers)  # the login itself is not ended
    with endpoints.in_progress.hold("10.0.0.1"):  # the browser's own navigation: back to the SPA, saying why
        navigation = {"host": "gw", "accept": "text/html", "sec-fetch-mode": "navigate"}
        sent_back = await endpoints.respond(dataclasses.replace(request, headers=navigation))
    assert sent_back.status == 302 and ("location", "/?login_error=rate_limited") in sent_back.headers
    assert not any(name == "set-cookie" for name, _ in sent_back.headers)
    assert other.status == 400  # another address goes on (to the state check: no login cookie here)
    assert (await endpoints.respond(request)).status == 400  # and so does this one once the first is done
    await party.aclose()
