"""``frontdesk doctor``: check a deployment before (or while) it runs, and say how to fix what is wrong.

Each check prints one line per finding, ``ok``, ``warn`` or ``FAIL``, and a ``fix:`` line under anything that
is not ok. The exit status is 0 when nothing FAILed (warnings are things that are legitimate in some setups,
such as ``SameSite=Lax`` or no HSTS while TLS ends elsewhere), 1 when something did; ``--strict`` makes
warnings count as failures too (for CI). Nothing secret is ever printed: secrets are named by their
environment variable, stores by their redacted URL or path.

What "clock sanity" means here, pragmatically: a gateway has no trusted time source of its own, but it can
notice the two failures that break tokens: a system clock that is plainly wrong (before this code was written),
and a clock that disagrees with the store's, the shared reference of every instance: Redis's ``TIME`` for a
Redis store (several machines), or, for SQLite, sessions last seen in the future (written by a clock that is
ahead of this one, or before this one jumped back). Either, beyond ``tokens.leeway``, makes tokens minted by
one instance "not yet valid" or expired early on another.

The store is only looked at, never created or migrated: a SQLite file is opened read-write only if it exists.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sqlite3
import stat
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import quote

from frontdesk.middleware.errors import FrontdeskError, ProviderUnavailable, StoreNotReady
from frontdesk.middleware.oidc import RelyingParty
from frontdesk.middleware.store import store_from_url
from frontdesk.middleware.store.sqlite import SCHEMA_VERSION, probe_sqlite

from .config import SECRET_ENV, GatewayConfig, config_path, dotenv_paths, load_config
from .errors import ConfigError
from .secret_files import exposed_secret_files

__all__ = ["Finding", "diagnose", "run_doctor", "secret_bits", "MIN_SECRET_BITS"]

Level = Literal["ok", "warn", "FAIL"]

MIN_SECRET_BITS = 128  # what `frontdesk keygen` gives is ~380; a guessable secret lets anyone mint sessions
CONNECT_TIMEOUT = 2.0
EARLIEST_PLAUSIBLE = 1_767_225_600.0  # 2026-01-01T00:00:00Z: a clock before this was never set


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    check: str
    message: str
    fix: str = ""


def secret_bits(secret: str) -> float:
    """A rough strength estimate: length x the Shannon entropy of its own characters. ``"a" * 64`` scores 0,
    a 64-character ``keygen`` secret ~380; it cannot see that a strong-looking secret was published."""
    if not secret:
        return 0.0
    counts = Counter(secret)
    n = len(secret)
    per_char = -sum(c / n * math.log2(c / n) for c in counts.values())
    return per_char * n


def _config_findings(path: Path, env: Mapping[str, str]) -> tuple[list[Finding], GatewayConfig | None]:
    try:
        config = load_config(path, env=env)
    except ConfigError as exc:
        found = [
            Finding("FAIL", "config", problem, "edit the config (or the environment) as it says")
            for problem in exc.problems
        ]
        try:  # without the secrets, the other checks may still run
            return found, load_config(path, env=env, require_secrets=False)
        except ConfigError:
            return found, None
    routes = len(config.routes)
    return [Finding("ok", "config", f"{path} loads ({routes} route{'s' if routes != 1 else ''})")], config


def _secret_findings(config: GatewayConfig) -> list[Finding]:
    t = config.tokens
    named = [(SECRET_ENV[1], t.refresh_secret)]
    named += [(f"FRONTDESK_REFRESH_SECRET_PREVIOUS[{i}]", s) for i, s in enumerate(t.refresh_previous)]
    if not config.keys.asymmetric:  # with [keys], access tokens are signed by the key directory
        named.insert(0, (SECRET_ENV[0], t.access_secret))
        named += [(f"FRONTDESK_ACCESS_SECRET_PREVIOUS[{i}]", s) for i, s in enumerate(t.access_previous)]
    found: list[Finding] = []
    for name, secret in named:
        if not secret:
            continue  # a missing secret is a config problem, reported there
        bits = secret_bits(secret)
        if bits < MIN_SECRET_BITS:
            found.append(
                Finding(
                    "FAIL",
                    "secrets",
                    f"{name} looks weak: about {bits:.0f} bits of entropy, under {MIN_SECRET_BITS}",
                    "make fresh ones with `frontdesk keygen --write .env` (every session ends when a secret changes)",
                )
            )
    current = {t.access_secret, t.refresh_secret} - {""}
    if set(t.access_previous) & current or set(t.refresh_previous) & current:
        found.append(Finding("warn", "secrets", "a *_PREVIOUS secret repeats a current one", "drop it from *_PREVIOUS"))
    if not found:
        set_count = len([n for n, s in named if s])
        found.append(Finding("ok", "secrets", f"{set_count} secret(s) set, each strong by the entropy estimate"))
    return found


async def _store_findings(config: GatewayConfig, now: float) -> list[Finding]:
    url = config.store_url
    if url == "memory://":
        level: Level = "FAIL" if config.workers > 1 else "warn"
        return [
            Finding(
                level,
                "store",
                "store.url is memory://: sessions end at every restart and are not shared between workers",
                'use url = "sqlite:///frontdesk.db" (one machine) or "redis://host:6379/0" (several)',
            )
        ]
    if url.startswith("sqlite:///"):
        return await asyncio.to_thread(_sqlite_findings, url[len("sqlite:///") :], config.tokens.leeway, now)
    return await _redis_findings(url, config.tokens.leeway, now)


def _sqlite_findings(path: str, leeway: float, now: float) -> list[Finding]:
    if not os.path.exists(path):
        return [Finding("warn", "store", f"{path} does not exist yet", "nothing to do: `frontdesk serve` creates it")]
    try:
        version = probe_sqlite(path, expected_version=None)
    except StoreNotReady as exc:
        return [
            Finding("FAIL", "store", str(exc), "make sure no other program holds the file and that it is the store")
        ]
    found: list[Finding] = []
    if version > SCHEMA_VERSION:
        found.append(
            Finding(
                "FAIL",
                "store",
                f"{path}: schema version {version} is newer than this frontdesk's {SCHEMA_VERSION}",
                "run the frontdesk version that migrated it (or newer)",
            )
        )
    elif version < SCHEMA_VERSION:
        found.append(
            Finding(
                "warn",
                "store",
                f"{path}: schema version {version}, {SCHEMA_VERSION} after the next start",
                "nothing to do: `frontdesk serve` migrates it",
            )
        )
    else:
        found.append(Finding("ok", "store", f"{path} is reachable, writable, schema version {version}"))
    found += _file_mode_findings("store", [Path(path)])
    found.append(_sqlite_clock(path, leeway, now))
    return found


def _sqlite_clock(path: str, leeway: float, now: float) -> Finding:
    db = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=CONNECT_TIMEOUT)
    try:
        row = db.execute("SELECT MAX(MAX(created_at, last_seen, rotated_at)) FROM sessions").fetchone()
    except sqlite3.Error:
        row = None
    finally:
        db.close()
    latest = float(row[0]) if row and row[0] is not None else None
    if latest is not None and latest > now + leeway:
        return Finding(
            "FAIL",
            "clock",
            f"the store holds sessions last seen {latest - now:.0f} s in the future: this clock is behind the one "
            "that wrote them (another instance, or before this clock jumped back)",
            "synchronise every machine's clock (NTP: systemd-timesyncd or chrony)",
        )
    return Finding("ok", "clock", "the store holds no session from the future")


@runtime_checkable
class SharedClock(Protocol):
    """A store whose server has a clock every instance sharing it can compare with (Redis's ``TIME``)."""

    async def server_time(self) -> float: ...


async def _redis_findings(url: str, leeway: float, now: float) -> list[Finding]:
    store = store_from_url(url)  # the Redis backend is an optional dependency, loaded only when named
    try:
        await asyncio.wait_for(store.open(), CONNECT_TIMEOUT)
        server_now = await store.server_time() if isinstance(store, SharedClock) else now
    except (FrontdeskError, OSError, TimeoutError) as exc:
        detail = str(exc) if isinstance(exc, FrontdeskError) else f"no answer within {CONNECT_TIMEOUT:g} s"
        return [Finding("FAIL", "store", detail, "start Redis or fix store.url")]
    finally:
        await store.close()
    found = [Finding("ok", "store", "the Redis store answers")]
    skew = server_now - now
    if abs(skew) > leeway:
        found.append(
            Finding(
                "FAIL",
                "clock",
                f"this clock is {abs(skew):.1f} s {'behind' if skew > 0 else 'ahead of'} the Redis server's, "
                f"more than tokens.leeway ({leeway:g} s)",
                "synchronise every machine's clock (NTP: systemd-timesyncd or chrony)",
            )
        )
    else:
        found.append(Finding("ok", "clock", f"within {abs(skew):.2f} s of the Redis server's"))
    return found


async def _upstream_findings(config: GatewayConfig) -> list[Finding]:
    by_address: dict[tuple[str, int], list[str]] = {}
    for route in config.routes:
        by_address.setdefault((route.upstream.host, route.upstream.port), []).append(route.prefix)

    async def reach(host: str, port: int, prefixes: list[str]) -> Finding:
        where = f"{host}:{port} (routes {', '.join(prefixes)})"
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            why = f"no answer within {CONNECT_TIMEOUT:g} s" if isinstance(exc, TimeoutError) else exc.strerror or exc
            return Finding(
                "FAIL", "upstream", f"cannot connect to {where}: {why}", "start it, or fix that route's upstream"
            )
        writer.close()
        return Finding("ok", "upstream", f"{where} accepts connections")

    return list(await asyncio.gather(*(reach(h, p, prefixes) for (h, p), prefixes in by_address.items())))


async def _oidc_findings(config: GatewayConfig) -> list[Finding]:
    """Each ``[[oidc]]`` provider's discovery document: reachable, and naming exactly the configured issuer."""

    async def discover(party: RelyingParty) -> Finding:
        try:
            meta = await party.metadata()
        except ProviderUnavailable as exc:
            why = exc.__cause__ or exc
            return Finding(
                "FAIL",
                "oidc",
                f"{party.name}: no usable discovery document at {party.discovery.url}: {why}",
                "start the provider, or set [[oidc]] issuer to exactly the issuer its discovery document names",
            )
        finally:
            await party.aclose()
        algorithms = ", ".join(meta.id_token_signing_alg_values_supported)
        return Finding("ok", "oidc", f"{party.name}: {meta.issuer} answers discovery (ID tokens: {algorithms})")

    return list(await asyncio.gather(*(discover(RelyingParty(provider)) for provider in config.oidc)))


def _file_mode_findings(check: str, files: list[Path]) -> list[Finding]:
    return [
        Finding(
            "FAIL",
            check,
            f"{path} holds secrets but other users can access it (mode {mode:04o})",
            f"chmod 600 {path}",
        )
        for path, mode in exposed_secret_files(files)
    ]


def _key_findings(config: GatewayConfig) -> list[Finding]:
    keys = config.keys
    if not keys.asymmetric:
        return []
    directory = keys.directory
    if not directory.is_dir():
        return []  # reported by the config check
    found: list[Finding] = []
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o077:
        found.append(
            Finding("FAIL", "keys", f"{directory} is open to other users (mode {mode:04o})", f"chmod 700 {directory}")
        )
    found += _file_mode_findings("keys", sorted(p for p in directory.iterdir() if p.is_file()))
    if not found:
        found.append(Finding("ok", "keys", f"{directory} and its keys are private (0700 / 0600)"))
    return found


def _dotenv_findings(config: GatewayConfig) -> list[Finding]:
    base = config.source.resolve().parent if config.source is not None else Path.cwd()
    found = _file_mode_findings("secrets", dotenv_paths(base))
    return found


def _clock_findings(now: float) -> list[Finding]:
    if now < EARLIEST_PLAUSIBLE:
        return [
            Finding(
                "FAIL",
                "clock",
                f"the system clock says {time.strftime('%Y-%m-%d', time.gmtime(now))}, before this software existed",
                "set the clock (NTP: systemd-timesyncd or chrony)",
            )
        ]
    return []


def _cookie_findings(config: GatewayConfig) -> list[Finding]:
    found: list[Finding] = []
    same_site = config.cookie.same_site
    if same_site == "None":
        found.append(
            Finding(
                "FAIL",
                "cookie",
                "cookie.same_site is None: browsers send the refresh cookie with cross-site requests",
                'set [cookie] same_site = "Strict" (the default); cross-origin SPAs belong in server.origins',
            )
        )
    elif same_site == "Lax":
        found.append(
            Finding(
                "warn",
                "cookie",
                "cookie.same_site is Lax: the refresh cookie rides on top-level cross-site navigations",
                'set [cookie] same_site = "Strict" unless a link from another site must land signed in',
            )
        )
    if config.trusted_proxies.trusts_any and not config.origins and not config.proxy.public_host:
        found.append(
            Finding(
                "warn",
                "csrf",
                "behind a proxy (server.trusted_proxies is set) but server.origins is empty: /auth/* and csrf "
                "routes accept only the origin the gateway itself sees",
                'list the public origin, e.g. [server] origins = ["https://app.example.com"]',
            )
        )
    if config.hsts_max_age is None:
        found.append(
            Finding(
                "warn",
                "https",
                "[server] hsts is off: nothing tells browsers to keep using https",
                'set [server] hsts = "365d" once the site is https-only (unless the TLS proxy sends it)',
            )
        )
    if same_site == "Strict":
        found.insert(0, Finding("ok", "cookie", "SameSite=Strict, __Host- prefix, Secure, HttpOnly"))
    return found


async def diagnose(path: Path, env: Mapping[str, str], *, now: float | None = None) -> list[Finding]:
    """Every finding for the config at ``path`` with secrets from ``env`` (and the .env files beside it)."""
    now = time.time() if now is None else now
    found, config = _config_findings(path, env)
    found += _clock_findings(now)
    if config is None:
        return found
    found += _secret_findings(config) if config.tokens.refresh_secret else []
    found += _dotenv_findings(config)
    users = Path(config.users_database)
    if config.users_database != config.store_url.removeprefix("sqlite:///"):  # its password hashes, if apart
        found += _file_mode_findings("users", [users])
    found += await _store_findings(config, now)
    found += _key_findings(config)
    found += await _upstream_findings(config)
    found += await _oidc_findings(config)
    found += _cookie_findings(config)
    return found


def add_doctor_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser("doctor", help="check the configuration and what it points at; say how to fix it")
    doctor.add_argument("--config", metavar="PATH", help="config file (default: $FRONTDESK_CONFIG or ./config.toml)")
    doctor.add_argument("--strict", action="store_true", help="exit 1 on warnings too (for CI)")


def run_doctor(args: argparse.Namespace) -> int:
    path = config_path(args.config, os.environ)
    found = asyncio.run(diagnose(path, os.environ))
    width = max(len(f.check) for f in found)
    for finding in found:
        print(f"{finding.level:<4}  {finding.check:<{width}}  {finding.message}")
        if finding.fix and finding.level != "ok":
            print(f"{'':<4}  {'':<{width}}  fix: {finding.fix}")
    failed = sum(f.level == "FAIL" for f in found)
    warned = sum(f.level == "warn" for f in found)
    print(f"\n{failed} failed, {warned} warning(s), {len(found) - failed - warned} ok")
    return 1 if failed or (args.strict and warned) else 0
