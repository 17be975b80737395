"""The security headers every response leaving the gateway carries, added in one place.

``/auth/*``, ``/healthz``, the JWKS, the static files (their 404s and redirects too), the proxy's own
refusals and a refused WebSocket upgrade all pass through the gateway's edge layer (``edge.py``), which adds
them with :class:`SecurityHeaders`, so no new endpoint can forget them. Each header is added only when
the response has none of its own: the SPA keeps its full Content-Security-Policy, and a proxied upstream
that chose its own framing, referrer or HSTS policy keeps it (an upstream knows whether its pages may be
framed; the gateway only supplies the safe default).

Framing is one decision: a response that already says anything about it (``X-Frame-Options``, or a CSP with
``frame-ancestors``) is left alone; otherwise it gets ``X-Frame-Options: DENY`` and, when it has no policy
at all, ``Content-Security-Policy: frame-ancestors 'none'`` (an existing CSP is never rewritten).

The header values are bytes built once. The edge layer finds out in the pass it makes over a response's
headers anyway whether any of :data:`NAMES` is there; when none is (the common case) it appends
:attr:`SecurityHeaders.defaults`, and only otherwise calls :meth:`SecurityHeaders.secure`.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["SecurityHeaders", "NAMES", "NOSNIFF", "FRAME_DENY", "REFERRER_POLICY", "FRAME_ANCESTORS_NONE"]

NOSNIFF = (b"x-content-type-options", b"nosniff")
FRAME_DENY = (b"x-frame-options", b"DENY")
FRAME_ANCESTORS_NONE = (b"content-security-policy", b"frame-ancestors 'none'")
# same-origin rather than no-referrer: proxied apps may check Referer on their own same-origin requests
# (Django's CSRF check does over HTTPS); nothing leaks to another origin either way. The SPA sends no-referrer.
REFERRER_POLICY = (b"referrer-policy", b"same-origin")
_CSP = b"content-security-policy"
_XFO = b"x-frame-options"
_HSTS = b"strict-transport-security"
NAMES = frozenset({_CSP, _XFO, _HSTS, NOSNIFF[0], REFERRER_POLICY[0]})  # a response with one of these is looked at


class SecurityHeaders:
    """The security headers for every HTTP response (and WebSocket refusal) the gateway writes.

    ``hsts_max_age`` (seconds, from ``[server] hsts``) adds ``Strict-Transport-Security``; ``None`` leaves it
    out (the default: HSTS is a promise about every future visit that only the operator can make).
    """

    def __init__(self, *, hsts_max_age: int | None = None) -> None:
        self._hsts = (_HSTS, b"max-age=%d" % hsts_max_age) if hsts_max_age is not None else None
        # What a response with none of NAMES gets: all of them, appended as they are.
        self.defaults: tuple[tuple[bytes, bytes], ...] = (NOSNIFF, FRAME_DENY, FRAME_ANCESTORS_NONE, REFERRER_POLICY)
        if self._hsts is not None:
            self.defaults += (self._hsts,)

    def secure(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """A new list: ``headers`` (lower-case names, as ASGI apps send them) plus every missing security
        header."""
        headers = list(headers)
        names = {name for name, _ in headers}
        if names.isdisjoint(NAMES):
            headers += self.defaults
            return headers
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
