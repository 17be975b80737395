"""The demo upstream API: an ordinary Starlette app that sits behind the gateway.

The gateway forwards ``/api/...`` unchanged and attaches ``Authorization: Bearer <access token>``; this app
only ever sees that header, never the browser's cookie. It offers a few endpoints that exercise the proxy:

- ``GET /api/me``: the claims it received (never the token itself);
- ``GET/POST /api/items``, ``DELETE /api/items/{id}``: a small in-memory list per user ``sub``;
- ``GET /api/clock``: server-sent events, one per second, carrying the time;
- ``GET /api/slow?ms=...``: sleeps, then answers (to watch the proxy stream and time out).

Until frontdesk's bearer-mode middleware exists, the Bearer token is verified here by ``verify_bearer`` with
pyjwt; it is the only place that knows about tokens, so swapping it for the middleware is a one-line change.

Run it on its own with ``python -m gateway.demo_upstream --port 9000`` (needs ``FRONTDESK_ACCESS_SECRET``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "Claims",
    "InvalidBearer",
    "Item",
    "ItemStore",
    "Verifier",
    "create_demo_upstream",
    "make_verifier",
    "main",
    "verify_bearer",
]

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a JOSE type name, not a secret)
REQUIRED_CLAIMS = ("sub", "sid", "jti", "iat", "exp", "iss", "aud")
# Bounds that keep a public demo from being used as a memory or connection sink.
MAX_ITEMS_PER_USER = 100
MAX_ITEM_TEXT = 200
MAX_SLOW_MS = 30_000

Claims = dict[str, Any]
# Takes the raw ``Authorization`` header (or None) and returns the verified claims, or raises InvalidBearer.
Verifier = Callable[[str | None], Claims]


class InvalidBearer(Exception):
    """The request carried no usable access token; the detail is safe to show (it never echoes the token)."""


def verify_bearer(
    authorization: str | None,
    *,
    secret: str,
    audience: str = "frontdesk-api",
    issuer: str = "frontdesk",
    leeway: float = 5.0,
) -> Claims:
    """Verify an ``Authorization: Bearer`` access token the way frontdesk mints them; return its claims.

    Pinned to HS256 (never trust the token's own ``alg``), requires the access-token type in the header so a
    refresh token can never pass as an access token, and requires every claim the gateway always sets.
    """
    if not authorization:
        raise InvalidBearer("missing bearer token")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidBearer("authorization is not a bearer token")
    try:
        decoded = jwt.decode_complete(
            token,
            secret,
            algorithms=["HS256"],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidBearer("access token expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidBearer(f"access token rejected: {exc}") from exc
    typ = str(decoded["header"].get("typ", "")).lower()
    # RFC 9068 allows the media-type spelling too; compare case-insensitively as it says.
    if typ not in (ACCESS_TOKEN_TYPE, f"application/{ACCESS_TOKEN_TYPE}"):
        raise InvalidBearer("not an access token")
    claims: Claims = decoded["payload"]
    return claims


def make_verifier(
    secret: str | None = None, *, audience: str = "frontdesk-api", issuer: str = "frontdesk"
) -> Verifier:
    """Bind ``verify_bearer`` to a secret (default: ``FRONTDESK_ACCESS_SECRET`` from the environment)."""
    key = secret if secret is not None else os.environ.get("FRONTDESK_ACCESS_SECRET", "")
    if not key:
        raise RuntimeError("the demo upstream needs FRONTDESK_ACCESS_SECRET to verify access tokens")

    def verify(authorization: str | None) -> Claims:
        return verify_bearer(authorization, secret=key, audience=audience, issuer=issuer)

    return verify


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    text: str
    created_at: str


class ItemStore:
    """Items per user ``sub``, in memory: the demo only needs to show that each user sees their own."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Item]] = {}

    def list(self, sub: str) -> list[Item]:
        return list(self._items.get(sub, {}).values())

    def add(self, sub: str, text: str) -> Item:
        items = self._items.setdefault(sub, {})
        if len(items) >= MAX_ITEMS_PER_USER:
            raise ValueError(f"at most {MAX_ITEMS_PER_USER} items per user")
        item = Item(id=secrets.token_hex(6), text=text, created_at=_iso_now())
        items[item.id] = item
        return item

    def remove(self, sub: str, item_id: str) -> bool:
        return self._items.get(sub, {}).pop(item_id, None) is not None


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _unauthorized(detail: str) -> JSONResponse:
    return _error(401, "invalid_token", detail, {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def create_demo_upstream(
    verify: Verifier | None = None,
    *,
    audience: str = "frontdesk-api",
    clock_interval: float = 1.0,
) -> Starlette:
    """Build the demo upstream app.

    ``verify`` turns the ``Authorization`` header into claims; by default the HS256 check of ``verify_bearer``
    with ``FRONTDESK_ACCESS_SECRET``. ``clock_interval`` is the seconds between SSE clock events.
    """
    verifier = verify if verify is not None else make_verifier(audience=audience)
    store = ItemStore()

    def authenticate(request: Request) -> Claims | JSONResponse:
        try:
            return verifier(request.headers.get("authorization"))
        except InvalidBearer as exc:
            return _unauthorized(str(exc))

    async def me(request: Request) -> Response:
        claims = authenticate(request)
        if isinstance(claims, Response):
            return claims
        return JSONResponse({"claims": claims, "received_at": _iso_now()})

    async def items(request: Request) -> Response:
        claims = authenticate(request)
        if isinstance(claims, Response):
            return claims
        sub = str(claims["sub"])
        if request.method == "GET":
            return JSONResponse({"items": [asdict(i) for i in store.list(sub)]})
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "bad_request", "body must be JSON")
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return _error(400, "bad_request", "text is required")
        text = text.strip()
        if len(text) > MAX_ITEM_TEXT:
            return _error(400, "bad_request", f"text is longer than {MAX_ITEM_TEXT} characters")
        try:
            item = store.add(sub, text)
        except ValueError as exc:
            return _error(409, "too_many_items", str(exc))
        return JSONResponse(asdict(item), status_code=201)

    async def delete_item(request: Request) -> Response:
        claims = authenticate(request)
        if isinstance(claims, Response):
            return claims
        if not store.remove(str(claims["sub"]), request.path_params["item_id"]):
            return _error(404, "not_found", "no such item")
        return Response(status_code=204)

    async def clock(request: Request) -> Response:
        claims = authenticate(request)
        if isinstance(claims, Response):
            return claims

        async def ticks() -> AsyncIterator[str]:
            # ``retry`` tells EventSource to reconnect quickly if the stream drops; the reconnect goes
            # through the gateway again and so gets a fresh access token, while this stream keeps running
            # on the one it opened with.
            yield "retry: 1000\n\n"
            seq = 0
            while True:
                seq += 1
                data = json.dumps({"time": _iso_now(), "seq": seq})
                yield f"id: {seq}\nevent: tick\ndata: {data}\n\n"
                await asyncio.sleep(clock_interval)

        # ``X-Accel-Buffering`` stops buffering proxies (nginx) from holding events back.
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(ticks(), media_type="text/event-stream", headers=headers)

    async def slow(request: Request) -> Response:
        claims = authenticate(request)
        if isinstance(claims, Response):
            return claims
        try:
            ms = int(request.query_params.get("ms", "1000"))
        except ValueError:
            return _error(400, "bad_request", "ms must be an integer")
        if not 0 <= ms <= MAX_SLOW_MS:
            return _error(400, "bad_request", f"ms must be between 0 and {MAX_SLOW_MS}")
        await asyncio.sleep(ms / 1000)
        return JSONResponse({"slept_ms": ms, "at": _iso_now()})

    routes = [
        Route("/api/me", me, methods=["GET"]),
        Route("/api/items", items, methods=["GET", "POST"]),
        Route("/api/items/{item_id}", delete_item, methods=["DELETE"]),
        Route("/api/clock", clock, methods=["GET"]),
        Route("/api/slow", slow, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def main(argv: list[str] | None = None) -> None:
    """Serve the demo upstream with uvicorn (default 127.0.0.1:9000)."""
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m gateway.demo_upstream", description="frontdesk demo upstream API"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--audience", default=os.environ.get("FRONTDESK_AUDIENCE", "frontdesk-api"))
    parser.add_argument(
        "--clock-interval", type=float, default=1.0, help="seconds between SSE clock events (default 1)"
    )
    args = parser.parse_args(argv)
    try:
        app = create_demo_upstream(audience=args.audience, clock_interval=args.clock_interval)
    except RuntimeError as exc:
        parser.exit(2, f"error: {exc}\n")
    # A short graceful-shutdown timeout: open SSE clocks never end on their own.
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=2, log_level="warning")


if __name__ == "__main__":
    main()
