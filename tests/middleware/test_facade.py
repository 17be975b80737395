"""``from frontdesk import ...``: the names an app needs, in one place, and nothing heavy behind them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import frontdesk

# What `frontdesk[gateway]`, `[redis]` and `[django]` bring; the core library must not import any of them.
NOT_CORE = ("uvicorn", "argon2", "aiosqlite", "httptools", "websockets", "redis", "django", "rest_framework")
README_NAMES = {"FrontdeskMiddleware", "FrontdeskWSGIMiddleware", "BearerAuth", "SessionAuth", "KeyRing", "User"}

# A bearer-mode WSGI app, the smallest a Flask user writes; prints the two answers and what got imported.
BEARER_APP = textwrap.dedent(
    f"""
    import sys, time
    from wsgiref.util import setup_testing_defaults

    import frontdesk
    from frontdesk import BearerAuth, FrontdeskWSGIMiddleware, KeyRing

    auth = BearerAuth(keyring=KeyRing.from_secrets("s" * 40))
    now = int(time.time())
    token = auth.codec.encode({{"sub": "ada", "sid": "s1", "jti": "j1", "iat": now, "exp": now + 60}})

    def app(environ, start_response):
        start_response("200 OK", [("content-type", "text/plain")])
        return [environ["REMOTE_USER"].encode()]

    def call(**headers):
        environ = dict(headers)
        setup_testing_defaults(environ)
        seen = {{}}
        body = b"".join(FrontdeskWSGIMiddleware(app, auth)(environ, lambda status, h, e=None: seen.update(s=status)))
        return seen["s"], body.decode()

    print(call())
    print(call(HTTP_AUTHORIZATION="Bearer " + token))
    print(sorted({{m.split(".")[0] for m in sys.modules}} & set({NOT_CORE!r})))
    print(frontdesk.__file__)
    """
)


def test_the_facade_exports_what_the_readme_uses() -> None:
    assert set(frontdesk.__all__) >= README_NAMES
    assert all(getattr(frontdesk, name, None) is not None for name in frontdesk.__all__)
    assert len(set(frontdesk.__all__)) == len(frontdesk.__all__)


def test_importing_frontdesk_pulls_in_no_gateway_or_optional_dependency(tmp_path: Path) -> None:
    """Run where the checkout is not on the path, so the installed package is what gets imported."""
    result = subprocess.run([sys.executable, "-c", BEARER_APP], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    missing, admitted, imported, _ = result.stdout.splitlines()
    assert missing.startswith("('401")
    assert admitted == "('200 OK', 'ada')"
    assert imported == "[]"


@pytest.mark.slow
def test_bearer_mode_runs_from_the_wheel_with_only_the_core_dependencies(
    frontdesk_wheel: Path, fresh_venv: Callable[..., Path], tmp_path: Path
) -> None:
    """A Flask user in bearer mode installs ``frontdesk`` alone: no ASGI server, hasher or SQLite driver."""
    python = fresh_venv(str(frontdesk_wheel))
    for module in ("uvicorn", "argon2", "aiosqlite"):
        absent = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True)
        assert absent.returncode != 0 and "ModuleNotFoundError" in absent.stderr, module
    result = subprocess.run([python, "-c", BEARER_APP], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    missing, admitted, imported, location = result.stdout.splitlines()
    assert missing.startswith("('401") and admitted == "('200 OK', 'ada')" and imported == "[]"
    assert Path(location).is_relative_to(python.parent.parent)  # the wheel's copy, not the checkout
