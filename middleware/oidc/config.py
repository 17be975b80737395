"""What the relying party knows about one OpenID Provider it trusts: its issuer, frontdesk's client there, and
who may sign in. Built by the gateway from an ``[[oidc]]`` table (gateway/oidc_settings.py) or by an app."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AUTH_METHODS", "DEFAULT_SCOPES", "ProviderConfig"]

DEFAULT_SCOPES = ("openid", "profile", "email")
AUTH_METHODS = ("client_secret_basic", "client_secret_post")  # how the client authenticates at the token endpoint


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One provider. ``client_secret`` is kept out of ``repr`` (logs, tracebacks)."""

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
