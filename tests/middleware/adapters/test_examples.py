"""The README's middleware examples are real files (tests/middleware/examples/); run each one on a real server,
and check that the README shows exactly those files."""

from __future__ import annotations

import runpy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from mw_support import serve_asgi, serve_wsgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from middleware.keys import generate_private_key, jwks_document, signing_key_from_private
from middleware.tokens import KeyRing

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "tests" / "middleware" / "examples"
BEARER = ["starlette_bearer.py", "fastapi_bearer.py", "flask_bearer.py"]
SESSION = ["starlette_session.py", "fastapi_session.py", "flask_session.py"]
PASSWORD = "a demo password"
MARKER = "<!-- examples -->"


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
        response = client.get("/me", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["user"] in ("u-42", "alice")
        if name == "fastapi_bearer.py":
            assert client.get("/admin/x", headers={"authorization": f"Bearer {token}"}).status_code == 403


@pytest.mark.parametrize("name", SESSION)
def test_session_example(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the examples keep sessions in ./sessions.db
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    monkeypatch.setenv("FRONTDESK_ACCESS_SECRET", "access-" + "a" * 40)
    monkeypatch.setenv("FRONTDESK_REFRESH_SECRET", "refresh-" + "r" * 40)
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
