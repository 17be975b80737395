"""``GET /auth/verify``: forward-auth for nginx ``auth_request``, Traefik ``ForwardAuth`` and Caddy ``forward_auth``.

The proxy in front of some other app asks, for each request, whether the browser behind it is signed in: it
sends the original request's headers (the refresh cookie among them) and passes the request on only on a 2xx.
The answer is 200 with the identity in headers (``X-Auth-Request-User``, ``X-Auth-Request-Email`` when known,
``Authorization: Bearer <access token>`` when asked for), or 401 JSON. Silent refresh happens here as on every
request the gateway proxies itself: a rotated refresh cookie comes back in ``Set-Cookie`` for the proxy to pass
on to the browser. Nothing here is ever cacheable: each answer is about one browser at one moment.

The CSRF rule: the proxy's subrequest is a GET from the proxy, so no ``X-CSRF`` header can be asked of it (the
browser never sent one for a page load). What the proxy does forward are the browser's own headers, and those
are judged: a request the browser marks ``Sec-Fetch-Site: cross-site``, or whose ``Origin`` is not ours, is
answered 401 as if it carried no cookie at all (with ``SameSite=Strict`` a browser sends none cross-site anyway),
so a forged cross-site request never reaches the protected app as the user, even through a proxy that would
pass a cookie along. A 401 (not a 403) keeps the proxy's "send them to the login page" path for a link followed
from another site.

The access token is handed out only to a trusted proxy (``[server] trusted_proxies``): a browser calling
``/auth/verify?token=1`` directly would otherwise read the token that frontdesk keeps out of the browser.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from .errors import BadRequest, FrontdeskError
from .forwarded import TrustedProxies
from .http import HttpRequest, HttpResponse, json_response
from .sessions import Grant, SessionEngine

__all__ = ["ForwardAuth", "CrossSite", "USER_HEADER", "EMAIL_HEADER", "NEVER_CACHE"]

USER_HEADER = "x-auth-request-user"
EMAIL_HEADER = "x-auth-request-email"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
NEVER_CACHE = ("cache-control", "no-store, private")
_TRUE, _FALSE = frozenset({"1", "true", "yes"}), frozenset({"0", "false", "no"})


class ForwardAuth:
    def __init__(self, engine: SessionEngine, *, trusted: TrustedProxies, pass_token: bool = False) -> None:
        """``pass_token``: always answer with ``Authorization: Bearer`` (else only on ``?token=1``)."""
        self.engine = engine
        self.trusted = trusted
        self.pass_token = pass_token

    async def verify(self, request: HttpRequest, own_origins: frozenset[str]) -> HttpResponse:
        """Raises :class:`NotAuthenticated` or :class:`CrossSite` (401), or :class:`BadRequest` (400, 403); the
        caller turns them into JSON answers as for every other ``/auth/*`` endpoint."""
        with_token = self._wants_token(request.query)
        if with_token and not self.trusted.is_trusted(request.client):
            raise BadRequest(
                "the access token is handed only to a trusted proxy (see [server] trusted_proxies)",
                status=403,
                code="untrusted_proxy",
            )
        headers = request.headers
        if headers.get("sec-fetch-site", "").lower() == "cross-site":
            raise CrossSite("a cross-site request is never signed in")
        origin = headers.get("origin")
        if origin is not None and origin.lower().rstrip("/") not in own_origins:
            raise CrossSite("a request from another origin is never signed in")
        grant = await self.engine.grant(headers.get("cookie"))
        return _identity(grant, with_token)

    def _wants_token(self, query: bytes) -> bool:
        values = parse_qs(query.decode("latin-1")).get("token")
        if not values:
            return self.pass_token
        value = values[-1].strip().lower()
        if value not in _TRUE | _FALSE:
            raise BadRequest("token must be 1 or 0")
        return value in _TRUE or self.pass_token


class CrossSite(FrontdeskError):
    """A 401 that leaves the session alone: it says nothing about the cookie, only about where the request came
    from, so the cookie is not cleared (the user's own tab still holds a good one)."""

    status = 401
    code = "cross_site_request"


def _identity(grant: Grant, with_token: bool) -> HttpResponse:
    headers = [(USER_HEADER, grant.username), NEVER_CACHE]
    email = grant.claims.get("email")
    if not isinstance(email, str) and _EMAIL.fullmatch(grant.username):
        email = grant.username  # the username is an email address: the only address frontdesk knows
    if isinstance(email, str):
        headers.append((EMAIL_HEADER, email))
    if with_token:
        headers.append(("authorization", f"Bearer {grant.access_token}"))
    if grant.set_cookie:
        headers.append(("set-cookie", grant.set_cookie))
    return json_response(200, {"user": {"id": grant.user_id, "username": grant.username}}, headers)
