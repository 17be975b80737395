"""What the proxy needs from the session engine and the trusted-proxy list, as small Protocols.

Writing against these (rather than importing the concrete classes) keeps the proxy testable with fakes and
keeps the dependency one-way: the engine never learns that a proxy exists.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["GrantLike", "TokenSource", "TrustPolicy"]


class GrantLike(Protocol):
    @property
    def sid(self) -> str: ...
    @property
    def access_token(self) -> str: ...
    @property
    def set_cookie(self) -> str | None: ...


class TokenSource(Protocol):
    @property
    def cookie_name(self) -> str: ...

    async def grant(
        self, cookie_header: str | None, *, audience: str | None = None, force_new: bool = False
    ) -> GrantLike: ...

    async def is_active(self, sid: str) -> bool: ...


class TrustPolicy(Protocol):
    def is_trusted(self, host: str | None) -> bool: ...
