"""What the relying party knows about one OpenID Provider it trusts: its issuer, frontdesk's client there, and
who may sign in. Built by the gateway from an ``[[oidc]]`` table (gateway/oidc_settings.py) or by an app."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..keys import PrivateKey

__all__ = ["AUTH_METHODS", "DEFAULT_SCOPES", "ProviderConfig"]

DEFAULT_SCOPES = ("openid", "profile", "email")
# How the client authenticates at the token endpoint: with its secret (RFC 6749 2.3.1), or with a JWT signed by
# its private key (private_key_jwt: OpenID Connect Core 9, RFC 7523), whose public key the provider holds.
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One provider. ``client_secret`` and ``private_key`` are kept out of ``repr`` (logs, tracebacks);
    ``private_key`` is needed for (and only used by) ``private_key_jwt``, which needs no client secret."""

    name: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    username_claim: str = "preferred_username"
    allowed_groups: tuple[str, ...] = ()
    allowed_email_domains: tuple[str, ...] = ()
    token_endpoint_auth_method: str = AUTH_METHODS[0]
    session_claims: tuple[str, ...] = ()  # the ID-token claims GET /auth/session shows (never tokens)
    private_key: PrivateKey | None = field(default=None, repr=False)
