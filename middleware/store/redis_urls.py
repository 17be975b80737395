"""Which Redis a URL names: one server, a Sentinel group or a Cluster (plain parsing: no redis package needed).

The URL forms (``[store] url``):

- ``redis://[user@]host[:port][/db]`` and ``unix:///path/redis.sock?db=0``: one server (redis-py's own forms).
- ``rediss://[user@]host[:port][/db]``: one server over TLS.
- ``redis+sentinel://host:port,host:port/service_name[/db]``: ask the Sentinels at those addresses which
  server is the master of ``service_name`` now, and follow failovers (``rediss+sentinel://`` for TLS to both).
- ``redis+cluster://host:port,host:port``: a Redis Cluster, found from any of those nodes (``rediss+cluster://``
  for TLS). A cluster has only database 0.

TLS settings (CA file, client certificate and key, how strictly to verify) and the password come as
:class:`RedisOptions`, not in the URL: the gateway reads the password from the environment, never its file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

__all__ = ["CERT_REQS", "RedisOptions", "RedisTarget", "is_redis_url", "parse_redis_url", "redacted"]

CERT_REQS = ("required", "optional", "none")
"""How a ``rediss`` client checks the server's certificate: must be valid (the default), checked if sent,
not at all (only for a test server: anyone on the path can then read every session)."""

_DEFAULT_PORT = 6379
_SENTINEL_PORT = 26379
Kind = Literal["single", "sentinel", "cluster"]

_SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """What a Redis URL does not carry. ``password`` wins over one in the URL (the library may pass either)."""

    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cert_reqs: str = "required"

    def __repr__(self) -> str:  # never print the password (configs and options end up in tracebacks)
        shown = "***" if self.password else None
        return (
            f"RedisOptions(password={shown!r}, ca_file={self.ca_file!r}, cert_file={self.cert_file!r}, "
            f"key_file={self.key_file!r}, cert_reqs={self.cert_reqs!r})"
        )


@dataclass(frozen=True, slots=True)
class RedisTarget:
    kind: Kind
    tls: bool
    url: str  # as given
    hosts: tuple[tuple[str, int], ...] = ()  # sentinels or cluster seed nodes
    service: str = ""  # the Sentinel service name
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_redis_url(url: str) -> bool:
    """Whether ``url`` names Redis in any form (and so needs the redis package), however badly written."""
    return "://" in url and url.partition("://")[0].lower() in _SCHEMES


def parse_redis_url(url: str) -> RedisTarget:
    """The target ``url`` names; ValueError saying, in plain words, what is wrong with it otherwise."""
    scheme = url.partition("://")[0].lower()
    if "://" not in url or scheme not in _SCHEMES:
        raise ValueError(f"{_shown(url)} is not a Redis URL; write redis://host:6379/0 (see the README for more)")
    kind, tls = _SCHEMES[scheme]
    parts = urlsplit(url)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if kind == "single":
        if scheme != "unix":
            _single_host(url, parts.netloc)
            if parts.path not in ("", "/"):
                _db(url, parts.path[1:])
        return RedisTarget(kind, tls, url, username=username, password=password)
    if parts.query or parts.fragment:
        raise ValueError(f"{_shown(url)}: a {scheme} URL takes no ?query or #fragment")
    hosts = _hosts(url, parts.netloc.rpartition("@")[2], _SENTINEL_PORT if kind == "sentinel" else _DEFAULT_PORT)
    path = [p for p in parts.path.split("/") if p]
    if kind == "cluster":
        if path and path != ["0"]:
            raise ValueError(f"{_shown(url)}: a Redis Cluster has only database 0; drop the path")
        return RedisTarget(kind, tls, url, hosts, username=username, password=password)
    if not path or len(path) > 2:
        raise ValueError(f"{_shown(url)}: write {scheme}://host:26379,host:26379/service_name or .../service_name/db")
    db = _db(url, path[1]) if len(path) == 2 else 0
    return RedisTarget(kind, tls, url, hosts, unquote(path[0]), db, username, password)


def redacted(url: str) -> str:
    """The URL without its password, for log lines and messages."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{userinfo.split(':')[0]}:***@{host}" if at else url


def _shown(url: str) -> str:
    return repr(redacted(url))


def _single_host(url: str, netloc: str) -> None:
    hostport = netloc.rpartition("@")[2]
    if "," in hostport:
        raise ValueError(
            f"{_shown(url)} names several hosts; for a Sentinel group write redis+sentinel://…, "
            "for a Cluster redis+cluster://…"
        )
    if hostport:
        _hosts(url, hostport, _DEFAULT_PORT)


def _hosts(url: str, netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts: list[tuple[str, int]] = []
    for item in netloc.split(","):
        host, colon, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "")
        host = host.strip("[]")
        if not host:
            raise ValueError(f"{_shown(url)}: {item.strip()!r} is not host:port")
        if colon and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{_shown(url)}: {port!r} is not a port number (1-65535)")
        hosts.append((host, int(port) if colon else default_port))
    return tuple(hosts)


def _db(url: str, text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{_shown(url)}: the database {text!r} is not a number")
    return int(text)
