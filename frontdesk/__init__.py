"""frontdesk: the names an application needs, in one place.

``from frontdesk import FrontdeskMiddleware, BearerAuth, SessionAuth, KeyRing`` is the supported way in; the
modules behind these names (``frontdesk.middleware.*``) may move. Importing this package pulls in only the core
dependencies (pyjwt, starlette, httpx): no ASGI server, password hasher, SQLite driver or Redis client, so a
bearer-mode WSGI app installs ``frontdesk`` alone. The gateway server is ``frontdesk.gateway`` (``frontdesk[gateway]``);
the Django REST framework class is ``frontdesk.middleware.django_rest`` (Django is optional, so it is not here).
"""

from __future__ import annotations

from .middleware.admission import Admission, AuthBackend, ErrorRenderer, Refusal
from .middleware.asgi import FrontdeskMiddleware
from .middleware.bearer import BearerAuth
from .middleware.clock import Clock
from .middleware.cookies import CookiePolicy, CookiePolicyError
from .middleware.errors import (
    BadCredentials,
    BadRequest,
    CsrfRejected,
    ExpiredToken,
    FrontdeskError,
    InsufficientScope,
    InvalidToken,
    NotAuthenticated,
    RateLimited,
    SessionRevoked,
    StoreError,
    TokenError,
    TokenReused,
)
from .middleware.http import HttpRequest, HttpResponse, json_response
from .middleware.principal import FrontdeskUser
from .middleware.session_mode import SessionAuth
from .middleware.sessions import Authenticator, SessionSettings, User
from .middleware.store import MemoryStore, SessionRecord, Store, store_from_url
from .middleware.tokens import KeyRing, SigningKey
from .middleware.wsgi import FrontdeskWSGIMiddleware

__all__ = [
    # the two adapters and the two modes
    "FrontdeskMiddleware",
    "FrontdeskWSGIMiddleware",
    "BearerAuth",
    "SessionAuth",
    # a backend of your own (the admission pipeline) and a custom error answer
    "Admission",
    "AuthBackend",
    "ErrorRenderer",
    "HttpRequest",
    "HttpResponse",
    "Refusal",
    "json_response",
    # what an app hands to them or gets back
    "Authenticator",
    "Clock",
    "CookiePolicy",
    "FrontdeskUser",
    "KeyRing",
    "SessionSettings",
    "SigningKey",
    "User",
    # session stores
    "MemoryStore",
    "SessionRecord",
    "Store",
    "store_from_url",
    # errors: every one is a FrontdeskError with an HTTP status and a short code
    "FrontdeskError",
    "BadCredentials",
    "BadRequest",
    "CookiePolicyError",
    "CsrfRejected",
    "ExpiredToken",
    "InsufficientScope",
    "InvalidToken",
    "NotAuthenticated",
    "RateLimited",
    "SessionRevoked",
    "StoreError",
    "TokenError",
    "TokenReused",
]
