"""Who made the request: the user object the adapters hand to the wrapped app.

``FrontdeskUser`` is a Starlette ``BaseUser``, so ``request.user`` / ``request.auth`` and Starlette's
``@requires("scope")`` work unchanged in Starlette and FastAPI; WSGI apps find the same object in
``environ["frontdesk.user"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser

from .paths import token_scopes
from .readonly import read_only

__all__ = [
    "FrontdeskUser",
    "AuthCredentials",
    "UnauthenticatedUser",
    "SCOPE_CLAIMS",
    "ENV_USER",
    "ENV_CLAIMS",
    "ACCESS_TOKEN_KEY",
    "anonymous",
]

SCOPE_CLAIMS = "frontdesk.claims"  # the raw verified claims, in the ASGI scope
ENV_USER = "frontdesk.user"  # WSGI environ keys
ENV_CLAIMS = "frontdesk.claims"
# Session mode: the current access token (scope and environ), for an app that calls other APIs as the user.
ACCESS_TOKEN_KEY = "frontdesk.access_token"  # noqa: S105 (a key name, not a secret)


class FrontdeskUser(BaseUser):
    """An authenticated user: ``id`` is the token's ``sub``, ``username`` its ``preferred_username``."""

    def __init__(self, claims: Mapping[str, Any]) -> None:
        # Read-only: one user object (and its claims) may serve every request of a token.
        self.claims: Mapping[str, Any] = read_only(claims)
        self.id: str = str(claims["sub"])
        name = claims.get("preferred_username")
        self.username: str = name if isinstance(name, str) and name else self.id
        self.scopes = token_scopes(self.claims)
        # "authenticated" is Starlette's convention for @requires("authenticated"). The scopes are a tuple, not
        # Starlette's list, so the object can be shared by every request of one token: no request can widen
        # another's scopes by appending to them.
        self._credentials = AuthCredentials()
        self._credentials.scopes = ("authenticated", *sorted(self.scopes))  # type: ignore[assignment]

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.username

    @property
    def identity(self) -> str:
        return self.id

    # Django's user conventions, for Django and DRF code that reads them (DRF's UserRateThrottle keys on ``pk``).
    @property
    def pk(self) -> str:
        return self.id

    @property
    def is_anonymous(self) -> bool:
        return False

    @property
    def session_id(self) -> str:
        return str(self.claims.get("sid", ""))

    def credentials(self) -> AuthCredentials:
        return self._credentials

    def __repr__(self) -> str:
        return f"FrontdeskUser(id={self.id!r}, username={self.username!r})"


def anonymous() -> tuple[UnauthenticatedUser, AuthCredentials]:
    return UnauthenticatedUser(), AuthCredentials()
