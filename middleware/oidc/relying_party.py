"""frontdesk as the relying party of one OpenID Provider: the authorization URL of a new login, and the
callback's checks up to validated ID-token claims. No HTTP serving here (see gateway/oidc_login.py).

Per provider, one :class:`RelyingParty` holds the discovery cache, the JWKS cache, the ID-token validator and
the token-endpoint client; they share one httpx client (connection reuse to the provider), closed by
:meth:`aclose`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from ..clock import Clock, system_clock
from ..errors import InvalidLoginState, LoginDenied, OidcLoginFailed
from ..jwks import JwksSource
from .config import ProviderConfig
from .discovery import Discovery, ProviderMetadata
from .id_tokens import IdTokenValidator
from .login_state import LoginState, safe_return_path
from .pkce import code_challenge, new_nonce, new_state, new_verifier
from .token_client import TokenClient

__all__ = ["CompletedLogin", "RelyingParty"]

HTTP_TIMEOUT = 10.0
_PROVIDER_ERROR_DETAIL = 300  # characters of the provider's error_description worth repeating


@dataclass(frozen=True, slots=True)
class CompletedLogin:
    """A login the callback accepted: the validated ID-token claims, the whole token response (for whoever
    keeps the provider's tokens), and where the browser goes next."""

    provider: str
    claims: Mapping[str, Any]
    token_response: Mapping[str, Any]
    return_to: str


class RelyingParty:
    def __init__(
        self,
        config: ProviderConfig,
        *,
        clock: Clock = system_clock,
        transport: httpx.AsyncBaseTransport | None = None,
        jwks_min_refetch_interval: float = 30.0,
    ) -> None:
        self.config = config
        self.clock = clock
        self.http = httpx.AsyncClient(transport=transport, timeout=HTTP_TIMEOUT, follow_redirects=False)
        self.discovery = Discovery(config.issuer, http=self.http, clock=clock)
        self.tokens = TokenClient(
            client_id=config.client_id,
            client_secret=config.client_secret,
            auth_method=config.token_endpoint_auth_method,
            http=self.http,
            private_key=config.private_key,
            issuer=config.issuer,
            clock=clock,
        )
        self._transport = transport
        self._jwks_interval = jwks_min_refetch_interval
        self._validator: IdTokenValidator | None = None

    @property
    def name(self) -> str:
        return self.config.name

    async def metadata(self) -> ProviderMetadata:
        return await self.discovery.metadata()

    async def begin(self, redirect_uri: str, return_to: str | None) -> tuple[str, LoginState]:
        """The authorization URL to send the browser to, and the login state to keep in its cookie."""
        meta = await self.metadata()
        login = LoginState(
            provider=self.name,
            state=new_state(),
            nonce=new_nonce(),
            verifier=new_verifier(),
            return_to=safe_return_path(return_to),
        )
        query = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": login.state,
            "nonce": login.nonce,
            "code_challenge": code_challenge(login.verifier),
            "code_challenge_method": "S256",
        }
        return _with_query(meta.authorization_endpoint, query), login

    async def complete(self, login: LoginState, params: Mapping[str, str], redirect_uri: str) -> CompletedLogin:
        """The callback after its ``state`` matched ``login``: the provider's error, the RFC 9207 ``iss``, the
        code exchange, the ID token, the allow-lists. Raises an :class:`OidcLoginFailed` (or
        :class:`ProviderUnavailable`) saying why; nothing is started on failure."""
        meta = await self.metadata()
        iss = params.get("iss")
        if iss is not None and iss != meta.issuer:
            # RFC 9207: the answer comes from another provider (a mix-up attack), whatever it says next.
            raise InvalidLoginState("the answer names another issuer than the provider this login started with")
        if iss is None and meta.authorization_response_iss_parameter_supported:
            raise InvalidLoginState("the provider always sends iss, and this answer has none")
        error = params.get("error")
        if error is not None:
            # Anyone can put text into this URL: repeat it only printable and short (it reaches logs and pages).
            described = _printable(params.get("error_description") or "", _PROVIDER_ERROR_DETAIL)
            detail = f"the provider answered {_printable(error, 64)}" + (f": {described}" if described else "")
            if error in ("access_denied", "login_required", "consent_required", "interaction_required"):
                raise LoginDenied(detail)
            raise OidcLoginFailed(detail)
        code = params.get("code")
        if not code:
            raise OidcLoginFailed("the provider's answer has no code")
        answer = await self.tokens.exchange_code(
            meta.token_endpoint, code=code, redirect_uri=redirect_uri, code_verifier=login.verifier
        )
        claims = await self._id_tokens(meta).validate(
            answer["id_token"], nonce=login.nonce, algorithms=meta.id_token_signing_alg_values_supported
        )
        self.check_allowed(claims)
        return CompletedLogin(provider=self.name, claims=claims, token_response=answer, return_to=login.return_to)

    def check_allowed(self, claims: Mapping[str, Any]) -> None:
        """The allow-lists: ``groups`` must share one of ``allowed_groups``, ``email`` must be at one of
        ``allowed_email_domains`` (when set); :class:`LoginDenied` otherwise."""
        config = self.config
        if config.allowed_groups:
            groups = claims.get("groups")
            member_of = {g for g in groups if isinstance(g, str)} if isinstance(groups, list) else set()
            if not member_of & set(config.allowed_groups):
                raise LoginDenied("your account is not in a group allowed to sign in here")
        if config.allowed_email_domains:
            email = claims.get("email")
            domain = email.rsplit("@", 1)[1].lower() if isinstance(email, str) and "@" in email else None
            if domain not in config.allowed_email_domains:
                raise LoginDenied("your e-mail domain is not allowed to sign in here")
            if claims.get("email_verified") is False:
                raise LoginDenied("your e-mail address is not verified at the provider")

    def username(self, claims: Mapping[str, Any]) -> str:
        """The ``username_claim`` (a non-empty string), else the ``sub``."""
        value = claims.get(self.config.username_claim)
        return value if isinstance(value, str) and value.strip() else str(claims["sub"])

    async def id_token_validator(self) -> IdTokenValidator:
        """The validator holding this provider's JWKS cache (back-channel logout tokens use its keys too)."""
        return self._id_tokens(await self.metadata())

    def _id_tokens(self, meta: ProviderMetadata) -> IdTokenValidator:
        if self._validator is None or self._validator.jwks.url != meta.jwks_uri:
            jwks = JwksSource(
                meta.jwks_uri, min_refetch_interval=self._jwks_interval, clock=self.clock, transport=self._transport
            )
            self._validator = IdTokenValidator(
                issuer=meta.issuer, client_id=self.config.client_id, jwks=jwks, clock=self.clock
            )
        return self._validator

    async def aclose(self) -> None:
        await self.http.aclose()


def _printable(text: str, limit: int) -> str:
    return "".join(c if c.isprintable() else " " for c in text[:limit])


def _with_query(url: str, query: Mapping[str, str]) -> str:
    """``url`` with ``query`` added to whatever query it has (some providers put one in their endpoint)."""
    parts = urlsplit(url)
    extra = urlencode(query)
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))
