"""Session mode on a shared Redis store, for a real uvicorn process of its own (the lifespan test runs two):
``uvicorn redis_session_app:app --app-dir tests/middleware/adapters`` with ``FRONTDESK_TEST_REDIS`` (the URL)
and ``FRONTDESK_TEST_PREFIX`` (this test's key prefix) in the environment.

``/public/stats`` reports what only the process itself can see: its session reads from the store, and whether
its invalidation watch runs.
"""

from __future__ import annotations

import os

from mw_world import ACCESS_SECRET, PASSWORD, REFRESH_SECRET, authenticator, whoami
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from frontdesk.middleware.asgi import FrontdeskMiddleware
from frontdesk.middleware.session_mode import SessionAuth
from frontdesk.middleware.sessions import SessionSettings
from tests.support.counting_store import CountingRedisStore

__all__ = ["PASSWORD", "app"]


store = CountingRedisStore(os.environ["FRONTDESK_TEST_REDIS"], prefix=os.environ["FRONTDESK_TEST_PREFIX"])
auth = SessionAuth.from_secrets(
    access_secret=ACCESS_SECRET,
    refresh_secret=REFRESH_SECRET,
    authenticator=authenticator,
    store=store,
    settings=SessionSettings(login_attempts_per_address=100_000),
    public_paths=["/public/"],
)


async def stats(request: Request) -> JSONResponse:
    freshness = auth.engine.freshness
    return JSONResponse({"reads": store.reads, "watching": freshness is not None and freshness.running})


app = FrontdeskMiddleware(Starlette(routes=[Route("/whoami", whoami), Route("/public/stats", stats)]), auth)
