"""The ``[[oidc]]`` tables: OpenID Providers users may sign in with (see README "Sign in with an OpenID Provider").

Each provider's client secret comes from ``FRONTDESK_OIDC_<NAME>_CLIENT_SECRET`` (the environment or a .env
file; ``-`` in the name becomes ``_``), never from the config file, which is often committed. With
``token_endpoint_auth_method = "private_key_jwt"`` there is no secret: ``private_key_file`` names a PEM private
key (relative to the config file's directory) whose public key is registered at the provider; the file must be
private to its owner (no group or other access, as ``chmod 600`` leaves it). Every problem of
every provider is reported at once, with the table's position (``oidc[2].issuer: ...``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from frontdesk.middleware.keys import PrivateKey, load_private_key
from frontdesk.middleware.oidc.config import AUTH_METHODS, DEFAULT_SCOPES, ProviderConfig

from .secret_files import exposed_secret_files
from .validators import Problems, boolean, non_empty_string, one_of, string_list, unknown_key

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_SCOPES",
    "OidcProviderSettings",
    "parse_oidc_providers",
    "secret_env_name",
]

# The name is a path segment (/auth/oidc/{name}/login) and part of an environment variable's name.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
_KEYS = frozenset(
    {
        "name",
        "issuer",
        "client_id",
        "scopes",
        "username_claim",
        "allowed_groups",
        "allowed_email_domains",
        "token_endpoint_auth_method",
        "allow_http",
        "session_claims",
        "private_key_file",
    }
)


OidcProviderSettings = ProviderConfig  # the gateway's name for the library's settings of one provider


def secret_env_name(name: str) -> str:
    """``corp`` -> ``FRONTDESK_OIDC_CORP_CLIENT_SECRET``; ``home-idp`` -> ``FRONTDESK_OIDC_HOME_IDP_CLIENT_SECRET``."""
    return f"FRONTDESK_OIDC_{name.upper().replace('-', '_')}_CLIENT_SECRET"


def parse_oidc_providers(
    raw: object, environ: Mapping[str, str], problems: Problems, base: Path | None = None
) -> tuple[OidcProviderSettings, ...]:
    """Every ``[[oidc]]`` table; a bad one is left out and its problems recorded (the config is refused).
    ``base``: where a relative ``private_key_file`` is found (the config file's directory)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add("oidc must be an array of tables, written [[oidc]]")
        return ()
    providers: list[OidcProviderSettings] = []
    seen: set[str] = set()
    for index, table in enumerate(raw, start=1):
        where = f"oidc[{index}]"
        if not isinstance(table, dict):
            problems.add(f"{where} must be a table, written [[oidc]]")
            continue
        provider = _parse_one(table, where, environ, problems, seen, base or Path.cwd())
        if provider is not None:
            providers.append(provider)
    return tuple(providers)


def _parse_one(
    table: Mapping[str, Any],
    where: str,
    environ: Mapping[str, str],
    problems: Problems,
    seen: set[str],
    base: Path,
) -> OidcProviderSettings | None:
    before = len(problems.items)
    for key in table:
        if key == "client_secret":
            problems.add(
                f"{where}.client_secret: the client secret must not be in the config file; set "
                f"{secret_env_name(str(table.get('name', 'NAME')))} in the environment or a .env file instead"
            )
        elif key not in _KEYS:
            problems.add(unknown_key(where, key, _KEYS, table="[[oidc]]"))
    name = problems.get(table, where, "name", "", _provider_name)
    if "name" not in table:
        problems.add(f'{where}.name is missing: give the provider a short name such as "corp"')
    elif name and name in seen:
        problems.add(f"{where}.name: {name!r} is used more than once; every [[oidc]] needs a name of its own")
    seen.add(name)
    allow_http = problems.get(table, where, "allow_http", False, boolean)
    issuer = problems.get(table, where, "issuer", "", lambda value: _issuer(value, allow_http=allow_http))
    if "issuer" not in table:
        problems.add(f'{where}.issuer is missing: the provider\'s issuer URL, such as "https://idp.example.com"')
    client_id = problems.get(table, where, "client_id", "", non_empty_string)
    if "client_id" not in table:
        problems.add(f"{where}.client_id is missing: the client id the provider gave frontdesk")
    scopes = tuple(problems.get(table, where, "scopes", list(DEFAULT_SCOPES), _scopes))
    username_claim = problems.get(table, where, "username_claim", "preferred_username", non_empty_string)
    nothing: list[str] = []
    groups = tuple(problems.get(table, where, "allowed_groups", nothing, string_list))
    domains = tuple(
        d.lower().lstrip("@") for d in problems.get(table, where, "allowed_email_domains", nothing, string_list)
    )
    method = problems.get(table, where, "token_endpoint_auth_method", AUTH_METHODS[0], one_of(*AUTH_METHODS))
    session_claims = tuple(dict.fromkeys(problems.get(table, where, "session_claims", nothing, string_list)))
    private_key = _client_key(table, where, method, problems, base)
    secret = ""
    if name and method != "private_key_jwt":
        env_name = secret_env_name(name)
        secret = environ.get(env_name, "")
        if not secret:
            problems.add(
                f"{env_name} is not set: put the client secret of [[oidc]] {name!r} in the environment or .env"
            )
    if len(problems.items) > before:
        return None
    return OidcProviderSettings(
        name=name,
        issuer=issuer,
        client_id=client_id,
        client_secret=secret,
        scopes=scopes,
        username_claim=username_claim,
        allowed_groups=groups,
        allowed_email_domains=domains,
        token_endpoint_auth_method=method,
        session_claims=session_claims,
        private_key=private_key,
    )


def _client_key(table: Mapping[str, Any], where: str, method: str, problems: Problems, base: Path) -> PrivateKey | None:
    """The client's private key for ``private_key_jwt`` (required then, refused otherwise), loaded now so a
    missing, unreadable or unsupported key stops the start, not the first login; so does a key file that
    group or other users may read or write (the same rule as ``frontdesk doctor``'s for the other secret files)."""
    raw = table.get("private_key_file")
    if method != "private_key_jwt":
        if raw is not None:
            problems.add(f'{where}.private_key_file is only used with token_endpoint_auth_method = "private_key_jwt"')
        return None
    if raw is None:
        problems.add(
            f"{where}.private_key_file is missing: private_key_jwt signs with the client's private key (a PEM"
            " file of an RSA, P-256 or Ed25519 key whose public key is registered at the provider)"
        )
        return None
    if not isinstance(raw, str) or not raw:
        problems.add(f"{where}.private_key_file must be the path of a PEM file")
        return None
    path = Path(raw) if Path(raw).is_absolute() else base / raw
    for exposed, mode in exposed_secret_files([path]):
        problems.add(
            f"{where}.private_key_file {str(exposed)!r} holds a private key but other users can access it"
            f" (mode {mode:04o}); make it private to the user frontdesk runs as: chmod 600 {exposed}"
        )
    try:
        return load_private_key(path.read_bytes())
    except OSError as exc:
        problems.add(f"{where}.private_key_file {str(path)!r} cannot be read: {exc.strerror or exc}")
    except ValueError as exc:
        problems.add(f"{where}.private_key_file {str(path)!r}: {exc}")
    return None


def _provider_name(value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a provider name: use 1-32 lower-case letters, digits and inner hyphens, "
            'such as "corp" (it appears in URLs and in an environment variable)'
        )
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _issuer(value: object, *, allow_http: bool) -> str:
    """An issuer URL (OpenID Connect Discovery section 3): https, a host, an optional path, no query or
    fragment. Plain http only for a loopback host (a provider on the same machine, tests) or with
    ``allow_http = true`` (development only: the code, the tokens and the client secret would cross the
    network in clear)."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} must be the issuer URL as a string")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f'{value!r} is not an issuer URL such as "https://idp.example.com/realms/corp"')
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError(f"{value!r}: an issuer URL has no query or fragment")
    if parts.username or parts.password:
        raise ValueError(f"{value!r}: an issuer URL has no user name or password")
    if parts.scheme == "http" and not (allow_http or _is_loopback(parts.hostname)):
        raise ValueError(
            f"{value!r} must use https (plain http is accepted only for a loopback host, or with "
            "allow_http = true for development)"
        )
    return value


def _scopes(value: object) -> list[str]:
    scopes = string_list(value)
    if "openid" not in scopes:
        raise ValueError(f'{value!r} must include "openid" (it is what makes the login OpenID Connect)')
    bad = [s for s in scopes if not s or any(c.isspace() or c == '"' or c == "\\" for c in s)]
    if bad:
        raise ValueError(f"{bad!r}: a scope is one word without spaces, quotes or backslashes")
    return list(dict.fromkeys(scopes))
