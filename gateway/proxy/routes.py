"""``[[routes]]``: parsed once into frozen ``Route`` objects; the request path only looks them up.

Upstream hosts come from here and nowhere else: nothing a request carries can change where it goes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from frontdesk.middleware.admission import AuthMode

from ..validators import parse_duration, parse_size, unknown_key

__all__ = ["AuthMode", "Route", "Upstream", "RouteTable", "parse_routes", "DEFAULT_METHODS", "IDP_AUDIENCE", "TOKENS"]

DEFAULT_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_KEYS = frozenset(
    {"prefix", "upstream", "auth", "audience", "methods", "csrf", "timeout", "websocket", "max_body_size", "token"}
)
TOKENS = ("frontdesk", "idp")  # which access token the upstream receives: frontdesk's own, or the IdP's
IDP_AUDIENCE = "frontdesk:idp"
"""The audience a ``token = "idp"`` route asks the token source for: the identity provider's access token of the
session instead of one frontdesk mints (gateway/idp_sessions.py hands it out)."""
# A prefix or upstream path made only of unreserved characters and sub-delims: no percent-escapes,
# backslashes, empty or dot segments, so byte-wise prefix matching means what it looks like.
_SEG = r"[A-Za-z0-9\-._~!$&'()*+,;=:@]+"
_SAFE_PATH = re.compile(rf"^/(?:{_SEG}(?:/{_SEG})*/?)?$")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.{1,2}(?:/|$)")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Upstream:
    scheme: str  # "http" | "https"
    host: str
    port: int
    # Replaces the route prefix when set (nginx ``proxy_pass http://h/v1/`` semantics); None forwards as is.
    base_path: bytes | None
    host_header: bytes  # what the upstream sees as Host

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    def at_port(self, port: int) -> Upstream:
        """The same upstream on another port (``frontdesk demo --upstream-port``), its Host header to match."""
        return replace(self, port=port, host_header=_host_header(self.scheme, self.host, port))


def _host_header(scheme: str, host: str, port: int) -> bytes:
    shown = f"[{host}]" if ":" in host else host
    return (shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}").encode("ascii")


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str
    upstream: Upstream
    auth: AuthMode = "required"
    audience: str = ""
    methods: frozenset[str] = frozenset(DEFAULT_METHODS)
    csrf: bool = True
    timeout: float = 30.0
    websocket: bool = False
    max_body_size: int | None = None  # None: the [proxy] default
    token: str = "frontdesk"  # noqa: S105 ("idp": the upstream receives the IdP's access token, audience IDP_AUDIENCE)

    def matches(self, path: str) -> bool:
        """``/api/`` matches ``/api/...``; ``/api`` matches ``/api`` and ``/api/...`` but never ``/apix``."""
        prefix = self.prefix
        if prefix.endswith("/"):
            return path.startswith(prefix)
        return path == prefix or path.startswith(prefix + "/")

    def allow_header(self) -> str:
        return ", ".join(sorted(self.methods))


class RouteTable:
    """Longest prefix first, so ``/api/admin/`` wins over ``/api/``."""

    __slots__ = ("routes",)

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes: tuple[Route, ...] = tuple(sorted(routes, key=lambda r: len(r.prefix), reverse=True))

    def match(self, path: str) -> Route | None:
        for route in self.routes:
            if route.matches(path):
                return route
        return None


def _parse_upstream(value: object, prefix: str, where: str, problems: list[str]) -> Upstream | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f'{where}.upstream: must be a URL such as "http://127.0.0.1:9000"')
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as exc:
        problems.append(f"{where}.upstream: {value!r} is not a valid URL ({exc})")
        return None
    if parts.scheme not in _DEFAULT_PORTS:
        problems.append(f"{where}.upstream: {value!r} must start with http:// or https://")
        return None
    if not parts.hostname:
        problems.append(f"{where}.upstream: {value!r} has no host")
        return None
    if parts.username is not None or parts.password is not None:
        problems.append(f"{where}.upstream: {value!r} must not carry a user name or password")
        return None
    if parts.query or parts.fragment or "?" in value or "#" in value:
        problems.append(f"{where}.upstream: {value!r} must not have a query or fragment")
        return None
    base_path: bytes | None = None
    if parts.path:
        if not _SAFE_PATH.match(parts.path) or _DOT_SEGMENT.search(parts.path):
            problems.append(
                f"{where}.upstream: the path {parts.path!r} may only hold plain characters "
                "(no %-escapes, dot segments, empty segments or backslashes)"
            )
            return None
        base_path = parts.path.encode("ascii")
    if base_path is not None and prefix.endswith("/") and not base_path.endswith(b"/"):
        # nginx would turn /api/x into /v1x here; nobody means that.
        problems.append(f'{where}.upstream: the path {parts.path!r} must end with "/" as the prefix does')
        return None
    host = parts.hostname
    real_port = port if port is not None else _DEFAULT_PORTS[parts.scheme]
    return Upstream(parts.scheme, host, real_port, base_path, _host_header(parts.scheme, host, real_port))


def _parse_one(item: object, where: str, default_audience: str, problems: list[str]) -> Route | None:
    if not isinstance(item, Mapping):
        problems.append(f"{where}: must be a table with at least prefix and upstream")
        return None
    before = len(problems)
    for key in item:
        if key not in _KEYS:
            problems.append(unknown_key(where, key, _KEYS, table="[[routes]]"))

    prefix = item.get("prefix")
    if not isinstance(prefix, str) or not prefix.startswith("/") or prefix == "/":
        problems.append(f'{where}.prefix: must be a path such as "/api/" (not "/": the SPA lives there)')
    elif not _SAFE_PATH.match(prefix) or _DOT_SEGMENT.search(prefix):
        problems.append(
            f"{where}.prefix: {prefix!r} may only hold plain characters "
            "(no %-escapes, dot segments, empty segments or backslashes)"
        )
    prefix_text = prefix if isinstance(prefix, str) else ""
    upstream = _parse_upstream(item.get("upstream"), prefix_text, where, problems)

    auth = item.get("auth", "required")
    if auth not in ("required", "optional", "none"):
        problems.append(f'{where}.auth: must be "required", "optional" or "none", not {auth!r}')
    audience = item.get("audience", default_audience)
    if not isinstance(audience, str) or not audience.strip():
        problems.append(f"{where}.audience: must be a non-empty string")
    token = item.get("token", TOKENS[0])
    if token not in TOKENS:
        problems.append(f'{where}.token: must be "frontdesk" or "idp", not {token!r}')
    elif token == "idp":  # noqa: S105 (a token kind, not a secret)
        if "audience" in item:
            problems.append(f"{where}.audience: a token = \"idp\" route sends the identity provider's token, whose"
                            " audience the provider decides; remove audience")  # fmt: skip
        audience = IDP_AUDIENCE

    methods_raw = item.get("methods", list(DEFAULT_METHODS))
    methods: set[str] = set()
    if not isinstance(methods_raw, list) or not methods_raw:
        problems.append(f'{where}.methods: must be a non-empty list such as ["GET", "POST"]')
    else:
        for m in methods_raw:
            if not isinstance(m, str) or m.upper() not in _KNOWN_METHODS:
                problems.append(f"{where}.methods: {m!r} is not one of {', '.join(sorted(_KNOWN_METHODS))}")
            else:
                methods.add(m.upper())
        # HEAD is GET without a body; refusing it while allowing GET only confuses clients and caches.
        if "GET" in methods:
            methods.add("HEAD")

    flags: dict[str, bool] = {}
    for key, default in (("csrf", True), ("websocket", False)):
        value = item.get(key, default)
        if not isinstance(value, bool):
            problems.append(f"{where}.{key}: must be true or false, not {value!r}")
        else:
            flags[key] = value

    timeout = 30.0
    try:
        timeout = parse_duration(item.get("timeout", "30s"))
    except ValueError as exc:
        problems.append(f"{where}.timeout: {exc}")

    max_body: int | None = None
    if "max_body_size" in item:
        try:
            max_body = parse_size(item["max_body_size"])
        except ValueError as exc:
            problems.append(f"{where}.max_body_size: {exc}")

    if len(problems) > before or upstream is None:
        return None
    assert isinstance(prefix, str) and isinstance(audience, str)  # for mypy; checked above
    return Route(
        prefix=prefix,
        upstream=upstream,
        auth=auth,
        audience=audience.strip(),
        methods=frozenset(methods),
        csrf=flags["csrf"],
        timeout=timeout,
        websocket=flags["websocket"],
        max_body_size=max_body,
        token=str(token),
    )


def parse_routes(raw: object, *, default_audience: str) -> tuple[list[Route], list[str]]:
    """Parse ``[[routes]]`` (``None`` when absent). Never raises; returns routes and plain-word problems."""
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], ["routes: must be a list of [[routes]] tables"]
    routes: list[Route] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        where = f"routes[{index}]"
        route = _parse_one(item, where, default_audience, problems)
        if route is None:
            continue
        if route.prefix in seen:
            first = seen[route.prefix]
            problems.append(f"{where}.prefix: {route.prefix!r} is already used by routes[{first}]")
            continue
        seen[route.prefix] = index
        routes.append(route)
    return routes, problems
