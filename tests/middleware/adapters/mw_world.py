"""The world of the adapter tests: four adapters (ASGI bearer, ASGI session, WSGI bearer, WSGI session) on
real servers, with the key material and token factories the table of token cases needs."""

from __future__ import annotations

import hmac
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mw_support import serve_wsgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from frontdesk.middleware.asgi import FrontdeskMiddleware
from frontdesk.middleware.bearer import BearerAuth
from frontdesk.middleware.clock import Clock
from frontdesk.middleware.keys import signing_key_from_private
from frontdesk.middleware.session_mode import SessionAuth
from frontdesk.middleware.sessions import SessionSettings, User
from frontdesk.middleware.store import MemoryStore
from frontdesk.middleware.tokens import KeyRing, SigningKey
from frontdesk.middleware.wsgi import FrontdeskWSGIMiddleware
from tests.support import serve_in_thread

ISSUER = "frontdesk"
AUDIENCE = "frontdesk-api"
ACCESS_SECRET = "access-secret-for-the-adapter-tests-0123456789abcdef"
REFRESH_SECRET = "refresh-secret-for-the-adapter-tests-0123456789abcdef"
PASSWORD = "correct horse battery staple"
COOKIE = "__Host-frontdesk"
PUBLIC = ["/public/"]
SCOPES = {"/admin/": "admin"}


async def authenticator(username: str, password: str) -> User | None:
    if hmac.compare_digest(password.encode(), PASSWORD.encode()):
        return User(id=f"id-{username}", username=username)
    return None


def session_auth_on(clock: Clock) -> SessionAuth:
    """Session mode with the shared secrets on an in-memory store, on ``clock`` (a test advances it)."""
    return SessionAuth.from_secrets(
        access_secret=ACCESS_SECRET,
        refresh_secret=REFRESH_SECRET,
        authenticator=authenticator,
        store="memory://",
        settings=SessionSettings(login_attempts_per_address=100_000),
        clock=clock,
    )


# --- the apps behind the middleware: they only report what the middleware told them --------------------


async def whoami(request: Request) -> JSONResponse:
    user = request.user
    return JSONResponse(
        {
            "authenticated": user.is_authenticated,
            "id": getattr(user, "id", None),
            "username": user.display_name,
            "scopes": request.auth.scopes,
            "sub": request.scope.get("frontdesk.claims", {}).get("sub"),
            "cookie": request.headers.get("cookie"),
        }
    )


async def ws_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"id": websocket.user.identity if websocket.user.is_authenticated else None})
    await websocket.close()


def starlette_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/public/ping", whoami),
            Route("/admin/panel", whoami),
            WebSocketRoute("/ws", ws_endpoint),
        ]
    )


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    user = environ.get("frontdesk.user")
    body = json.dumps(
        {
            "authenticated": user is not None,
            "id": getattr(user, "id", None),
            "username": environ.get("REMOTE_USER"),
            "scopes": sorted(getattr(user, "scopes", ())),
            "sub": environ.get("frontdesk.claims", {}).get("sub"),
            "cookie": environ.get("HTTP_COOKIE"),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


# --- keys and tokens ------------------------------------------------------------------------------------


@dataclass
class Keys:
    rsa_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    ec_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    attacker: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    @property
    def access(self) -> SigningKey:
        return signing_key_from_private(self.rsa_key)

    @property
    def ec_access(self) -> SigningKey:
        return signing_key_from_private(self.ec_key, can_sign=False)

    def signing_ring(self) -> KeyRing:
        return KeyRing([self.access, self.ec_access])

    def verifying_ring(self) -> KeyRing:
        """What an upstream holds: public keys only."""
        return KeyRing(
            [SigningKey(k.kid, k.algorithm, None, k.verify_key, can_sign=False) for k in (self.access, self.ec_access)]
        )


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


_counter = itertools.count()


def access_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    n = next(_counter)
    claims: dict[str, Any] = {
        "sub": f"id-user{n}",
        "sid": f"sid-{n}",
        "jti": f"jti-{n}",
        "iat": now,
        "exp": now + 300,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "preferred_username": f"user{n}",
    }
    claims.update(overrides)
    return claims


def sign_access(keys: Keys, claims: dict[str, Any], **header: Any) -> str:
    key = keys.access
    return jwt.encode(claims, key.sign_key, algorithm="RS256", headers={"typ": "at+jwt", "kid": key.kid, **header})


# --- the four adapters ----------------------------------------------------------------------------------


@dataclass
class Adapter:
    name: str
    mode: str  # "bearer" | "session"
    url: str
    store: MemoryStore

    @property
    def is_session(self) -> bool:
        return self.mode == "session"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def present(self, token: str) -> dict[str, str]:
        if self.is_session:
            return {"cookie": f"theme=dark; {COOKIE}={token}", "x-csrf": "1"}
        return {"authorization": f"Bearer {token}"}

    def login(self, username: str | None = None) -> str:
        """Log in through the adapter's own /auth/login; the refresh cookie's value."""
        name = username or f"user{next(_counter)}"
        with self.client() as client:
            response = client.post(
                "/auth/login", json={"username": name, "password": PASSWORD}, headers={"x-csrf": "1"}
            )
        assert response.status_code == 200, response.text
        set_cookie = response.headers["set-cookie"]
        return set_cookie.split(";", 1)[0].split("=", 1)[1]


def _session_auth(keys: Keys, store: MemoryStore) -> SessionAuth:
    return SessionAuth.from_secrets(
        access_secret=ACCESS_SECRET,
        refresh_secret=REFRESH_SECRET,
        access_keyring=keys.signing_ring(),
        authenticator=authenticator,
        store=store,
        settings=SessionSettings(login_attempts_per_address=100_000),
        public_paths=PUBLIC,
        scopes=SCOPES,
    )


def _bearer_auth(keys: Keys, store: MemoryStore) -> BearerAuth:
    return BearerAuth(keyring=keys.verifying_ring(), revocations=store, public_paths=PUBLIC, scopes=SCOPES)


ADAPTERS = ["asgi-bearer", "asgi-session", "wsgi-bearer", "wsgi-session"]


@pytest.fixture(scope="session")
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture(scope="session")
def adapters(keys: Keys, store: MemoryStore) -> Iterator[dict[str, Adapter]]:
    wsgi_bearer = FrontdeskWSGIMiddleware(wsgi_app, _bearer_auth(keys, store))
    wsgi_session = FrontdeskWSGIMiddleware(wsgi_app, _session_auth(keys, store))
    big = {"h11_max_incomplete_event_size": 4 * 1024 * 1024}
    with (
        serve_in_thread(FrontdeskMiddleware(starlette_app(), _bearer_auth(keys, store)), **big) as asgi_b,
        serve_in_thread(FrontdeskMiddleware(starlette_app(), _session_auth(keys, store)), **big) as asgi_s,
        serve_wsgi(wsgi_bearer) as wsgi_b,
        serve_wsgi(wsgi_session) as wsgi_s,
    ):
        yield {
            "asgi-bearer": Adapter("asgi-bearer", "bearer", asgi_b, store),
            "asgi-session": Adapter("asgi-session", "session", asgi_s, store),
            "wsgi-bearer": Adapter("wsgi-bearer", "bearer", wsgi_b, store),
            "wsgi-session": Adapter("wsgi-session", "session", wsgi_s, store),
        }
    wsgi_bearer.close()
    wsgi_session.close()


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest, adapters: dict[str, Adapter]) -> Adapter:
    return adapters[request.param]


@pytest.fixture(params=["asgi-session", "wsgi-session"])
def session_adapter(request: pytest.FixtureRequest, adapters: dict[str, Adapter]) -> Adapter:
    return adapters[request.param]


@pytest.fixture(params=["asgi-bearer", "wsgi-bearer"])
def bearer_adapter(request: pytest.FixtureRequest, adapters: dict[str, Adapter]) -> Adapter:
    return adapters[request.param]


@pytest.fixture(params=["asgi-bearer", "asgi-session"])
def asgi_adapter(request: pytest.FixtureRequest, adapters: dict[str, Adapter]) -> Adapter:
    return adapters[request.param]
