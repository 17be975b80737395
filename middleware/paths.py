"""Which paths skip authentication, and which scopes a path requires; parsed once, looked up per request.

Both rules fail closed on paths a lenient router might read differently from how they look: a path with
``.``/``..`` segments, an empty segment or a backslash is never public, and scope rules are matched against
the path with those segments resolved, so ``/public/../admin`` still needs the scopes of ``/admin``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["PathRules", "token_scopes"]


def _validate(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ValueError(f"path rule {prefix!r} must start with /")
    return prefix


def _is_plain(path: str) -> bool:
    if "\\" in path or "//" in path:
        return False
    segments = path.split("/")
    return not any(seg in (".", "..") for seg in segments)


def _matches(prefix: str, path: str) -> bool:
    """``/static/`` matches its subtree; ``/healthz`` matches itself and ``/healthz/...``, not ``/healthzz``."""
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True, slots=True)
class PathRules:
    public: tuple[str, ...] = ()
    scopes: tuple[tuple[str, frozenset[str]], ...] = ()  # longest prefix first

    @classmethod
    def build(cls, public: Iterable[str] = (), scopes: Mapping[str, str | Iterable[str]] | None = None) -> PathRules:
        """``scopes`` maps a path prefix to the scope(s) a token needs there; the longest prefix wins."""
        rules: list[tuple[str, frozenset[str]]] = []
        for prefix, needed in (scopes or {}).items():
            names = needed.split() if isinstance(needed, str) else list(needed)
            rules.append((_validate(prefix), frozenset(names)))
        rules.sort(key=lambda rule: len(rule[0]), reverse=True)
        return cls(public=tuple(_validate(p) for p in public), scopes=tuple(rules))

    def is_public(self, path: str) -> bool:
        """``"/"`` means the root page only: making every path public by listing the home page is a trap."""
        if not self.public:
            return False
        return _is_plain(path) and any(
            path == "/" if prefix == "/" else _matches(prefix, path) for prefix in self.public
        )

    def required_scopes(self, path: str) -> frozenset[str]:
        if not self.scopes:
            return frozenset()
        # normpath keeps a leading "//" (POSIX leaves it implementation-defined); collapse it too.
        resolved = path if _is_plain(path) else "/" + posixpath.normpath(path.replace("\\", "/")).lstrip("/")
        for prefix, needed in self.scopes:
            if _matches(prefix, resolved) or (prefix.endswith("/") and resolved == prefix[:-1]):
                return needed
        return frozenset()


def token_scopes(claims: Mapping[str, object]) -> frozenset[str]:
    """Scopes granted by a token: ``scope`` (space-separated, RFC 9068) or ``scp`` (a list)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list | tuple):  # a tuple once the claims are read-only
        return frozenset(s for s in scp if isinstance(s, str))
    return frozenset()
