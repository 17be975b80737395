"""The README's middleware examples are real files (tests/middleware/examples/); run each one on a real server,
and check that the README shows exactly those files."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import runpy
import shlex
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from mw_support import serve_wsgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from frontdesk.middleware.bearer import BearerAuth
from frontdesk.middleware.keys import generate_private_key, jwks_document, signing_key_from_private
from frontdesk.middleware.store.sqlite import SqliteStore
from frontdesk.middleware.tokens import KeyRing
from tests.support import ServerProcess, free_port, serve_in_thread, wait_until

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "tests" / "middleware" / "examples"
BEARER = ["starlette_bearer.py", "fastapi_bearer.py", "flask_bearer.py", "django_bearer.py", "drf_bearer.py"]
SESSION = ["starlette_session.py", "fastapi_session.py", "flask_session.py", "django_session.py"]
# Django's settings can be configured once per process and these examples name themselves as the URLconf, so the
# suite runs them as the README does: the documented waitress-serve command, in a process of their own.
OWN_PROCESS = ("django_", "drf_")
PASSWORD = "a demo password"
MARKER = "<!-- examples -->"
README = (ROOT / "README.md").read_text()
SESSION_ENV = {
    "DEMO_PASSWORD": PASSWORD,
    "FRONTDESK_ACCESS_SECRET": "access-" + "a" * 40,
    "FRONTDESK_REFRESH_SECRET": "refresh-" + "r" * 40,
}


INVALID_CHALLENGE = 'Bearer realm="frontdesk", error="invalid_token", error_description="'


def documented_challenge() -> str:
    """The WWW-Authenticate the README says a request without a token gets."""
    found = re.search(r"without a token gets 401 with\s+`WWW-Authenticate: ([^`]+)`", README)
    assert found, "README.md no longer documents the challenge for a missing token"
    return found.group(1)


@pytest.fixture(scope="module")
def issuer() -> Iterator[tuple[str, KeyRing]]:
    """A stand-in gateway that only publishes its JWKS."""
    ring = KeyRing([signing_key_from_private(generate_private_key("EdDSA"))])

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(jwks_document(ring, time.time()))

    with serve_in_thread(Starlette(routes=[Route("/.well-known/jwks.json", jwks)])) as url:
        yield f"{url}/.well-known/jwks.json", ring


def _load(name: str) -> Any:
    return runpy.run_path(str(EXAMPLES / name))["app"]


@contextmanager
def _served(name: str, env: dict[str, str], folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Example ``name`` on a real server with ``env`` set; yields its base URL."""
    if name.startswith(OWN_PROCESS):
        with _documented_server(name, env, folder) as base:
            yield base
        return
    monkeypatch.chdir(folder)  # the session examples keep sessions in ./sessions.db
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    app = _load(name)
    with serve_wsgi(app) if name.startswith("flask") else serve_in_thread(app) as base:
        yield base


def _sign(ring: KeyRing, **changes: Any) -> str:
    """An access token as the gateway mints it, signed by ``ring``'s key; ``changes`` override claims
    (None leaves a claim out) and, for ``typ``, the header."""
    key = ring.signing_key()
    now = int(time.time())
    claims = {
        "sub": "u-42",
        "sid": "s-" + uuid.uuid4().hex,
        "jti": "j",
        "iat": now,
        "exp": now + 60,
        "iss": "frontdesk",
        "aud": "frontdesk-api",
        "preferred_username": "alice",
    }
    typ = changes.pop("typ", "at+jwt")
    claims = {k: v for k, v in {**claims, **changes}.items() if v is not None}
    return jwt.encode(claims, key.sign_key, algorithm="EdDSA", headers={"kid": key.kid, "typ": typ})


def _bad_tokens(ring: KeyRing) -> dict[str, str]:
    now = int(time.time())
    impostor = KeyRing([signing_key_from_private(generate_private_key("EdDSA"))])
    kid = ring.signing_key().kid
    forged = jwt.encode(
        jwt.decode(_sign(ring), options={"verify_signature": False}),
        impostor.signing_key().sign_key,
        algorithm="EdDSA",
        headers={"kid": kid, "typ": "at+jwt"},
    )
    return {
        "expired": _sign(ring, iat=now - 7200, exp=now - 3600),
        "bad signature (another key under the gateway's kid)": forged,
        "wrong audience": _sign(ring, aud="some-other-api"),
        "wrong issuer": _sign(ring, iss="https://evil.example"),
        "a refresh token": _sign(ring, typ="rt+jwt"),
        "garbage": "not-a-jwt",
    }


@pytest.mark.parametrize("name", BEARER)
def test_bearer_example(
    name: str, issuer: tuple[str, KeyRing], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ring = issuer
    token = _sign(ring)
    with (
        _served(name, {"FRONTDESK_JWKS_URL": url}, tmp_path, monkeypatch) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        refused = client.get("/me")
        assert refused.status_code == 401
        # DRF answers a request with no credentials in its own words ({"detail"}); every token it refuses,
        # like every refusal of the middleware, in frontdesk's {"error", "detail"}.
        assert set(refused.json()) == ({"detail"} if name.startswith("drf_") else {"error", "detail"})
        assert refused.headers["www-authenticate"] == documented_challenge()
        response = client.get("/me", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["user"] in ("u-42", "alice")
        for case, bad in _bad_tokens(ring).items():
            refused = client.get("/me", headers={"authorization": f"Bearer {bad}"})
            assert refused.status_code == 401, f"{case}: {refused.status_code} {refused.text[:200]}"
            assert set(refused.json()) == {"error", "detail"}, case
            assert refused.headers["www-authenticate"].startswith(INVALID_CHALLENGE), case
            assert bad not in refused.text
        if name == "fastapi_bearer.py":
            assert client.get("/admin/x", headers={"authorization": f"Bearer {token}"}).status_code == 403


@pytest.mark.parametrize("name", SESSION)
def test_session_example(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        _served(name, SESSION_ENV, tmp_path, monkeypatch) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        assert client.get("/me", headers={"x-csrf": "1"}).status_code == 401
        wrong = client.post("/auth/login", json={"username": "alice", "password": "no"}, headers={"x-csrf": "1"})
        assert wrong.status_code == 401
        login = client.post("/auth/login", json={"username": "alice", "password": PASSWORD}, headers={"x-csrf": "1"})
        assert login.status_code == 200, login.text
        cookie = login.headers["set-cookie"].split(";", 1)[0]
        response = client.get("/me", headers={"cookie": cookie, "x-csrf": "1"})
        assert response.status_code == 200, response.text
        assert response.json() == {"user": "alice"}
        logout = client.post("/auth/logout", headers={"cookie": cookie, "x-csrf": "1"})
        assert logout.status_code == 204
        assert client.get("/me", headers={"cookie": cookie, "x-csrf": "1"}).status_code == 401
    assert (tmp_path / "sessions.db").exists()


def test_drf_example_scopes_and_revocations(issuer: tuple[str, KeyRing], tmp_path: Path) -> None:
    """The DRF example with ``FRONTDESK_REVOCATIONS`` set: a scope-protected view, and a logged-out session's
    token refused within the revocation cache's lifetime, read from the gateway's store file."""
    url, ring = issuer
    database = tmp_path / "frontdesk.db"
    env = {"FRONTDESK_JWKS_URL": url, "FRONTDESK_REVOCATIONS": f"sqlite:///{database}"}
    sid = "s-" + uuid.uuid4().hex
    plain, reporter = _sign(ring, sid=sid), _sign(ring, sid=sid, scope="profile reports")
    with _documented_server("drf_bearer.py", env, tmp_path) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/me", headers={"authorization": f"Bearer {plain}"}).status_code == 200
        refused = client.get("/reports", headers={"authorization": f"Bearer {plain}"})
        assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope", refused.text
        assert client.get("/reports").status_code == 401
        allowed = client.get("/reports", headers={"authorization": f"Bearer {reporter}"})
        assert allowed.status_code == 200 and allowed.json() == {"reports": [], "for": "u-42"}, allowed.text

        _revoke(database, sid)  # what the gateway's logout writes
        answer = wait_until(
            lambda: (r := client.get("/me", headers={"authorization": f"Bearer {plain}"})).status_code != 200 and r,
            what="a logged-out session's token to be refused",
        )
        assert answer.status_code == 401 and answer.json()["error"] == "session_revoked", answer.text
        assert answer.headers["www-authenticate"].startswith(INVALID_CHALLENGE)
        assert client.get("/reports", headers={"authorization": f"Bearer {reporter}"}).status_code == 401


def _revoke(database: Path, sid: str) -> None:
    async def revoke() -> None:
        store = SqliteStore(database)
        await store.open()
        try:
            await store.revoke_session(sid, now=time.time(), reason="logout")
        finally:
            await store.close()

    asyncio.run(revoke())


def test_readme_shows_exactly_the_tested_examples() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    if MARKER not in text:
        pytest.skip(f"README.md has no {MARKER} section yet")
    section = text[text.index(MARKER) :]
    for path in sorted(EXAMPLES.glob("*.py")):
        assert path.read_text().strip() in section, f"README.md does not show {path.name} verbatim"


def _run_command(name: str) -> list[str]:
    """The command the README shows under example ``name`` (one line in an ``sh`` block naming ``<module>:app``)."""
    module = name.removesuffix(".py")
    lines = [line for line in re.findall(r"```sh\n(.*?)```", README, re.S) if f" {module}:app" in line]
    assert len(lines) == 1, f"README.md should show one command that runs {name}"
    return shlex.split(lines[0])


@contextmanager
def _documented_server(name: str, variables: dict[str, str], folder: Path) -> Iterator[str]:
    """Save the example under its name in ``folder``, run the README's command there with ``variables`` in the
    environment (the command's own leading ``FRONTDESK_JWKS_URL=...`` is pointed at ours), on a free port."""
    shutil.copy(EXAMPLES / name, folder / name)
    words = _run_command(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRONTDESK_", "DEMO_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(variables)
    while "=" in words[0]:  # leading VAR=value assignments: the documented variable, pointed at our stand-in
        variable = words.pop(0).split("=", 1)[0]
        assert variable == "FRONTDESK_JWKS_URL" and variable in variables
    assert words[0] in ("uvicorn", "waitress-serve")
    port = str(free_port())
    command = [port if w == "8000" else w.replace("=8000", f"={port}") for w in words]
    assert port in " ".join(command), "the documented command should name port 8000"
    runner = shutil.which(command[0], path=os.path.dirname(sys.executable)) or shutil.which(command[0])
    assert runner is not None, f"{command[0]} is not installed"
    with ServerProcess([runner, *command[1:]], folder / f"{name}.log", cwd=folder, env=env, name=name) as server:
        server.wait_answers(f"http://127.0.0.1:{port}/me", timeout=60)
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("name", BEARER + SESSION)
def test_the_documented_command_runs_the_example(name: str, issuer: tuple[str, KeyRing], tmp_path: Path) -> None:
    """Save the example under its name, run the README's command in that folder, and reach it."""
    variables = SESSION_ENV if name in SESSION else {"FRONTDESK_JWKS_URL": issuer[0]}
    with _documented_server(name, variables, tmp_path) as base:
        response = httpx.get(f"{base}/me", headers={"x-csrf": "1"}, timeout=5)
    assert response.status_code == 401 and set(response.json()) >= {"detail"}


def test_readme_states_the_bearer_defaults() -> None:
    defaults = {k: p.default for k, p in inspect.signature(BearerAuth).parameters.items()}
    interval = re.search(r"`jwks_refetch_interval` \(seconds; default (\d+)\)", README)
    assert interval and float(interval.group(1)) == defaults["jwks_refetch_interval"]
    assert f'`issuer=` (default `"{defaults["issuer"]}"`)' in README
    assert f'`audience=` (default `"{defaults["audience"]}"`' in README
    assert "from frontdesk import KeyRing" in README


# Django is optional, so its DRF class stays in its own module and `import frontdesk` never imports Django.
OWN_MODULE = "frontdesk.middleware.django_rest"


def test_the_readme_and_the_examples_import_only_from_frontdesk() -> None:
    """The README and its example files use the ``frontdesk`` facade, never the modules behind it (which may
    move) nor the bare folder names ``middleware`` and ``gateway``."""
    code = "\n".join(re.findall(r"```python\n(.*?)```", README, flags=re.S))
    code += "\n".join(path.read_text() for path in sorted(EXAMPLES.glob("*.py")))
    ours = re.findall(r"^\s*(?:from|import) ((?:frontdesk|middleware|gateway)\b[\w.]*)", code, flags=re.M)
    assert ours and {module for module in ours if module != OWN_MODULE} == {"frontdesk"}
    prose = re.findall(r"`[^`\n]*\b(?:from|import) ((?:frontdesk|middleware|gateway)\b[\w.]*)", README)
    assert set(prose) <= {"frontdesk", OWN_MODULE}, prose
