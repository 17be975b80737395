"""The ``[store]`` table's connection settings: the URL's form, Redis TLS files, the Redis password.

The password never comes from the config file (it is often world-readable, and lands in backups and
repositories): a URL carrying one is refused, and ``FRONTDESK_REDIS_PASSWORD`` (environment or the .env
file beside the config) supplies it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from frontdesk.middleware.store.redis_urls import CERT_REQS, RedisOptions, is_redis_url, parse_redis_url

from .validators import Problems, non_empty_string

__all__ = ["REDIS_PASSWORD_ENV", "STORE_KEYS", "TLS_KEYS", "parse_store_connection"]

REDIS_PASSWORD_ENV = "FRONTDESK_REDIS_PASSWORD"  # noqa: S105 (the name of the variable, not a password)
TLS_KEYS = ("ca_file", "cert_file", "key_file", "cert_reqs")
STORE_KEYS = frozenset({"url", "busy_timeout", "purge_interval", "on_outage", *TLS_KEYS})

_SUPPORTED = (
    "write sqlite:///frontdesk.db, redis://host:6379/0, rediss://host:6380/0, "
    "redis+sentinel://host:26379,host:26379/service_name or redis+cluster://host:6379,host:6379"
)


def parse_store_connection(
    table: Mapping[str, Any], environ: Mapping[str, str], base: Path, problems: Problems
) -> tuple[str, RedisOptions]:
    """``[store] url`` (checked, not yet resolved) and the options a Redis client needs beside it."""
    url = problems.get(table, "store", "url", "sqlite:///frontdesk.db", non_empty_string)
    files = {key: problems.get(table, "store", key, "", lambda v: _readable_file(v, base)) for key in TLS_KEYS[:3]}
    cert_reqs = problems.get(table, "store", "cert_reqs", "required", _cert_reqs)
    tls_given = [key for key in TLS_KEYS if key in table]
    redis = is_redis_url(url)
    if redis:
        _check_redis_url(url, tls_given, problems)
    elif not (url.startswith("sqlite:///") or url == "memory://"):
        problems.add(f"store.url {url!r} is not supported; {_SUPPORTED}")
    elif tls_given:
        problems.add(f"store.{tls_given[0]} applies to a rediss:// store only; store.url is {url!r}")
    if files["key_file"] and not files["cert_file"]:
        problems.add("store.key_file needs store.cert_file: the client certificate the key belongs to")
    password = environ.get(REDIS_PASSWORD_ENV) or None
    options = RedisOptions(
        password=password if redis else None,
        ca_file=files["ca_file"] or None,
        cert_file=files["cert_file"] or None,
        key_file=files["key_file"] or None,
        cert_reqs=cert_reqs,
    )
    return url, options


def _check_redis_url(url: str, tls_given: list[str], problems: Problems) -> None:
    if importlib.util.find_spec("redis") is None:
        problems.add("store.url names Redis but the redis package is missing: pip install 'frontdesk[redis]'")
    try:
        target = parse_redis_url(url)
    except ValueError as exc:
        problems.add(f"store.url {exc}; {_SUPPORTED}")
        return
    if target.password is not None:
        problems.add(
            f"store.url carries a password: a config file is no place for it; remove it from the URL and set "
            f"{REDIS_PASSWORD_ENV} in the environment (or the .env file beside the config)"
        )
    if tls_given and not target.tls:
        scheme = url.partition("://")[0]
        problems.add(
            f"store.{tls_given[0]} applies to TLS connections only; write rediss{scheme[5:]}://… in store.url "
            "to use TLS"
        )


def _readable_file(value: Any, base: Path) -> str:
    path = Path(non_empty_string(value)).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ValueError(f"{str(path)!r} is not a readable file")
    return str(path)


def _cert_reqs(value: Any) -> str:
    if value not in CERT_REQS:
        raise ValueError(f"write one of {', '.join(repr(c) for c in CERT_REQS)}, not {value!r}")
    return str(value)
