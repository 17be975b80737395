"""The refresh cookie: how it is written, cleared and read back.

The ``__Host-`` prefix makes the browser enforce what we want anyway: ``Secure``, ``Path=/`` and no
``Domain``, so no sibling sub-domain can plant or overwrite it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEVICE_SUFFIX", "CookiePolicy", "device_cookie_name", "read_cookie", "strip_cookie"]

# The login device cookie (see login_limits) is named after the session cookie, so whatever strips or guards
# the session cookie knows its sibling from the one configured name.
DEVICE_SUFFIX = "-device"


def device_cookie_name(session_cookie: str) -> str:
    return session_cookie + DEVICE_SUFFIX

_SAMESITE = ("Strict", "Lax", "None")


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    name: str = "__Host-frontdesk"
    same_site: str = "Strict"
    secure: bool = True
    path: str = "/"
    domain: str | None = None

    def problems(self) -> list[str]:
        """Plain-word reasons this policy breaks the ``__Host-`` rules (empty when fine), each starting with the
        field's name; the gateway puts its table in front (``cookie.name ...``)."""
        out: list[str] = []
        if not self.name.startswith("__Host-"):
            out.append(f'name {self.name!r} must start with "__Host-"')
        elif len(self.name) == len("__Host-") or not _is_token(self.name):
            out.append(f"name {self.name!r} is not a valid cookie name")
        if not self.secure:
            out.append("secure must be true: a __Host- cookie is only accepted with Secure")
        if self.path != "/":
            out.append(f'path must be "/" for a __Host- cookie, not {self.path!r}')
        if self.domain:
            out.append("domain must not be set for a __Host- cookie")
        if self.same_site not in _SAMESITE:
            out.append(f"same_site must be one of Strict, Lax, None, not {self.same_site!r}")
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
