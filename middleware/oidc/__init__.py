"""frontdesk as an OpenID Connect relying party (authorization code + PKCE, confidential client).

One concern per module: ``config`` (what is trusted), ``discovery`` (the provider's metadata), ``pkce``,
``login_state`` (the signed cookie between login and callback, and the return path), ``id_tokens`` (ID-token
validation), ``token_client`` (the token and revocation endpoints), and ``relying_party``, which puts them
together for one provider. The gateway serves it at ``/auth/oidc/{name}/login`` and ``/callback``.
"""

from .config import AUTH_METHODS, DEFAULT_SCOPES, ProviderConfig
from .discovery import Discovery, ProviderMetadata
from .id_tokens import IdTokenValidator
from .login_state import LOGIN_STATE_COOKIE, LoginState, LoginStateCookie, safe_return_path
from .relying_party import CompletedLogin, RelyingParty
from .token_client import TokenClient

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_SCOPES",
    "LOGIN_STATE_COOKIE",
    "CompletedLogin",
    "Discovery",
    "IdTokenValidator",
    "LoginState",
    "LoginStateCookie",
    "ProviderConfig",
    "ProviderMetadata",
    "RelyingParty",
    "TokenClient",
    "safe_return_path",
]
