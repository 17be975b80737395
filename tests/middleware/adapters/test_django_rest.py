"""``middleware.django_rest``: the FRONTDESK setting, start-up refusal, and the DRF class on requests in-process.

The examples (test_examples.py) run it behind a real server; these cover what they do not: every settings
problem named at once, Django refusing to start on them, a changed setting taking effect, a store that does not
answer, and Django staying optional for the rest of the library.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from django.core.exceptions import ImproperlyConfigured

from frontdesk.middleware.django_rest import FrontdeskAuthentication, HasScopes, parse_settings
from frontdesk.middleware.principal import FrontdeskUser
from frontdesk.middleware.tokens import KeyRing
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[3]
SECRET = "access-" + "a" * 40
OTHER_SECRET = "access-" + "b" * 40


def _token(secret: str, **changes: Any) -> str:
    key = KeyRing.from_secrets(secret).signing_key()
    now = int(time.time())
    claims = {"sub": "u-7", "sid": "s-7", "jti": "j", "iat": now, "exp": now + 60, "iss": "frontdesk"}
    claims |= {"aud": "frontdesk-api", "preferred_username": "bob", **changes}
    return jwt.encode(claims, key.sign_key, algorithm="HS256", headers={"kid": key.kid, "typ": "at+jwt"})


@pytest.fixture(scope="module")
def call() -> Iterator[Callable[..., Any]]:
    """Run a request through a DRF view guarded by FrontdeskAuthentication (+ HasScopes on ``/reports``)."""
    import django
    from django.conf import settings

    if not settings.configured:  # Django's settings are once per process; nothing else here configures them
        settings.configure(
            INSTALLED_APPS=["rest_framework"],
            FRONTDESK={"ACCESS_SECRET": SECRET},
            REST_FRAMEWORK={
                "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
                "UNAUTHENTICATED_USER": None,
            },
        )
        django.setup()
    from rest_framework.permissions import IsAuthenticated
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory
    from rest_framework.throttling import UserRateThrottle
    from rest_framework.views import APIView

    class Me(APIView):
        authentication_classes = (FrontdeskAuthentication,)
        permission_classes = (IsAuthenticated,)

        def get(self, request: Request) -> Response:
            user = request.user
            assert isinstance(user, FrontdeskUser) and request.auth is user.claims
            return Response({"id": user.id, "username": user.username, "authenticated": user.is_authenticated})

    class Reports(Me):
        permission_classes = (HasScopes,)
        required_scopes = ("reports",)

    class TwoPerMinute(UserRateThrottle):
        rate = "2/min"

    class Throttled(Me):
        throttle_classes = (TwoPerMinute,)  # keys on request.user.pk, as simplejwt's TokenUser allows

    factory = APIRequestFactory()

    def run(path: str = "/me", authorization: str | None = None) -> Any:
        headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
        view = {"/reports": Reports, "/throttled": Throttled}.get(path, Me)
        response = view.as_view()(factory.get(path, **headers))
        response.render()
        return response

    yield run


def test_a_valid_token_gives_the_user_and_claims(call: Callable[..., Any]) -> None:
    response = call(authorization=f"Bearer {_token(SECRET)}")
    assert response.status_code == 200, response.content
    assert response.data == {"id": "u-7", "username": "bob", "authenticated": True}


def test_refusals_speak_rfc_6750(call: Callable[..., Any]) -> None:
    missing = call()
    assert missing.status_code == 401 and missing["WWW-Authenticate"] == 'Bearer realm="frontdesk"'
    other_scheme = call(authorization="Basic dXNlcjpwYXNz")  # left to other classes: none here, so DRF's 401
    assert other_scheme.status_code == 401 and other_scheme["WWW-Authenticate"] == 'Bearer realm="frontdesk"'
    for bad in (_token(OTHER_SECRET), _token(SECRET, aud="another-api"), "Bearer", f"{_token(SECRET)} x"):
        refused = call(authorization=f"Bearer {bad}")
        assert refused.status_code == 401, bad
        assert refused["WWW-Authenticate"].startswith('Bearer realm="frontdesk", error="invalid_token"')
        assert set(refused.data) == {"error", "detail"} and refused.data["error"] == "invalid_token"
    expired = call(authorization=f"Bearer {_token(SECRET, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)}")
    assert expired.status_code == 401 and expired.data["error"] == "token_expired"


def test_has_scopes(call: Callable[..., Any]) -> None:
    assert call("/reports").status_code == 401
    lacking = call("/reports", f"Bearer {_token(SECRET, scope='profile')}")
    assert lacking.status_code == 403
    assert lacking.data == {"error": "insufficient_scope", "detail": "this view requires scope reports"}
    assert call("/reports", f"Bearer {_token(SECRET, scope='profile reports')}").status_code == 200


def test_drf_throttling_counts_per_token_user(call: Callable[..., Any]) -> None:
    bob, carol = _token(SECRET, sub="u-bob"), _token(SECRET, sub="u-carol")
    assert [call("/throttled", f"Bearer {bob}").status_code for _ in range(3)] == [200, 200, 429]
    assert call("/throttled", f"Bearer {carol}").status_code == 200


def test_a_changed_setting_takes_effect(call: Callable[..., Any]) -> None:
    from django.test import override_settings

    old, new = _token(SECRET), _token(OTHER_SECRET, iss="https://gateway.example")
    with override_settings(FRONTDESK={"ACCESS_SECRET": OTHER_SECRET, "ISSUER": "https://gateway.example"}):
        assert call(authorization=f"Bearer {new}").status_code == 200
        assert call(authorization=f"Bearer {old}").status_code == 401
    assert call(authorization=f"Bearer {old}").status_code == 200


def test_a_store_that_does_not_answer_is_a_503(call: Callable[..., Any]) -> None:
    from django.test import override_settings

    nobody = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(FRONTDESK={"ACCESS_SECRET": SECRET, "REVOCATIONS": nobody, "TIMEOUT": 10}):
        response = call(authorization=f"Bearer {_token(SECRET)}")
    assert response.status_code == 503, response.content
    assert response.data["error"] == "store_unavailable"
    assert "127.0.0.1" not in response.content.decode()


def test_every_settings_problem_is_named_at_once() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        parse_settings(
            {
                "JWKS_URL": "ftp://gateway.example/jwks.json",
                "ACCESS_SECRET": "",
                "AUDIENCES": "typo",
                "LEEWAY": float("inf"),
                "TIMEOUT": 0,
                "REVOCATIONS": "postgres://db/frontdesk",
            }
        )
    message = str(caught.value)
    for expected in (
        "settings.FRONTDESK cannot be used",
        "exactly one of ACCESS_SECRET",
        "ACCESS_SECRET must be a non-empty string",
        "JWKS_URL must be an http(s) URL",
        "'AUDIENCES' is not a frontdesk setting",
        "LEEWAY must be a number of seconds",
        "TIMEOUT must be a number of seconds above 0",
        "REVOCATIONS: ",
    ):
        assert expected in message, message
    with pytest.raises(ImproperlyConfigured, match=r"settings\.FRONTDESK is missing"):
        parse_settings(None)
    with pytest.raises(ImproperlyConfigured, match="AUDIENCE must be"):
        parse_settings({"ACCESS_SECRET": SECRET, "AUDIENCE": []})


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )


def test_bad_settings_stop_django_from_starting() -> None:
    result = _python(
        """
        import django
        from django.conf import settings

        settings.configure(
            INSTALLED_APPS=["rest_framework", "frontdesk.middleware.django_rest.FrontdeskConfig"],
            FRONTDESK={"JWKS_URL": "gateway.example/jwks.json", "LEEWAY": "5"},
        )
        django.setup()
        print("started")
        """
    )
    assert result.returncode != 0 and "started" not in result.stdout
    assert "django.core.exceptions.ImproperlyConfigured: settings.FRONTDESK cannot be used" in result.stderr
    assert "JWKS_URL must be an http(s) URL" in result.stderr and "LEEWAY must be" in result.stderr


def test_the_library_never_imports_django() -> None:
    """Django and DRF are optional: every module but frontdesk.middleware.django_rest imports without them."""
    result = _python(
        """
        import pkgutil, importlib, sys
        from frontdesk import middleware

        for module in pkgutil.walk_packages(middleware.__path__, "frontdesk.middleware."):
            if module.name != "frontdesk.middleware.django_rest":
                importlib.import_module(module.name)
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("django", "rest_framework")))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
