"""Bearer mode for Django REST framework: an authentication class in the place of simplejwt's.

``FrontdeskAuthentication`` verifies ``Authorization: Bearer`` access tokens minted by a frontdesk gateway with
the very :class:`BearerAuth` the ASGI and WSGI adapters use (key ring or JWKS, ``typ``, ``iss``, ``aud``, times,
optional revocations); this module only translates between DRF and it. Configuration is one Django setting::

    FRONTDESK = {"JWKS_URL": "https://gateway.example/.well-known/jwks.json"}  # or "ACCESS_SECRET": "..."

read once, at start-up when ``"frontdesk.middleware.django_rest.FrontdeskConfig"`` is in ``INSTALLED_APPS``
(bad settings then stop Django from starting), else at the first request. ``request.user`` is the token's
:class:`FrontdeskUser` (``id``, ``username``, ``scopes``, ``is_authenticated``; no database row, no
``django.contrib.auth``), ``request.auth`` the verified claims.

Django and DRF are optional: nothing else in ``middleware`` imports this module.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework.permissions import BasePermission

from .background import BackgroundLoop
from .bearer import BearerAuth, bearer_challenge, revocation_store
from .errors import FrontdeskError, InsufficientScope
from .principal import FrontdeskUser
from .tokens import KeyRing

__all__ = ["FrontdeskAuthentication", "FrontdeskConfig", "HasScopes", "Verifier", "parse_settings", "verifier"]

SETTING = "FRONTDESK"
# The setting's keys (the README's Django section says what each holds); BearerAuth's defaults apply to those left out.
KEYS = (
    "ACCESS_SECRET",
    "ACCESS_SECRET_PREVIOUS",
    "JWKS_URL",
    "ISSUER",
    "AUDIENCE",
    "REVOCATIONS",
    "LEEWAY",
    "JWKS_REFETCH_INTERVAL",
    "REALM",
    "TIMEOUT",
)
_REFUSAL = "_frontdesk_refusal"  # where authenticate() leaves its error for authenticate_header()


@dataclass(frozen=True, slots=True)
class Verifier:
    """The parsed setting: one :class:`BearerAuth` and the loop its async checks run on, shared by every request
    (DRF builds a new authentication object per request, so nothing may live on that object)."""

    auth: BearerAuth
    loop: BackgroundLoop
    timeout: float

    def user_for(self, authorization: str) -> FrontdeskUser:
        """The verified user of an ``Authorization`` header; raises a :class:`FrontdeskError`."""
        # One loop per process, as the WSGI middleware: the store connection and JWKS locks stay on it.
        user = self.loop.run(self.auth.authenticate("/", authorization), self.timeout)
        assert user is not None  # no public paths are configured: every header is checked
        return user


def parse_settings(value: object) -> Verifier:
    """Build the verifier from the ``FRONTDESK`` setting, or raise ImproperlyConfigured listing every problem."""
    problems: list[str] = []
    if not isinstance(value, Mapping):
        kind = "missing" if value is None else f"a {type(value).__name__}"
        raise _improper([f"settings.{SETTING} is {kind}; set it to a dict with ACCESS_SECRET or JWKS_URL"])
    for key in value:
        if key not in KEYS:
            problems.append(f"{key!r} is not a frontdesk setting; the keys are {', '.join(KEYS)}")
    options: dict[str, Any] = {}
    secret, jwks_url = value.get("ACCESS_SECRET"), value.get("JWKS_URL")
    if (secret is None) == (jwks_url is None):
        problems.append("give exactly one of ACCESS_SECRET (shared secret) or JWKS_URL (asymmetric keys)")
    if secret is not None:
        previous = value.get("ACCESS_SECRET_PREVIOUS", ())
        if not _text(secret):
            problems.append("ACCESS_SECRET must be a non-empty string: the gateway's FRONTDESK_ACCESS_SECRET")
        elif not isinstance(previous, list | tuple) or not all(_text(p) for p in previous):
            problems.append("ACCESS_SECRET_PREVIOUS must be a list of non-empty strings")
        else:
            options["keyring"] = KeyRing.from_secrets(secret, previous)
    elif "ACCESS_SECRET_PREVIOUS" in value:
        problems.append("ACCESS_SECRET_PREVIOUS goes with ACCESS_SECRET, not JWKS_URL")
    if jwks_url is not None:
        if _text(jwks_url) and jwks_url.startswith(("https://", "http://")):
            options["jwks_url"] = jwks_url
        else:
            problems.append("JWKS_URL must be an http(s) URL such as https://gateway.example/.well-known/jwks.json")
    for key, option in (("ISSUER", "issuer"), ("REALM", "realm")):
        if key in value:
            if _text(value[key]):
                options[option] = value[key]
            else:
                problems.append(f"{key} must be a non-empty string")
    if "AUDIENCE" in value:
        audience = value["AUDIENCE"]
        if _text(audience) or (isinstance(audience, list | tuple) and audience and all(_text(a) for a in audience)):
            options["audience"] = audience if isinstance(audience, str) else list(audience)
        else:
            problems.append("AUDIENCE must be a non-empty string or a non-empty list of them")
    for key, option, above in (("LEEWAY", "leeway", False), ("JWKS_REFETCH_INTERVAL", "jwks_refetch_interval", True)):
        if key in value:
            if _seconds(value[key], above_zero=above):
                options[option] = float(value[key])
            else:
                problems.append(f"{key} must be a number of seconds, {'above' if above else 'at least'} 0")
    timeout = value.get("TIMEOUT", 30.0)
    if not _seconds(timeout, above_zero=True):
        problems.append("TIMEOUT must be a number of seconds above 0")
    revocations = value.get("REVOCATIONS")
    if revocations is not None:
        try:
            options["revocations"] = revocation_store(revocations)  # built now, opened at the first request
        except (ValueError, TypeError) as exc:
            problems.append(f"REVOCATIONS: {exc}")
    if problems:
        raise _improper(problems)
    return Verifier(BearerAuth(**options), BackgroundLoop("frontdesk-django"), float(timeout))


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _seconds(value: object, *, above_zero: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False  # an infinite leeway would accept expired tokens forever
    return value > 0 if above_zero else value >= 0


def _improper(problems: list[str]) -> ImproperlyConfigured:
    lines = "\n".join(f"  - {p}" for p in problems)
    return ImproperlyConfigured(f"settings.{SETTING} cannot be used; fix these problems:\n{lines}")


_lock = threading.Lock()
_current: Verifier | None = None


def verifier() -> Verifier:
    """The verifier of the current ``FRONTDESK`` setting, parsed at the first call."""
    global _current
    current = _current
    if current is None:
        with _lock:  # two first requests in two threads still parse once and share one loop
            if _current is None:
                _current = parse_settings(getattr(settings, SETTING, None))
            current = _current
    return current


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    """Tests that use ``override_settings(FRONTDESK=...)`` get a verifier for the new value."""
    global _current
    if setting != SETTING:
        return
    with _lock:
        old, _current = _current, None
    if old is not None:
        old.loop.close()


setting_changed.connect(_setting_changed)


class FrontdeskConfig(AppConfig):  # type: ignore[misc]  # django ships no type information
    """Put ``"frontdesk.middleware.django_rest.FrontdeskConfig"`` in ``INSTALLED_APPS`` to check the setting at
    start-up."""

    name = "frontdesk.middleware.django_rest"
    label = "frontdesk"
    verbose_name = "frontdesk bearer authentication"

    def ready(self) -> None:
        verifier()


class FrontdeskAuthentication(BaseAuthentication):  # type: ignore[misc]
    """DRF authentication for ``Authorization: Bearer`` access tokens of a frontdesk gateway.

    Returns ``(FrontdeskUser, claims)``; ``None`` when the request carries no bearer token, so that other
    authentication classes may try and DRF answers 401 with this class's challenge. A token that fails
    verification is a 401 ``{"error", "detail"}`` with RFC 6750's ``error="invalid_token"`` challenge, as in
    every other frontdesk adapter; a revocation store that does not answer is a 503.
    """

    def authenticate(self, request: Any) -> tuple[FrontdeskUser, Mapping[str, Any]] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        scheme = header.split(maxsplit=1)[:1] if isinstance(header, str) else []
        if [word.lower() for word in scheme] != ["bearer"]:
            return None  # not ours: no credentials, or another scheme for another authentication class
        try:
            user = verifier().user_for(header)
        except FrontdeskError as exc:
            setattr(request, _REFUSAL, exc)
            raise _api_error(exc) from None
        return user, user.claims

    def authenticate_header(self, request: Any) -> str:
        # DRF asks for the challenge after authenticate() refused, on the same request; a 401 needs one.
        refusal = getattr(request, _REFUSAL, None)
        realm = verifier().auth.realm
        if isinstance(refusal, FrontdeskError):
            challenge = bearer_challenge(refusal, realm=realm)
            if challenge is not None:
                return challenge
        return f'Bearer realm="{realm}"'


class HasScopes(BasePermission):  # type: ignore[misc]
    """Grant a view to a frontdesk user whose token carries every scope in the view's ``required_scopes``.

    An anonymous request is refused as not authenticated (401); a token without the scopes gets 403
    ``{"error": "insufficient_scope", "detail"}``.
    """

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not isinstance(user, FrontdeskUser):
            return False
        missing = set(getattr(view, "required_scopes", ())) - user.scopes
        if missing:
            refusal = InsufficientScope(f"this view requires scope {' '.join(sorted(missing))}")
            self.message = {"error": refusal.code, "detail": refusal.detail}
            return False
        return True


class _Refused(APIException):  # type: ignore[misc]
    """A frontdesk refusal that is not a 401 (a store that does not answer: 503), with its status."""


def _api_error(exc: FrontdeskError) -> APIException:
    body = {"error": exc.code, "detail": exc.detail}  # frontdesk's error shape; never the token
    if exc.status == 401:
        return AuthenticationFailed(body)
    refused = _Refused(body)
    refused.status_code = exc.status
    return refused
