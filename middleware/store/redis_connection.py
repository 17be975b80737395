"""A redis-py asyncio client for a Redis URL (see :mod:`.redis_urls` for the forms): ``Redis`` for one server
or the master a Sentinel group names, ``RedisCluster`` for a Cluster."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from .redis_urls import RedisOptions, parse_redis_url

__all__ = ["connect_redis", "CONNECT_TIMEOUT", "COMMAND_TIMEOUT"]

# Redis unreachable must cost a request a fraction of a second, then a 503 (never a hang): small timeouts, and
# one immediate retry only (enough to replace a pooled connection that a Redis restart closed). redis-py's own
# default retries ten times with backoff, which turns an outage into seconds of waiting per request.
CONNECT_TIMEOUT = 0.5
COMMAND_TIMEOUT = 1.0
_TIMEOUTS: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": COMMAND_TIMEOUT}


def connect_redis(url: str, options: RedisOptions | None = None) -> Redis | RedisCluster:
    """A client for ``url`` (strings decoded). Nothing is sent yet: the first command connects."""
    options = options or RedisOptions()
    target = parse_redis_url(url)
    common: dict[str, Any] = {"decode_responses": True}
    if options.password is not None:
        common["password"] = options.password
    tls = _tls_settings(options) if target.tls else {}
    if target.kind == "single":  # the rediss:// scheme itself picks the TLS connection class
        tls_options = {k: v for k, v in tls.items() if k != "ssl"}
        return Redis.from_url(url, **common, **_TIMEOUTS, retry=Retry(NoBackoff(), 1), **tls_options)
    auth: dict[str, Any] = {"username": target.username, "password": common.get("password", target.password)}
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.hosts]
        return RedisCluster(startup_nodes=nodes, decode_responses=True, **_TIMEOUTS, **auth, **tls)
    # The Sentinels and the master share the credentials and TLS settings: one deployment, one secret.
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs={**auth, **tls}, **auth, **tls)  # type: ignore[no-untyped-call]
    master: Redis = sentinel.master_for(
        target.service, db=target.db, decode_responses=True, **_TIMEOUTS, retry=Retry(NoBackoff(), 1)
    )
    return master


def _tls_settings(options: RedisOptions) -> dict[str, Any]:
    settings: dict[str, Any] = {"ssl": True, "ssl_cert_reqs": options.cert_reqs}
    if options.cert_reqs == "none":
        settings["ssl_check_hostname"] = False
    if options.ca_file:
        settings["ssl_ca_certs"] = options.ca_file
    if options.cert_file:
        settings["ssl_certfile"] = options.cert_file
    if options.key_file:
        settings["ssl_keyfile"] = options.key_file
    return settings
