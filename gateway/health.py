"""``GET /healthz`` and ``GET /readyz``: answered by the gateway itself, before any route, for anyone.

``/healthz`` says the process answers (a liveness probe: restart me if this fails). ``/readyz`` says this
process can serve logins and sessions now (a readiness probe: send me traffic): the session store reachable,
writable and migrated to this version's schema (:meth:`Store.check_ready`), an access-token signing key
loaded, the user directory open, and the process not shutting down. Otherwise 503 with the first reason found,
in plain words without paths or URLs (the log line has those).

Both are unauthenticated and never rate limited, so they must stay cheap whatever the request rate: one
readiness check runs at a time and its answer is reused for :data:`READY_CACHE` seconds, so a flood of probes
costs the store one small query a second. GET and HEAD only; the security headers come from the layer around
the whole gateway, like every other response's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from frontdesk.middleware.asgi_io import Scope, Send, send_response
from frontdesk.middleware.errors import FrontdeskError, StoreNotReady
from frontdesk.middleware.http import HttpResponse, error_body, json_response
from frontdesk.middleware.store import Store
from frontdesk.middleware.tokens import KeyRing

from .users import UserDirectory

__all__ = ["Health", "HEALTH_PATH", "READY_PATH", "READY_CACHE"]

log = logging.getLogger("frontdesk.health")

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
READY_CACHE = 1.0
_NO_STORE = [("cache-control", "no-store")]


class Health:
    def __init__(
        self,
        store: Store,
        keyring: KeyRing,
        users: UserDirectory | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._users = users
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._checked_at = float("-inf")
        self._reason: str | None = None
        self.shutting_down = False  # set when the server starts to stop: load balancers should look elsewhere

    def handles(self, path: str) -> bool:
        return path in (HEALTH_PATH, READY_PATH)

    async def __call__(self, scope: Scope, send: Send) -> None:
        await send_response(send, await self.response(scope["path"], scope["method"]))

    async def response(self, path: str, method: str) -> HttpResponse:
        if method != "GET" and method != "HEAD":
            refused = error_body(405, "method_not_allowed", f"{method} is not allowed here; use GET or HEAD")
            refused.headers += [("allow", "GET, HEAD"), *_NO_STORE]
            return refused
        if path == HEALTH_PATH:
            return json_response(200, {"status": "ok"}, _NO_STORE)
        reason = await self.readiness()
        if reason is None:
            return json_response(200, {"status": "ready"}, _NO_STORE)
        return json_response(503, {"status": "not ready", "reason": reason}, _NO_STORE)

    async def readiness(self) -> str | None:
        """None when ready, else why not (safe to show anyone). Reused for :data:`READY_CACHE` seconds."""
        if self.shutting_down:
            return "shutting down"
        async with self._lock:  # probes arriving together share one check
            if self._monotonic() - self._checked_at >= READY_CACHE:
                reason, specifics = await self._check()
                if reason != self._reason:  # log changes only: a failing probe every second is not news
                    if reason is None:
                        log.info("ready again")
                    else:
                        log.warning("not ready: %s", specifics or reason)
                self._reason, self._checked_at = reason, self._monotonic()
            return self._reason

    async def _check(self) -> tuple[str | None, str]:
        """(the reason shown to anyone, or None when ready; the specifics for the log)."""
        if self._users is not None and not self._users.is_open:
            return "the user directory is not open", ""
        try:
            self._keyring.signing_key()
        except FrontdeskError:
            return "no access-token signing key is loaded", ""
        try:
            await self._store.check_ready()
        except StoreNotReady as exc:
            return exc.reason, str(exc)
        except FrontdeskError as exc:
            return "the session store is unavailable", str(exc)
        except Exception as exc:  # a readiness probe must answer, whatever went wrong
            log.exception("the store's readiness check failed unexpectedly")
            return "the session store's readiness check failed", repr(exc)
        return None, ""
