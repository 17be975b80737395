"""What one login remembers between ``/login`` and ``/callback``: ``state``, ``nonce``, the PKCE verifier, the
provider and the return path, in a short-lived cookie signed with itsdangerous.

The cookie has its own ``__Host-`` name, is ``HttpOnly; Secure`` and ``SameSite=Lax`` (a ``Strict`` cookie
would not come back with the provider's top-level redirect to the callback), and lives 10 minutes. It is
signed, not encrypted: the verifier in it is useless without the code, which only the browser holding this
very cookie receives, and the client secret that the exchange needs never leaves the server.

Single use: the callback clears the cookie, this process remembers every ``state`` it has completed until the
cookie could have expired, and the provider accepts each authorization code once, so a replay on another
worker fails at the code exchange.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from ..caches import ExpiringCache
from ..clock import Clock, system_clock
from ..cookies import CookiePolicy, read_cookie
from ..errors import InvalidLoginState

__all__ = ["LOGIN_STATE_COOKIE", "LOGIN_STATE_TTL", "LoginState", "LoginStateCookie", "safe_return_path"]

LOGIN_STATE_COOKIE = "__Host-frontdesk-oidc"
LOGIN_STATE_TTL = 600  # seconds: 10 minutes to get through the provider's login form
_MAX_RETURN_PATH = 2048
_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True, slots=True)
class LoginState:
    provider: str
    state: str
    nonce: str
    verifier: str
    return_to: str


def safe_return_path(value: str | None) -> str:
    """``value`` when it is a path on this origin, else ``/``: it must start with one ``/`` and hold no scheme,
    no ``//`` or ``/\\`` (browsers read both as another host), no backslash, no control characters."""
    if not value or len(value) > _MAX_RETURN_PATH:
        return "/"
    if not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    # It goes into a Location header: anything beyond printable ASCII (a space, "é") is percent-encoded.
    return quote(value, safe=_PRINTABLE_ASCII)


class LoginStateCookie:
    """Issues and reads the signed login-state cookie. ``secret`` is shared by every worker and instance
    (the gateway derives it from the refresh secret), so a login may start and finish on different ones."""

    def __init__(self, secret: bytes, *, name: str = LOGIN_STATE_COOKIE, ttl: int = LOGIN_STATE_TTL,
                 clock: Clock = system_clock) -> None:  # fmt: skip
        self.name = name
        self.ttl = ttl
        self.clock = clock
        self.policy = CookiePolicy(name=name, same_site="Lax")
        signer = type("ClockedSigner", (TimestampSigner,), {"get_timestamp": lambda _self: int(clock())})
        self._serializer = URLSafeTimedSerializer(secret, salt="frontdesk-oidc-login-state", signer=signer)
        self._completed: ExpiringCache[str, bool] = ExpiringCache(100_000)

    def issue(self, state: LoginState) -> str:
        """The ``Set-Cookie`` value carrying ``state``."""
        value = self._serializer.dumps(asdict(state))
        return self.policy.set_cookie(str(value), max_age=self.ttl)

    def clear(self) -> str:
        return self.policy.clear_cookie()

    def read(self, cookie_header: str | None, *, provider: str, state: str | None) -> LoginState:
        """The login the callback completes: the cookie's signature and age checked, its ``state`` compared in
        constant time with the callback's, its provider with the callback's path, and never one completed
        before. Marks it completed. :class:`InvalidLoginState` otherwise."""
        raw = read_cookie(cookie_header, self.name)
        if raw is None:
            raise InvalidLoginState("no login in progress in this browser (the login cookie is missing)")
        try:
            data: Any = self._serializer.loads(raw, max_age=self.ttl)
        except SignatureExpired as exc:
            raise InvalidLoginState("the login took longer than 10 minutes; start again") from exc
        except (BadSignature, ValueError, json.JSONDecodeError) as exc:
            raise InvalidLoginState("the login cookie is not one this gateway signed") from exc
        try:
            login = LoginState(**data)
        except TypeError as exc:
            raise InvalidLoginState("the login cookie is not one this gateway signed") from exc
        if not isinstance(state, str) or not hmac.compare_digest(login.state.encode(), state.encode()):
            raise InvalidLoginState("the state does not match this browser's login")
        if login.provider != provider:
            raise InvalidLoginState("this login was started with another provider")
        now = self.clock()
        if self._completed.get(login.state, now):
            raise InvalidLoginState("this login was completed already")
        self._completed.set(login.state, True, now + self.ttl + 1, now)
        return login
