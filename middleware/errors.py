"""One error base for the library, with small leaf classes (the pyjwt / httpx pattern).

Each error knows the HTTP status and the short machine-readable code that the HTTP layers turn into a
JSON body ``{"error": code, "detail": str(exc)}``; nothing here ever carries a token.
"""

from __future__ import annotations

__all__ = [
    "FrontdeskError",
    "TokenError",
    "InvalidToken",
    "UnknownKey",
    "InsufficientScope",
    "ExpiredToken",
    "NotAuthenticated",
    "SessionRevoked",
    "TokenReused",
    "BadCredentials",
    "RateLimited",
    "Overloaded",
    "CsrfRejected",
    "WebSocketRefused",
    "BadRequest",
    "StoreError",
    "StoreNotReady",
    "OidcLoginFailed",
    "InvalidLoginState",
    "IdTokenRejected",
    "LoginDenied",
    "ProviderRefused",
    "ProviderUnavailable",
    "BadLogoutToken",
]


class FrontdeskError(Exception):
    """Base of every error frontdesk raises on purpose."""

    status: int = 500
    code: str = "internal_error"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None) -> None:
        """A leaf states its HTTP answer in its header, ``class Gone(FrontdeskError, status=410, code="gone")``;
        what it leaves out it inherits."""
        super().__init_subclass__()
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code.replace("_", " "))

    @property
    def detail(self) -> str:
        return str(self)


class TokenError(FrontdeskError, status=401, code="invalid_token"):
    """A token failed verification."""


class InvalidToken(TokenError):
    """Bad signature, wrong type, issuer or audience, missing claim, unknown key, malformed."""


class UnknownKey(InvalidToken):
    """The token's ``kid`` names no key we hold (a JWKS-backed ring may refetch once and retry)."""


class InsufficientScope(FrontdeskError, status=403, code="insufficient_scope"):
    """A valid token that lacks a scope the route requires (RFC 6750 ``insufficient_scope``)."""


class ExpiredToken(TokenError, code="token_expired"):
    """The token's ``exp`` has passed (beyond the leeway) or its ``nbf``/``iat`` lies in the future."""


class NotAuthenticated(FrontdeskError, status=401, code="not_authenticated"):
    """No usable session: no cookie, an invalid one, or a session that ended."""


class SessionRevoked(NotAuthenticated, code="session_revoked"):
    """The session was logged out or revoked."""


class TokenReused(SessionRevoked, code="token_reused"):
    """A refresh token that had already been rotated away was presented: the session is revoked."""


class BadCredentials(FrontdeskError, status=401, code="invalid_credentials"):
    """Wrong username or password (one answer for both, so it names no existing user)."""

    def __init__(self, detail: str = "wrong username or password") -> None:
        super().__init__(detail)


class RateLimited(FrontdeskError, status=429, code="rate_limited"):
    """Too many login attempts; ``retry_after`` seconds go out as ``Retry-After``."""

    def __init__(self, retry_after: int, detail: str = "too many login attempts; try again later") -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(detail)


class Overloaded(RateLimited, status=503, code="overloaded"):
    """The server is at capacity (e.g. every password-hashing slot is taken): try again after ``retry_after``.

    A :class:`RateLimited` so that it shares the one ``Retry-After`` path of the HTTP layers, but a 503: the
    cause is the server's load, not this client's count of attempts, and nothing was counted against it.
    """

    def __init__(self, retry_after: int = 1, detail: str = "the server is busy; try again shortly") -> None:
        super().__init__(retry_after, detail)


class CsrfRejected(FrontdeskError, status=403, code="csrf_rejected"):
    """A request without the CSRF header, or from an origin that is not ours."""


class WebSocketRefused(FrontdeskError, status=403, code="websocket_refused"):
    """A WebSocket upgrade refused: no ``Origin``, a route that takes none, too many sockets for a session."""


class BadRequest(FrontdeskError, status=400, code="bad_request"):
    """A malformed request; ``status`` and ``code`` may be narrowed (413 ``payload_too_large``...)."""

    def __init__(self, detail: str = "bad request", *, status: int = 400, code: str = "bad_request") -> None:
        self.status = status
        self.code = code
        super().__init__(detail)


class StoreError(FrontdeskError, status=503, code="store_unavailable"):
    """The session store could not be reached or answered something impossible.

    ``str(exc)`` carries the specifics for the log (paths, URLs, driver messages); the ``detail`` that
    reaches clients is fixed, so a store URL with a password or a file path never leaks in a response.
    """

    retry_after = 1  # seconds, sent as ``Retry-After``: a client retries soon instead of giving up or hammering

    @property
    def detail(self) -> str:
        return "the session store is unavailable; try again shortly"


class StoreNotReady(StoreError):
    """The store is open but cannot serve requests now (its file gone or locked, its schema not this version's,
    its server not answering): what a readiness check raises.

    ``reason`` is plain words that are safe to show anyone (no path, no URL); ``str(exc)`` adds ``specifics``
    (the path, the driver's message) for the log.
    """

    def __init__(self, reason: str, specifics: str = "") -> None:
        super().__init__(f"{reason} ({specifics})" if specifics else reason)
        self.reason = reason


# --- signing in at an OpenID Provider (middleware/oidc) ---------------------------------------------


class OidcLoginFailed(FrontdeskError, status=400, code="oidc_login_failed"):
    """A login at an OpenID Provider could not be completed; never starts a session."""


class InvalidLoginState(OidcLoginFailed, code="invalid_state"):
    """The callback's ``state`` is missing, does not match the signed login cookie, was used already, or the
    cookie is missing, tampered with or older than its 10 minutes."""


class IdTokenRejected(OidcLoginFailed, status=401, code="invalid_id_token"):
    """The ID token failed validation (signature, algorithm, ``iss``, ``aud``, ``azp``, time, ``nonce``)."""


class LoginDenied(OidcLoginFailed, status=403, code="access_denied"):
    """The provider said no (``error=access_denied``), or the user is outside the allow-lists."""


class ProviderRefused(OidcLoginFailed, code="provider_refused"):
    """The provider's token endpoint answered an OAuth error (``error`` holds its code, e.g. ``invalid_grant``)."""

    def __init__(self, error: str, detail: str = "") -> None:
        self.error = error
        super().__init__(detail or f"the provider refused: {error}")


class ProviderUnavailable(FrontdeskError, status=502, code="provider_unavailable"):
    """The provider could not be reached, or answered something that is not OpenID Connect."""


class BadLogoutToken(FrontdeskError, status=400, code="invalid_logout_token"):
    """A back-channel logout token that fails validation (OpenID Connect Back-Channel Logout 1.0 section 2.6):
    signature, algorithm, ``iss``, ``aud``, ``iat``, the ``events`` member, ``sid``/``sub``, a ``nonce``, or a
    ``jti`` seen before. The provider is told 400, as the specification asks."""
