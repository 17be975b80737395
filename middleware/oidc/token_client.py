"""The provider's token and revocation endpoints, as frontdesk's confidential client (RFC 6749, RFC 7009).

One place that authenticates the client (``client_secret_basic`` or ``client_secret_post``, RFC 6749
section 2.3.1, or ``private_key_jwt``, OpenID Connect Core section 9 / RFC 7523) and reads the provider's
answers: the code exchange of the login, and the refresh and revocation the IdP-token features build on.
An OAuth error answer raises :class:`ProviderRefused` with the
provider's ``error`` code (``invalid_grant`` ...); anything else that went wrong, :class:`ProviderUnavailable`.
The client secret is never logged and never part of an exception's text.
"""

from __future__ import annotations

import base64
import logging
import secrets
from typing import Any
from urllib.parse import quote_plus

import httpx
import jwt

from ..clock import Clock, system_clock
from ..errors import ProviderRefused, ProviderUnavailable
from ..keys import PrivateKey, algorithm_of, thumbprint
from .config import AUTH_METHODS

__all__ = ["TokenClient"]

log = logging.getLogger("frontdesk.oidc")
MAX_ANSWER_BYTES = 64 * 1024
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60  # seconds: each assertion is made for one request, single use (its jti)


class TokenClient:
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        auth_method: str,
        http: httpx.AsyncClient,
        private_key: PrivateKey | None = None,
        issuer: str | None = None,
        clock: Clock = system_clock,
    ) -> None:
        """``private_key`` and ``issuer`` (the assertion's audience) for ``private_key_jwt``."""
        if auth_method not in AUTH_METHODS:
            raise ValueError(f"token endpoint auth method {auth_method!r} is not one of {', '.join(AUTH_METHODS)}")
        if auth_method == "private_key_jwt" and (private_key is None or not issuer):
            raise ValueError("private_key_jwt needs the client's private key and the provider's issuer")
        self.client_id = client_id
        self._secret = client_secret
        self._private_key = private_key
        self._issuer = issuer
        self.auth_method = auth_method
        self.http = http
        self.clock = clock

    def client_assertion(self) -> str:
        """A fresh ``private_key_jwt`` assertion: ``iss`` and ``sub`` the client id, ``aud`` the provider's
        issuer (what current guidance recommends over an endpoint URL, and what every endpoint of the provider
        accepts), a random ``jti``, one minute of validity; signed with the algorithm the key's type allows,
        named by its RFC 7638 thumbprint."""
        key = self._private_key
        assert key is not None  # checked in __init__
        now = int(self.clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self._issuer,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        public = key.public_key()
        return jwt.encode(claims, key, algorithm=algorithm_of(public), headers={"kid": thumbprint(public)})

    async def exchange_code(
        self, token_endpoint: str, *, code: str, redirect_uri: str, code_verifier: str
    ) -> dict[str, Any]:
        """The token response of an authorization code (``id_token``, ``access_token``, maybe ``refresh_token``)."""
        answer = await self.post(
            token_endpoint,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
        )
        if not isinstance(answer.get("id_token"), str) or not isinstance(answer.get("access_token"), str):
            raise ProviderUnavailable("the provider's token response has no id_token or access_token")
        return answer

    async def refresh(self, token_endpoint: str, *, refresh_token: str, scope: str | None = None) -> dict[str, Any]:
        """A new token response for ``refresh_token`` (``ProviderRefused("invalid_grant")`` when it is dead)."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if scope:
            form["scope"] = scope
        answer = await self.post(token_endpoint, form)
        if not isinstance(answer.get("access_token"), str):
            raise ProviderUnavailable("the provider's refresh answer has no access_token")
        return answer

    async def revoke(self, revocation_endpoint: str, *, token: str, token_type_hint: str = "refresh_token") -> None:  # noqa: S107
        """RFC 7009: the provider answers 200 for a token it revoked or never knew."""
        await self.post(revocation_endpoint, {"token": token, "token_type_hint": token_type_hint}, expect_json=False)

    async def post(self, url: str, form: dict[str, str], *, expect_json: bool = True) -> dict[str, Any]:
        """POST ``form`` with the client's authentication; the JSON object answered (``{}`` when not expected)."""
        headers = {"accept": "application/json"}
        if self.auth_method == "client_secret_basic":
            # RFC 6749 2.3.1: both parts form-urlencoded before Basic (a secret with ":" or "%" stays intact).
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self._secret)}".encode()
            headers["authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif self.auth_method == "private_key_jwt":
            form = {
                **form,
                "client_id": self.client_id,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.client_assertion(),
            }
        else:
            form = {**form, "client_id": self.client_id, "client_secret": self._secret}
        try:
            response = await self.http.post(url, data=form, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("OpenID Provider endpoint %s unreachable: %s", url, type(exc).__name__)
            raise ProviderUnavailable("the OpenID Provider could not be reached") from exc
        if len(response.content) > MAX_ANSWER_BYTES:
            raise ProviderUnavailable("the OpenID Provider's answer is too large")
        body = _json_object(response)
        if response.status_code == 200:
            if expect_json and body is None:
                raise ProviderUnavailable("the OpenID Provider's answer is not a JSON object")
            return body or {}
        error = body.get("error") if body else None
        if response.status_code in (400, 401) and isinstance(error, str):
            log.info("OpenID Provider endpoint %s refused: %s", url, error)
            raise ProviderRefused(error)
        log.warning("OpenID Provider endpoint %s answered %d", url, response.status_code)
        raise ProviderUnavailable(f"the OpenID Provider answered {response.status_code}")


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
