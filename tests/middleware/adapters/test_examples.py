"""The README's middleware examples are real files (tests/middleware/examples/); run each one on a real server,
and check that the README shows exactly those files."""

from __future__ import annotations

import inspect
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from mw_support import free_port, serve_asgi, serve_wsgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from middleware.bearer import BearerAuth
from middleware.keys import generate_private_key, jwks_document, signing_key_from_private
from middleware.tokens import KeyRing

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "tests" / "middleware" / "examples"
BEARER = ["starlette_bearer.py", "fastapi_bearer.py", "flask_bearer.py"]
SESSION = ["starlette_session.py", "fastapi_session.py", "flask_session.py"]
PASSWORD = "a demo password"
MARKER = "<!-- examples -->"
README = (ROOT / "README.md").read_text()
SESSION_ENV = {
    "DEMO_PASSWORD": PASSWORD,
    "FRONTDESK_ACCESS_SECRET": "access-" + "a" * 40,
    "FRONTDESK_REFRESH_SECRET": "refresh-" + "r" * 40,
}


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

    with serve_asgi(Starlette(routes=[Route("/.well-known/jwks.json", jwks)])) as url:
        yield f"{url}/.well-known/jwks.json", ring


def _serve(app: Any, name: str) -> Any:
    return serve_wsgi(app) if name.startswith("flask") else serve_asgi(app)


def _load(name: str) -> Any:
    return runpy.run_path(str(EXAMPLES / name))["app"]


@pytest.mark.parametrize("name", BEARER)
def test_bearer_example(name: str, issuer: tuple[str, KeyRing], monkeypatch: pytest.MonkeyPatch) -> None:
    url, ring = issuer
    monkeypatch.setenv("FRONTDESK_JWKS_URL", url)
    key = ring.signing_key()
    now = int(time.time())
    claims = {
        "sub": "u-42",
        "sid": "s",
        "jti": "j",
        "iat": now,
        "exp": now + 60,
        "iss": "frontdesk",
        "aud": "frontdesk-api",
        "preferred_username": "alice",
    }
    token = jwt.encode(claims, key.sign_key, algorithm="EdDSA", headers={"kid": key.kid, "typ": "at+jwt"})
    with _serve(_load(name), name) as base, httpx.Client(base_url=base, timeout=30) as client:
        refused = client.get("/me")
        assert refused.status_code == 401 and set(refused.json()) == {"error", "detail"}
        assert refused.headers["www-authenticate"] == documented_challenge()
        response = client.get("/me", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["user"] in ("u-42", "alice")
        if name == "fastapi_bearer.py":
            assert client.get("/admin/x", headers={"authorization": f"Bearer {token}"}).status_code == 403


@pytest.mark.parametrize("name", SESSION)
def test_session_example(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the examples keep sessions in ./sessions.db
    for key, value in SESSION_ENV.items():
        monkeypatch.setenv(key, value)
    with _serve(_load(name), name) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/me", headers={"x-csrf": "1"}).status_code == 401
        wrong = client.post("/auth/login", json={"username": "alice", "password": "no"}, headers={"x-csrf": "1"})
        assert wrong.status_code == 401
        login = client.post("/auth/login", json={"username": "alice", "password": PASSWORD}, headers={"x-csrf": "1"})
        assert login.status_code == 200, login.text
        cookie = login.headers["set-cookie"].split(";", 1)[0]
        response = client.get("/me", headers={"cookie": cookie, "x-csrf": "1"})
        assert response.status_code == 200, response.text
        assert response.json() == {"user": "alice"}
    assert (tmp_path / "sessions.db").exists()


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


@pytest.mark.parametrize("name", BEARER + SESSION)
def test_the_documented_command_runs_the_example(name: str, issuer: tuple[str, KeyRing], tmp_path: Path) -> None:
    """Save the example under its name, run the README's command in that folder, and reach it."""
    shutil.copy(EXAMPLES / name, tmp_path / name)
    words = _run_command(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRONTDESK_", "DEMO_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(SESSION_ENV if name in SESSION else {})
    while "=" in words[0]:  # leading VAR=value assignments: the documented variable, pointed at our stand-in
        variable = words.pop(0).split("=", 1)[0]
        assert variable == "FRONTDESK_JWKS_URL"
        env[variable] = issuer[0]
    assert words[0] in ("uvicorn", "waitress-serve")
    port = str(free_port())
    command = [port if w == "8000" else w.replace("=8000", f"={port}") for w in words]
    assert port in " ".join(command), "the documented command should name port 8000"
    runner = shutil.which(command[0], path=os.path.dirname(sys.executable)) or shutil.which(command[0])
    assert runner is not None, f"{command[0]} is not installed"
    proc = subprocess.Popen(
        [runner, *command[1:]], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/me", headers={"x-csrf": "1"}, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"{name} did not answer on port {port}"
                time.sleep(0.1)
        assert response.status_code == 401 and set(response.json()) == {"error", "detail"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_readme_states_the_bearer_defaults() -> None:
    defaults = {k: p.default for k, p in inspect.signature(BearerAuth).parameters.items()}
    interval = re.search(r"`jwks_refetch_interval` \(seconds; default (\d+)\)", README)
    assert interval and float(interval.group(1)) == defaults["jwks_refetch_interval"]
    assert f'`issuer=` (default `"{defaults["issuer"]}"`)' in README
    assert f'`audience=` (default `"{defaults["audience"]}"`' in README
    assert "from middleware.tokens import KeyRing" in README
