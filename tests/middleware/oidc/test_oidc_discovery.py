"""Discovery: the issuer in the document must be the configured one, endpoints must be https with an https
issuer, the document is cached (one fetch for many concurrent logins) and a failure is retried at most once
per interval; and the token client's answers (OAuth errors, unreachable provider) and client authentication."""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import ProviderRefused, ProviderUnavailable
from frontdesk.middleware.oidc import Discovery, TokenClient

ISSUER = "https://idp.example.com/realms/corp"


def document(**override: Any) -> dict[str, Any]:
    base = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/certs",
        "id_token_signing_alg_values_supported": ["RS256"],
        "authorization_response_iss_parameter_supported": True,
        "end_session_endpoint": f"{ISSUER}/logout",
    }
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


class Provider:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        if isinstance(self.answer, httpx.Response):
            return self.answer
        return httpx.Response(200, json=self.answer)


def discovery(provider: Provider, clock: ManualClock) -> Discovery:
    return Discovery(ISSUER, http=httpx.AsyncClient(transport=httpx.MockTransport(provider)), clock=clock)


async def test_metadata_is_fetched_once_and_cached() -> None:
    clock = ManualClock()
    provider = Provider(document())
    source = discovery(provider, clock)
    results = await asyncio.gather(*(source.metadata() for _ in range(20)))
    assert {m.token_endpoint for m in results} == {f"{ISSUER}/token"}
    assert len(provider.requests) == 1
    assert str(provider.requests[0].url) == f"{ISSUER}/.well-known/openid-configuration"
    assert results[0].authorization_response_iss_parameter_supported is True
    clock.advance(3601)
    await source.metadata()
    assert len(provider.requests) == 2


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        (document(issuer="https://evil.example.com"), "names issuer"),
        (document(issuer=ISSUER + "/"), "names issuer"),
        (document(token_endpoint="http://idp.example.com/token"), "not https"),
        (document(jwks_uri=None), "lacks jwks_uri"),
        (document(end_session_endpoint="javascript:alert(1)"), "not a URL"),
        (document(id_token_signing_alg_values_supported="RS256"), "not a list"),
        (["not", "an", "object"], "not a JSON object"),
    ],
)
async def test_a_document_that_cannot_be_trusted_is_refused(
    doc: Any, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ProviderUnavailable):
        await discovery(Provider(doc), ManualClock()).metadata()
    assert why in caplog.text


async def test_an_unreachable_provider_is_retried_at_most_once_per_interval() -> None:
    clock = ManualClock()
    provider = Provider(httpx.ConnectError("refused"))
    source = discovery(provider, clock)
    for _ in range(5):
        with pytest.raises(ProviderUnavailable):
            await source.metadata()
    assert len(provider.requests) == 1
    clock.advance(6)
    provider.answer = document()
    assert (await source.metadata()).issuer == ISSUER


def token_client(provider: Provider, method: str, secret: str = "s3cr:et%+") -> TokenClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(provider))
    return TokenClient(client_id="front desk", client_secret=secret, auth_method=method, http=http)


async def test_client_secret_basic_and_post() -> None:
    provider = Provider({"access_token": "at", "id_token": "it", "token_type": "Bearer"})
    await token_client(provider, "client_secret_basic").exchange_code(
        f"{ISSUER}/token", code="c", redirect_uri="https://app/cb", code_verifier="v"
    )
    request = provider.requests[-1]
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "front+desk:s3cr%3Aet%25%2B"  # RFC 6749 2.3.1
    form = parse_qs(request.content.decode())
    assert form["grant_type"] == ["authorization_code"] and "client_secret" not in form

    await token_client(provider, "client_secret_post").refresh(f"{ISSUER}/token", refresh_token="rt")
    request = provider.requests[-1]
    assert "authorization" not in request.headers
    form = parse_qs(request.content.decode())
    assert form["client_id"] == ["front desk"] and form["client_secret"] == ["s3cr:et%+"]
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["rt"]


async def test_oauth_errors_and_broken_answers() -> None:
    refusing = Provider(httpx.Response(400, json={"error": "invalid_grant", "error_description": "gone"}))
    with pytest.raises(ProviderRefused) as info:
        await token_client(refusing, "client_secret_basic").refresh(f"{ISSUER}/token", refresh_token="rt")
    assert info.value.error == "invalid_grant" and "s3cr" not in str(info.value)
    for answer in (httpx.Response(500, text="oops"), httpx.Response(200, text="<html>"), httpx.ConnectError("x"),
                   httpx.Response(200, json={"token_type": "Bearer"})):  # fmt: skip
        with pytest.raises(ProviderUnavailable):
            await token_client(Provider(answer), "client_secret_basic").exchange_code(
                f"{ISSUER}/token", code="c", redirect_uri="https://app/cb", code_verifier="v"
            )
    with pytest.raises(ValueError, match="private_key_jwt"):
        token_client(Provider({}), "private_key_jwt")
