"""Login rate limits that cannot be turned against the user they protect.

Two limits per window (``login_window``), checked in one atomic store call before the password is hashed:

- per client address (``login_attempts_per_address``), checked first;
- per username (``login_attempts_per_user``), but only for clients that are not a *known device* of that user.

A known device is one the user logged in from before: a successful login hands out a signed, HttpOnly
``__Host-`` device cookie naming the user (OWASP's "device cookies"). A client that presents a valid one for
the username it tries gets its own budget of ``login_attempts_per_user`` instead of the shared per-username
one, so an attacker who exhausts the per-username budget locks out unknown clients only: the real user, with
the right password, still gets in from their own browser. A stolen device cookie buys no more guesses than
the per-username budget (and the address limit still applies).

A refused attempt counts against nothing (see :meth:`Store.attempt`): an address already refused cannot
push anyone's per-username counter, and refused requests write nothing to the store.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .cookies import CookiePolicy, device_cookie_name, read_cookie
from .errors import RateLimited, TokenError
from .store.base import Store, window_bounds
from .tokens import TokenCodec, new_token_id

__all__ = ["DEVICE_TYP", "LoginLimits", "LoginPass", "device_cookie_policy", "user_key"]

DEVICE_TYP = "device+jwt"


def user_key(username: str) -> str:
    """The per-username counter (case and surrounding blanks do not make a new username)."""
    return f"login:user:{_normal(username)}"


def _normal(username: str) -> str:
    return username.strip().lower()


def device_cookie_policy(session_cookie: CookiePolicy) -> CookiePolicy:
    """The device cookie: the session cookie's attributes under the name ``<session cookie>-device``."""
    return dataclasses.replace(session_cookie, name=device_cookie_name(session_cookie.name))


@dataclass(frozen=True, slots=True)
class LoginPass:
    """An attempt that was let through: the counter to reset on success, and the client's device id if known."""

    counter: str
    device_id: str | None


class LoginLimits:
    def __init__(
        self,
        *,
        store: Store,
        device_codec: TokenCodec,
        cookie: CookiePolicy,
        per_user: int,
        per_address: int,
        window: float,
        device_ttl: float,
    ) -> None:
        if device_codec.typ != DEVICE_TYP:
            raise ValueError(f"device tokens need their own token type {DEVICE_TYP!r}")
        self.store = store
        self.codec = device_codec
        self.cookie = device_cookie_policy(cookie)
        self.per_user = per_user
        self.per_address = per_address
        self.window = window
        self.device_ttl = device_ttl

    async def admit(self, username: str, client_ip: str | None, cookie_header: str | None, now: float) -> LoginPass:
        """Count this attempt, or raise :class:`RateLimited` having counted nothing."""
        device_id = self.known_device(cookie_header, username)
        counter = f"login:device:{device_id}" if device_id else user_key(username)
        limits = [(counter, self.per_user)]
        if client_ip:
            limits.insert(0, (f"login:addr:{client_ip}", self.per_address))  # the address is checked first
        if await self.store.attempt(limits, window=self.window, now=now) is not None:
            _, end = window_bounds(now, self.window)
            raise RateLimited(retry_after=int(end - now) + 1)
        return LoginPass(counter, device_id)

    async def succeeded(self, attempt: LoginPass, username: str, now: float) -> str:
        """After a correct password: clear the counter this attempt used; the device cookie to set (the same
        device id again for a known device, so its budget carries on, a new one otherwise)."""
        await self.store.reset(attempt.counter)
        token = self.codec.encode(
            {
                "sub": _normal(username),
                "sid": attempt.device_id or new_token_id(),
                "jti": new_token_id(),
                "iat": int(now),
                "exp": int(now + self.device_ttl),
            }
        )
        return self.cookie.set_cookie(token, max_age=int(self.device_ttl))

    def known_device(self, cookie_header: str | None, username: str) -> str | None:
        """The device id of a valid device cookie for ``username`` in ``cookie_header``, or None."""
        token = read_cookie(cookie_header, self.cookie.name)
        if token is None:
            return None
        try:
            claims = self.codec.decode(token)
        except TokenError:
            return None
        return str(claims["sid"]) if claims["sub"] == _normal(username) else None
