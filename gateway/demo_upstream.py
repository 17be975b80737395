"""The demo upstream API: an ordinary Starlette app behind the gateway, wrapped in frontdesk's bearer mode.

The gateway forwards ``/api/...`` unchanged and attaches ``Authorization: Bearer <access token>``; this app
only ever sees that header, never the browser's cookie. ``FrontdeskMiddleware`` in bearer mode verifies the
token (type ``at+jwt``, issuer, audience, signature, expiry) and answers 401 with an RFC 6750 challenge on
its own, so the handlers below only read the verified claims. The endpoints exercise the proxy:

- ``GET /api/me``: the claims it received (never the token itself);
- ``GET/POST /api/items``, ``DELETE /api/items/{id}``: a small in-memory list per user ``sub``;
- ``GET /api/clock``: server-sent events, one per second, carrying the time;
- ``GET /api/slow?ms=...``: sleeps, then answers (to watch the proxy stream and time out).

Run it on its own with ``python -m gateway.demo_upstream --port 9000``; it verifies tokens with
``FRONTDESK_ACCESS_SECRET`` (and ``FRONTDESK_ACCESS_SECRET_PREVIOUS`` during a rotation), as the gateway signs them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from frontdesk.middleware.asgi import SCOPE_CLAIMS, FrontdeskMiddleware
from frontdesk.middleware.bearer import BearerAuth
from frontdesk.middleware.tokens import KeyRing

__all__ = [
    "Item",
    "ItemStore",
    "bearer_auth_from_env",
    "create_demo_upstream",
    "main",
]

# Bounds that keep a public demo from being used as a memory or connection sink.
MAX_ITEMS_PER_USER = 100
MAX_ITEM_TEXT = 200
MAX_SLOW_MS = 30_000


def bearer_auth_from_env(
    env: Mapping[str, str] | None = None, *, audience: str = "frontdesk-api", issuer: str = "frontdesk"
) -> BearerAuth:
    """Bearer mode with the gateway's access secret(s) from the environment."""
    environ = os.environ if env is None else env
    secret = environ.get("FRONTDESK_ACCESS_SECRET", "")
    if not secret:
        raise RuntimeError("the demo upstream needs FRONTDESK_ACCESS_SECRET to verify access tokens")
    previous = [v.strip() for v in environ.get("FRONTDESK_ACCESS_SECRET_PREVIOUS", "").split(",") if v.strip()]
    return BearerAuth(keyring=KeyRing.from_secrets(secret, previous), issuer=issuer, audience=audience)


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


def _claims(request: Request) -> dict[str, Any]:
    # Set by FrontdeskMiddleware after it verified the token; a request without valid claims never gets here.
    claims: dict[str, Any] = request.scope[SCOPE_CLAIMS]
    return claims


def create_demo_upstream(
    auth: BearerAuth | None = None,
    *,
    audience: str = "frontdesk-api",
    clock_interval: float = 1.0,
) -> Starlette:
    """Build the demo upstream app.

    ``auth`` verifies the gateway's access tokens; by default bearer mode with ``FRONTDESK_ACCESS_SECRET``
    and ``audience``. ``clock_interval`` is the seconds between SSE clock events.
    """
    bearer = auth if auth is not None else bearer_auth_from_env(audience=audience)
    store = ItemStore()

    async def me(request: Request) -> Response:
        claims = _claims(request)
        return JSONResponse({"claims": claims, "received_at": _iso_now()})

    async def items(request: Request) -> Response:
        claims = _claims(request)
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
        claims = _claims(request)
        if not store.remove(str(claims["sub"]), request.path_params["item_id"]):
            return _error(404, "not_found", "no such item")
        return Response(status_code=204)

    async def clock(request: Request) -> Response:
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
    return Starlette(routes=routes, middleware=[Middleware(FrontdeskMiddleware, auth=bearer)])


def main(argv: list[str] | None = None) -> None:
    """Serve the demo upstream with uvicorn (default 127.0.0.1:9000)."""
    parser = argparse.ArgumentParser(
        prog="python -m frontdesk.gateway.demo_upstream", description="frontdesk demo upstream API"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--audience", default=os.environ.get("FRONTDESK_AUDIENCE", "frontdesk-api"))
    parser.add_argument("--issuer", default="frontdesk", help="iss the access tokens must carry")
    parser.add_argument(
        "--jwks-url", help="verify with the gateway's published keys (asymmetric [keys]) instead of the shared secret"
    )
    parser.add_argument(
        "--clock-interval", type=float, default=1.0, help="seconds between SSE clock events (default 1)"
    )
    args = parser.parse_args(argv)
    try:
        auth = (
            BearerAuth(jwks_url=args.jwks_url, issuer=args.issuer, audience=args.audience)
            if args.jwks_url
            else bearer_auth_from_env(audience=args.audience, issuer=args.issuer)
        )
        app = create_demo_upstream(auth, clock_interval=args.clock_interval)
    except RuntimeError as exc:
        parser.exit(2, f"error: {exc}\n")
    # A short graceful-shutdown timeout: open SSE clocks never end on their own.
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=2, log_level="warning")


if __name__ == "__main__":
    main()
