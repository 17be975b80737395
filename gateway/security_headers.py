"""The security headers every response leaving the gateway carries, added in one place.

``/auth/*``, ``/healthz``, the JWKS, the static files (their 404s and redirects too), the proxy's own
refusals and a refused WebSocket upgrade all pass through :class:`SecurityHeaders`, so no new endpoint can
forget them. Each header is added only when the response has none of its own: the SPA keeps its full
Content-Security-Policy, and a proxied upstream that chose its own framing, referrer or HSTS policy keeps
it (an upstream knows whether its pages may be framed; the gateway only supplies the safe default).

Framing is one decision: a response that already says anything about it (``X-Frame-Options``, or a CSP with
``frame-ancestors``) is left alone; otherwise it gets ``X-Frame-Options: DENY`` and, when it has no policy
at all, ``Content-Security-Policy: frame-ancestors 'none'`` (an existing CSP is never rewritten).

The header values are bytes built once; per response the work is one pass over its header names.
"""

from __future__ import annotations

from collections.abc import Iterable

from frontdesk.middleware.asgi_io import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders", "NOSNIFF", "FRAME_DENY", "REFERRER_POLICY", "FRAME_ANCESTORS_NONE"]

NOSNIFF = (b"x-content-type-options", b"nosniff")
FRAME_DENY = (b"x-frame-options", b"DENY")
FRAME_ANCESTORS_NONE = (b"content-security-policy", b"frame-ancestors 'none'")
# same-origin rather than no-referrer: proxied apps may check Referer on their own same-origin requests
# (Django's CSRF check does over HTTPS); nothing leaks to another origin either way. The SPA sends no-referrer.
REFERRER_POLICY = (b"referrer-policy", b"same-origin")
_CSP = b"content-security-policy"
_XFO = b"x-frame-options"
_HSTS = b"strict-transport-security"
_STARTS = frozenset({"http.response.start", "websocket.http.response.start"})
_OURS = frozenset({_CSP, _XFO, _HSTS, NOSNIFF[0], REFERRER_POLICY[0]})


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP response (and WebSocket refusal) of ``app``.

    ``hsts_max_age`` (seconds, from ``[server] hsts``) adds ``Strict-Transport-Security``; ``None`` leaves it
    out (the default: HSTS is a promise about every future visit that only the operator can make).
    """

    def __init__(self, app: ASGIApp, *, hsts_max_age: int | None = None) -> None:
        self.app = app
        self._hsts = (_HSTS, b"max-age=%d" % hsts_max_age) if hsts_max_age is not None else None
        # The common case (a response with none of these headers) is one set test and one list build.
        self._all = [NOSNIFF, FRAME_DENY, FRAME_ANCESTORS_NONE, REFERRER_POLICY]
        if self._hsts is not None:
            self._all.append(self._hsts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        secure = self.secure

        async def send_secured(message: Message) -> None:
            if message["type"] in _STARTS:
                message = {**message, "headers": secure(message.get("headers", ()))}
            await send(message)

        await self.app(scope, receive, send_secured)

    def secure(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """A new list: ``headers`` (lower-case names, as ASGI apps send them) plus every missing security
        header."""
        headers = list(headers)
        names = {name for name, _ in headers}
        if names.isdisjoint(_OURS):
            return headers + self._all
        framing = _XFO in names or (
            _CSP in names and any(n == _CSP and b"frame-ancestors" in v.lower() for n, v in headers)
        )
        if NOSNIFF[0] not in names:
            headers.append(NOSNIFF)
        if not framing:
            headers.append(FRAME_DENY)
            if _CSP not in names:
                headers.append(FRAME_ANCESTORS_NONE)
        if REFERRER_POLICY[0] not in names:
            headers.append(REFERRER_POLICY)
        if self._hsts is not None and _HSTS not in names:
            headers.append(self._hsts)
        return headers
