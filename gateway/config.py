"""Load and validate the gateway configuration: ``config.toml`` plus secrets from the environment.

Every problem is collected and reported at once, in plain words (oauth2-proxy's validation style), so a
bad config is fixed in one pass instead of one restart per mistake. The result is a tree of frozen
objects parsed once; the request path never looks at raw configuration again.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frontdesk.middleware.cookies import CookiePolicy, CookiePolicyError
from frontdesk.middleware.forwarded import TrustedProxies
from frontdesk.middleware.sessions import SessionSettings
from frontdesk.middleware.store.redis_urls import RedisOptions, is_redis_url

from .audit_settings import AuditSettings, parse_audit_settings
from .errors import ConfigError
from .hash_pool import DEFAULT_HASH_QUEUE, default_hash_workers
from .idp_token_settings import parse_token_keys
from .key_settings import KeySettings, key_directory_problems, parse_key_settings
from .log_settings import LogSettings, parse_log_settings
from .metrics.settings import MetricsSettings, parse_metrics_settings
from .oidc_settings import OidcProviderSettings, parse_oidc_providers
from .proxy.routes import Route, parse_routes
from .proxy.settings import ProxySettings, parse_proxy_settings
from .store_settings import STORE_KEYS, parse_store_connection
from .validators import (
    Problems,
    allowance,
    boolean,
    count,
    non_empty_string,
    one_of,
    origins,
    parse_duration,
    parse_trusted_proxies,
    positive_int,
    string_list,
    unknown_key,
    unknown_table,
)

__all__ = [
    "GatewayConfig",
    "TokenConfig",
    "LoginCapacity",
    "load_config",
    "config_path",
    "dotenv_paths",
    "read_dotenv",
    "SECRET_ENV",
    "SHIPPED_STATIC",
]

# The demo SPA, shipped inside the package (frontdesk/static in a wheel; static/ in a checkout, where
# frontdesk.gateway is the gateway/ folder beside it): served when [static] directory is left at "static" and
# no such folder exists beside the config, so `frontdesk demo` works after a plain `pip install`.
SHIPPED_STATIC = Path(__file__).resolve().parent.parent / "static"

SECRET_ENV = ("FRONTDESK_ACCESS_SECRET", "FRONTDESK_REFRESH_SECRET")
ON_OUTAGE = ("fail_closed", "serve_cached")  # [store] on_outage: what already-minted access tokens do then
MIN_SECRET_BYTES = 32

# Every key the gateway understands, by table; anything else is reported as unknown.
_SCHEMA: dict[str, set[str]] = {
    "tokens": {
        "access_ttl",
        "refresh_ttl",
        "remember_ttl",
        "max_session_age",
        "rotation_grace",
        "issuer",
        "audience",
        "leeway",
        "refresh_margin",
    },
    "store": set(STORE_KEYS),
    "server": {"host", "port", "trusted_proxies", "origins", "workers", "hsts", "shutdown_timeout", "fast_path"},
    "cookie": {"name", "same_site", "secure", "path", "domain"},
    "csrf": {"header"},
    "login": {
        "max_attempts_per_user",
        "max_attempts_per_address",
        "window",
        "device_ttl",
        "hash_workers",
        "hash_queue",
        "max_concurrent_per_address",
        "password",
    },
    "users": {"database"},
    "static": {"directory"},
    "forward_auth": {"pass_token"},
    "routes": set(),  # each checked by its own parser, which also names unknown keys
    "proxy": set(),
    "keys": set(),
    "log": {"format", "level", "access_log"},
    "audit": {"retention"},
    "metrics": set(),
    "oidc": set(),  # [[oidc]]: each checked by its own parser (oidc_settings), which also names unknown keys
}
_ARRAYS_OF_TABLES = ("routes", "oidc")
_TABLE_HEADERS = {name: f"[[{name}]]" if name in _ARRAYS_OF_TABLES else f"[{name}]" for name in _SCHEMA}


@dataclass(frozen=True, slots=True)
class TokenConfig:
    issuer: str = "frontdesk"
    audience: str = "frontdesk-api"
    leeway: float = 5.0
    access_secret: str = ""
    refresh_secret: str = ""
    access_previous: tuple[str, ...] = ()
    refresh_previous: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LoginCapacity:
    """How much password hashing one gateway process does at once (memory: hash_workers x 64 MiB)."""

    hash_workers: int = field(default_factory=default_hash_workers)
    hash_queue: int = DEFAULT_HASH_QUEUE
    max_concurrent_per_address: int = 4


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    source: Path | None
    tokens: TokenConfig
    sessions: SessionSettings
    cookie: CookiePolicy
    csrf_header: str
    store_url: str
    store_busy_timeout: float
    purge_interval: float
    users_database: str  # "" when the users live in the Redis store
    static_dir: Path
    host: str
    port: int
    workers: int
    trusted_proxies: TrustedProxies
    origins: tuple[str, ...]  # normalised by validators.origin, as [proxy] allowed_origins are
    routes: tuple[Route, ...] = ()
    proxy: ProxySettings = field(default_factory=ProxySettings)
    keys: KeySettings = field(default_factory=KeySettings)
    login_capacity: LoginCapacity = field(default_factory=LoginCapacity)
    hsts_max_age: int | None = None  # [server] hsts: Strict-Transport-Security max-age, None when off
    forward_auth_pass_token: bool = False  # [forward_auth] pass_token: /auth/verify always sends the access token
    log: LogSettings = field(default_factory=LogSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)  # [metrics]: the Prometheus listener
    shutdown_timeout: float = 30.0  # [server] shutdown_timeout: how long requests in flight may finish at a stop
    oidc: tuple[OidcProviderSettings, ...] = ()  # [[oidc]]: OpenID Providers users may sign in with
    password_login: bool = True  # [login] password: whether POST /auth/login checks local passwords
    # [store] TLS files and FRONTDESK_REDIS_PASSWORD, for a Redis store
    redis: RedisOptions = field(default_factory=RedisOptions)
    # FRONTDESK_OIDC_TOKEN_KEY(_PREVIOUS): seal the IdP tokens kept with sessions; oldest first, newest last
    oidc_token_keys: tuple[str, ...] = field(default=(), repr=False)
    fast_path: bool = True  # [server] fast_path: `frontdesk serve` answers proxied requests without ASGI layers


def config_path(cli_path: str | None, env: Mapping[str, str]) -> Path:
    """``--config PATH``, else ``FRONTDESK_CONFIG``, else ``./config.toml``."""
    return Path(cli_path or env.get("FRONTDESK_CONFIG") or "config.toml")


def dotenv_paths(config_dir: Path) -> list[Path]:
    """The ``.env`` files the secrets may come from: beside the config (wins), then the working directory.

    Ordered, not a set: a set's order changes with the hash seed."""
    return list(dict.fromkeys((config_dir / ".env", Path.cwd() / ".env")))


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines; ``#`` comments and ``export`` prefixes allowed; quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def _hsts(value: Any) -> int | None:
    if value is False:
        return None
    if value is True:
        raise ValueError('true is not a max-age: write how long browsers must use https, such as "365d", or false')
    try:
        return int(parse_duration(value))
    except ValueError as exc:
        raise ValueError(f'{exc}; write a max-age such as "365d", or false') from exc


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    require_file: bool = True,
    require_secrets: bool = True,
) -> GatewayConfig:
    """Parse and validate everything; raise :class:`ConfigError` listing every problem.

    ``require_secrets=False`` is for commands that never sign a token (``users``, ``purge``).
    """
    problems = Problems()
    raw: dict[str, Any] = {}
    base = Path.cwd()
    environ = dict(os.environ if env is None else env)
    dotenvs: list[Path] = []
    if path is not None:
        base = path.resolve().parent
        if path.is_file():
            try:
                raw = tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError([f"{path} is not valid TOML: {exc}"]) from exc
        elif require_file:
            raise ConfigError([f"config file {path} not found (pass --config PATH or set FRONTDESK_CONFIG)"])
        # A .env beside the config (or in the working directory) fills in what the environment lacks.
        dotenvs = dotenv_paths(base)
        for dotenv in dotenvs:
            for key, value in read_dotenv(dotenv).items():
                environ.setdefault(key, value)

    for section, value in raw.items():
        if section not in _SCHEMA:
            problems.add(unknown_table(section, _TABLE_HEADERS))
            continue
        if section in _ARRAYS_OF_TABLES:
            if not isinstance(value, list):
                problems.add(f"{section} must be an array of tables, written [[{section}]]")
            continue
        if not isinstance(value, dict):
            problems.add(f"{section} must be a table, written [{section}]")
            continue
        if _SCHEMA[section]:
            for key in value:
                if key not in _SCHEMA[section]:
                    problems.add(unknown_key(section, key, _SCHEMA[section], table=f"[{section}]"))

    def table(name: str) -> dict[str, Any]:
        value = raw.get(name, {})
        return value if isinstance(value, dict) else {}

    tokens, store, server = table("tokens"), table("store"), table("server")
    cookie_t, csrf_t, login_t = table("cookie"), table("csrf"), table("login")
    p = problems
    d = SessionSettings()
    access_ttl = p.get(tokens, "tokens", "access_ttl", d.access_ttl, parse_duration)
    refresh_ttl = p.get(tokens, "tokens", "refresh_ttl", d.refresh_ttl, parse_duration)
    remember_ttl = p.get(tokens, "tokens", "remember_ttl", d.remember_ttl, parse_duration)
    max_age = p.get(tokens, "tokens", "max_session_age", d.max_session_age, parse_duration)
    grace = p.get(tokens, "tokens", "rotation_grace", d.rotation_grace, parse_duration)
    margin = p.get(tokens, "tokens", "refresh_margin", d.refresh_margin, parse_duration)
    leeway = p.get(tokens, "tokens", "leeway", 5.0, allowance)
    if access_ttl >= refresh_ttl:
        p.add("tokens.access_ttl must be shorter than tokens.refresh_ttl")
    if access_ttl >= remember_ttl:
        p.add("tokens.access_ttl must be shorter than tokens.remember_ttl")
    if refresh_ttl > max_age:
        p.add("tokens.refresh_ttl must not be longer than tokens.max_session_age")
    if leeway > 300:
        p.add("tokens.leeway must be at most 5m: it is meant for clock skew only")

    keys, key_problems = parse_key_settings(table("keys"), base)
    for issue in key_problems:
        p.add(issue)
    if not key_problems:
        for issue in key_directory_problems(keys, longest_token=access_ttl + leeway):
            p.add(issue)
    # With asymmetric [keys], access tokens are signed by the key directory and the access secret is unused.
    secrets = _secrets(environ, problems if require_secrets else Problems(), need_access=not keys.asymmetric)
    login_window = p.get(login_t, "login", "window", d.login_window, parse_duration)
    sessions = SessionSettings(
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
        remember_ttl=remember_ttl,
        max_session_age=max_age,
        rotation_grace=grace,
        refresh_margin=margin,
        login_attempts_per_user=p.get(
            login_t, "login", "max_attempts_per_user", d.login_attempts_per_user, positive_int
        ),
        login_attempts_per_address=p.get(
            login_t, "login", "max_attempts_per_address", d.login_attempts_per_address, positive_int
        ),
        login_window=login_window,
        login_device_ttl=p.get(login_t, "login", "device_ttl", d.login_device_ttl, parse_duration),
        serve_cached_on_outage=p.get(store, "store", "on_outage", "fail_closed", one_of(*ON_OUTAGE)) == "serve_cached",
    )
    dc = LoginCapacity()
    login_capacity = LoginCapacity(
        hash_workers=p.get(login_t, "login", "hash_workers", dc.hash_workers, positive_int),
        hash_queue=p.get(login_t, "login", "hash_queue", dc.hash_queue, count),
        max_concurrent_per_address=p.get(
            login_t, "login", "max_concurrent_per_address", dc.max_concurrent_per_address, positive_int
        ),
    )
    cookie = _cookie_policy(cookie_t, p)

    store_url, redis_options = parse_store_connection(store, environ, base, p)
    store_url = _resolve_sqlite(store_url, base)
    # The users live beside the sessions: in the SQLite file, or in Redis (then "" here) unless [users] database
    # names a file of their own.
    users_db = p.get(table("users"), "users", "database", "", non_empty_string) or _sqlite_file(store_url)
    users_db = users_db or ("" if is_redis_url(store_url) else "users.db")
    if users_db and not Path(users_db).is_absolute():
        users_db = str(base / users_db)

    no_networks: list[str] = []
    networks, trust_problems = parse_trusted_proxies(
        p.get(server, "server", "trusted_proxies", no_networks, string_list)
    )
    for issue in trust_problems:
        p.add(issue)
    no_origins: tuple[str, ...] = ()
    server_origins = p.get(server, "server", "origins", no_origins, origins)
    port = p.get(server, "server", "port", 8000, positive_int)
    if port > 65535:
        p.add(f"server.port {port} is not a port number (1-65535)")
    csrf_header = p.get(csrf_t, "csrf", "header", "X-CSRF", non_empty_string)
    if not csrf_header.replace("-", "").isalnum():
        p.add(f"csrf.header {csrf_header!r} must be a plain header name such as X-CSRF")
    static_setting = p.get(table("static"), "static", "directory", "static", non_empty_string)
    static_dir = base / static_setting
    if static_setting == "static" and not static_dir.is_dir():
        static_dir = SHIPPED_STATIC
    audience = p.get(tokens, "tokens", "audience", "frontdesk-api", non_empty_string)
    routes_raw = raw.get("routes")
    routes, route_problems = parse_routes(
        routes_raw if isinstance(routes_raw, list) else None, default_audience=audience
    )
    proxy, proxy_problems = parse_proxy_settings(table("proxy") or None)
    metrics, metrics_problems = parse_metrics_settings(table("metrics") or None)
    for issue in route_problems + proxy_problems + metrics_problems:
        p.add(issue)
    oidc_raw = raw.get("oidc")
    oidc = parse_oidc_providers(oidc_raw if isinstance(oidc_raw, list) else None, environ, p, base)
    password_login = p.get(login_t, "login", "password", True, boolean)
    oidc_token_keys = parse_token_keys(environ, p if require_secrets else Problems(), needed=bool(oidc_raw))
    if not password_login and not oidc_raw:
        p.add("login.password = false switches off the only way to sign in: add an [[oidc]] provider, or remove it")

    config = GatewayConfig(
        source=path,
        tokens=TokenConfig(
            issuer=p.get(tokens, "tokens", "issuer", "frontdesk", non_empty_string),
            audience=audience,
            leeway=leeway,
            **secrets,
        ),
        sessions=sessions,
        cookie=cookie,
        csrf_header=csrf_header.lower(),
        store_url=store_url,
        store_busy_timeout=p.get(store, "store", "busy_timeout", 5.0, parse_duration),
        purge_interval=p.get(store, "store", "purge_interval", 3600.0, parse_duration),
        users_database=users_db,
        static_dir=static_dir,
        host=p.get(server, "server", "host", "127.0.0.1", non_empty_string),
        port=port,
        workers=p.get(server, "server", "workers", 1, positive_int),
        trusted_proxies=TrustedProxies(networks),
        origins=server_origins,
        routes=tuple(routes),
        proxy=proxy,
        keys=keys,
        login_capacity=login_capacity,
        hsts_max_age=p.get(server, "server", "hsts", None, _hsts),
        forward_auth_pass_token=p.get(table("forward_auth"), "forward_auth", "pass_token", False, boolean),
        log=parse_log_settings(table("log"), p),
        audit=parse_audit_settings(table("audit"), p),
        metrics=metrics,
        shutdown_timeout=p.get(server, "server", "shutdown_timeout", 30.0, parse_duration),
        oidc=oidc,
        password_login=password_login,
        redis=redis_options,
        oidc_token_keys=oidc_token_keys,
        fast_path=p.get(server, "server", "fast_path", True, boolean),
    )
    if metrics.port == config.port and (metrics.host == config.host or "0.0.0.0" in (metrics.host, config.host)):  # noqa: S104
        p.add(
            f"metrics.address {metrics.address} is the gateway's own address: the metrics must listen on a port "
            "of their own (the default is 127.0.0.1:9464)"
        )
    for issue in _static_problems(config, dotenvs):
        p.add(issue)
    if problems.items:
        raise ConfigError(problems.items)
    return config


def _cookie_policy(cookie_t: dict[str, Any], p: Problems) -> CookiePolicy:
    """The library checks the policy (one rule set); the gateway puts its table in front of each problem."""
    d = CookiePolicy()
    try:
        return CookiePolicy(
            name=p.get(cookie_t, "cookie", "name", d.name, non_empty_string),
            same_site=p.get(cookie_t, "cookie", "same_site", d.same_site, non_empty_string),
            secure=p.get(cookie_t, "cookie", "secure", d.secure, boolean),
            path=p.get(cookie_t, "cookie", "path", d.path, non_empty_string),
            domain=p.get(cookie_t, "cookie", "domain", d.domain, non_empty_string),
        )
    except CookiePolicyError as exc:
        for issue in exc.problems:
            p.add(f"cookie.{issue}")
        return d  # never served: the problems above refuse the config


def _static_problems(config: GatewayConfig, dotenvs: list[Path]) -> list[str]:
    """Refuse a ``[static] directory`` that is, or contains, a place holding secrets: everything in it is
    served to anyone (dotfiles excepted), so ``directory = "."`` would hand out the database's password
    hashes, the signing keys and ``config.toml``.
    """
    secret_places: list[tuple[str, Path]] = []
    if config.source is not None:  # inside the static directory exactly when its directory is, or is below
        secret_places.append(("the config file", config.source))
    secret_places += [("the secrets file", dotenv) for dotenv in dotenvs if dotenv.is_file()]
    databases = dict.fromkeys(db for db in (_sqlite_file(config.store_url), config.users_database) if db)
    secret_places += [("the database", Path(db)) for db in databases]
    keys = config.keys
    if keys.asymmetric or keys.directory.exists():
        secret_places.append(("the key directory", keys.directory))

    static = config.static_dir.resolve()
    problems: list[str] = []
    for what, place in secret_places:
        place = place.resolve()
        if place == static or static in place.parents:
            verb = "is" if place == static else "contains"
            problems.append(
                f"static.directory {str(static)!r} {verb} {what} {place}: everything in it would be served to "
                "anyone; point [static] directory at a folder that holds only the web app's files"
            )
    return problems


def _secrets(environ: Mapping[str, str], problems: Problems, *, need_access: bool = True) -> dict[str, Any]:
    access = environ.get("FRONTDESK_ACCESS_SECRET", "")
    refresh = environ.get("FRONTDESK_REFRESH_SECRET", "")
    for name, value in zip(SECRET_ENV, (access, refresh), strict=True):
        if not value and name == SECRET_ENV[0] and not need_access:
            continue
        if not value:
            problems.add(f"{name} is not set: put it in the environment or a .env file (frontdesk keygen makes one)")
        elif len(value.encode()) < MIN_SECRET_BYTES:
            problems.add(f"{name} is shorter than {MIN_SECRET_BYTES} bytes; use frontdesk keygen for a strong one")
    if access and access == refresh:
        problems.add("FRONTDESK_ACCESS_SECRET and FRONTDESK_REFRESH_SECRET must be different")

    def previous(name: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in environ.get(name, "").split(",") if v.strip())

    return {
        "access_secret": access,
        "refresh_secret": refresh,
        "access_previous": previous("FRONTDESK_ACCESS_SECRET_PREVIOUS"),
        "refresh_previous": previous("FRONTDESK_REFRESH_SECRET_PREVIOUS"),
    }


def _resolve_sqlite(url: str, base: Path) -> str:
    if not url.startswith("sqlite:///"):
        return url
    file = url[len("sqlite:///") :]
    if file and not Path(file).is_absolute():
        return "sqlite:///" + str(base / file)
    return url


def _sqlite_file(url: str) -> str:
    return url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
