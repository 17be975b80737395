"""The refresh cookie: how it is written, cleared and read back.

The ``__Host-`` prefix makes the browser enforce what we want anyway: ``Secure``, ``Path=/`` and no
``Domain``, so no sibling sub-domain can plant or overwrite it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEVICE_SUFFIX", "CookiePolicy", "CookiePolicyError", "device_cookie_name", "read_cookie", "strip_cookie"]

# The login device cookie (see login_limits) is named after the session cookie, so whatever strips or guards
# the session cookie knows its sibling from the one configured name.
DEVICE_SUFFIX = "-device"


def device_cookie_name(session_cookie: str) -> str:
    return session_cookie + DEVICE_SUFFIX

_SAMESITE = ("Strict", "Lax", "None")
_HOST = "__Host-"


class CookiePolicyError(ValueError):
    """A :class:`CookiePolicy` the browser would refuse; ``problems`` lists every reason, each starting with
    the parameter's name (the gateway puts its table in front: ``cookie.name ...``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("CookiePolicy: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    """How the refresh cookie is written; checked when built (:class:`CookiePolicyError` names every problem),
    because a browser drops a cookie that breaks these rules without a word, and nobody could log in."""

    name: str = "__Host-frontdesk"
    same_site: str = "Strict"
    secure: bool = True
    path: str = "/"
    domain: str | None = None

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise CookiePolicyError(problems)

    def _problems(self) -> list[str]:
        out: list[str] = []
        name, same_site = self.name, self.same_site
        if not isinstance(name, str):
            out.append(f"name must be a string, not {name!r}")
        elif name.startswith("__Secure-"):
            # __Secure- only demands Secure: a sibling sub-domain could still plant a cookie of that name.
            out.append(f'name {name!r} must start with "__Host-": a sibling sub-domain can set a __Secure- cookie')
        elif not name.startswith(_HOST):
            out.append(f'name {name!r} must start with "__Host-"')
        elif len(name) == len(_HOST) or not _is_token(name):
            out.append(f"name {name!r} is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~ only)")
        if self.secure is not True:
            out.append("secure must be true: browsers accept a __Host- cookie (and SameSite=None) only with Secure")
        if self.path != "/":
            out.append(f'path must be "/" for a __Host- cookie, not {self.path!r}')
        if self.domain is not None and self.domain != "":
            out.append("domain must not be set for a __Host- cookie")
        if same_site not in _SAMESITE:
            hint = [v for v in _SAMESITE if isinstance(same_site, str) and v.lower() == same_site.strip().lower()]
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            out.append(f"same_site must be one of Strict, Lax, None, not {same_site!r}{did_you_mean}")
        return out

    def set_cookie(self, value: str, *, max_age: int | None) -> str:
        """A Set-Cookie header value; no ``Max-Age`` makes a browser-session cookie."""
        parts = [f"{self.name}={value}", f"Path={self.path}"]
        if max_age is not None:
            parts.append(f"Max-Age={max(0, int(max_age))}")
        parts += ["HttpOnly", "Secure", f"SameSite={self.same_site}"]
        return "; ".join(parts)

    def clear_cookie(self) -> str:
        return "; ".join(
            [f"{self.name}=", f"Path={self.path}", "Max-Age=0", "HttpOnly", "Secure", f"SameSite={self.same_site}"]
        )


def _is_token(name: str) -> bool:
    """An RFC 9110 token: visible ASCII without separators (no spaces, ``;``, ``=``, quotes...)."""
    return all(33 <= ord(c) <= 126 and c not in '()<>@,;:\\"/[]?={}' for c in name)


def read_cookie(cookie_header: str | None, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, or None.

    Parsed by hand rather than with SimpleCookie, which drops the whole header on one odd cookie set by
    some other app on the same host.
    """
    if not cookie_header:
        return None
    found: str | None = None
    for part in cookie_header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            value = value.strip().strip('"')
            if found is not None and found != value:
                # Two different values: someone is trying cookie tossing. Believe neither.
                return None
            found = value
    return found or None


def strip_cookie(cookie_header: str, name: str) -> str:
    """The ``Cookie`` header without the session cookie ``name`` and its device cookie (others pass untouched).

    Both are frontdesk's credentials, never the wrapped app's or an upstream's business.
    """
    own = (name, device_cookie_name(name))
    kept = [p.strip() for p in cookie_header.split(";") if p.strip() and p.strip().partition("=")[0] not in own]
    return "; ".join(kept)
