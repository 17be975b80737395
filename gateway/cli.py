"""The ``frontdesk`` command: serve, demo, keygen, users, sessions, purge, keys, audit, doctor."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from frontdesk.middleware.events import Event, Kind

from .app import create_app
from .audit_cli import add_audit_parser, admin_actor, record_events, run_audit
from .backends import store_for, users_for
from .config import SECRET_ENV, GatewayConfig, config_path, dotenv_paths, load_config, read_dotenv
from .demo import run_demo
from .doctor import add_doctor_parser, run_doctor
from .errors import ConfigError
from .idp_token_settings import TOKEN_KEY_ENV
from .keys_cli import add_keys_parser, run_keys
from .log_settings import LEVELS
from .metrics import multiprocess_metrics, serve_metrics
from .secret_files import append_private, create_private, warn_about_exposed
from .serving import exit_zero_after_sigterm, uvicorn_options
from .sessions_cli import add_sessions_parser, run_sessions
from .users import UserDirectory, UserExists

__all__ = ["main", "build_parser", "KEYGEN_ENV"]

# What `frontdesk keygen` makes: the two token secrets, and the key that seals the IdP tokens kept with
# sessions (needed only with [[oidc]], harmless without: so one .env covers adding a provider later).
KEYGEN_ENV = (*SECRET_ENV, TOKEN_KEY_ENV)

T = TypeVar("T")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frontdesk", description="An auth gateway for browser apps.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", metavar="PATH", help="config file (default: $FRONTDESK_CONFIG or ./config.toml)")
        return p

    serve = with_config(sub.add_parser("serve", help="run the gateway"))
    serve.add_argument("--host", help="address to listen on (default: server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (default: server.port)")
    serve.add_argument("--workers", type=int, help="worker processes (default: server.workers)")
    serve.add_argument("--log-level", choices=LEVELS, help="default: log.level (info)")
    serve.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help="log every request (default: log.access_log, off: it costs ~30 us a request)",
    )

    demo = with_config(sub.add_parser("demo", help="run the gateway with the demo upstream and a demo user"))
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--upstream-port",
        type=int,
        default=9000,
        help="port of the demo upstream; routes to 127.0.0.1:9000 (the demo config's) are sent there",
    )

    keygen = sub.add_parser("keygen", help="print fresh secrets (token secrets, IdP token key) in .env form")
    keygen.add_argument(
        "--write",
        metavar="PATH",
        help="write them to PATH (mode 0600) instead of printing; an existing PATH only gains the names it lacks",
    )

    users = sub.add_parser("users", help="manage the gateway's users")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = with_config(users_sub.add_parser("add", help="add a user"))
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    with_config(users_sub.add_parser("list", help="list users"))
    remove = with_config(users_sub.add_parser("remove", help="remove a user and end their sessions"))
    remove.add_argument("name")
    passwd = with_config(users_sub.add_parser("passwd", help="change a password and end the user's sessions"))
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    add_sessions_parser(sub, with_config)
    with_config(sub.add_parser("purge", help="delete expired sessions, revocations and counters"))
    add_keys_parser(sub, with_config)
    add_audit_parser(sub, with_config)
    add_doctor_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "keygen":
            return _keygen(args.write)
        if args.command == "serve":
            return _serve(args)
        if args.command == "demo":
            return run_demo(args)
        if args.command == "users":
            return _users(args)
        if args.command == "sessions":
            return run_sessions(args, _load(args))  # secrets too: it builds the gateway's own session engine
        if args.command == "purge":
            return asyncio.run(_purge(args))
        if args.command == "keys":
            return run_keys(args)
        if args.command == "audit":
            return run_audit(args, _load(args, require_secrets=False))
        if args.command == "doctor":
            return run_doctor(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C, typically at a password prompt whose line is still open: end it, say so, no traceback.
        print("\nfrontdesk: interrupted; nothing changed", file=sys.stderr)
        return 130
    return 2


def _keygen(write: str | None) -> int:
    """Print fresh secrets for every name of :data:`KEYGEN_ENV`; or create ``write`` (0600) holding them; or, when
    ``write`` exists, append only the names it lacks (so adding ``[[oidc]]`` later is one command), never
    touching a value already there: those sign live sessions and seal kept IdP tokens."""
    if write is None:
        print(_fresh(KEYGEN_ENV), end="")
        return 0
    path = Path(write)
    try:
        if path.exists():
            present = read_dotenv(path)
            missing = [name for name in KEYGEN_ENV if not present.get(name)]
            if not missing:
                print(
                    f"frontdesk: {write} exists and holds {', '.join(KEYGEN_ENV)}; not overwriting any", file=sys.stderr
                )
                return 1
            append_private(path, _fresh(missing))  # made 0600 before anything is written
        else:
            missing = list(KEYGEN_ENV)
            create_private(path, _fresh(missing))
    except FileExistsError:  # created by someone else between the check and the create
        print(f"frontdesk: {write} exists; not overwriting it (its secrets sign live sessions)", file=sys.stderr)
        return 1
    except (OSError, UnicodeDecodeError) as exc:
        print(f"frontdesk: cannot write {write}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(missing)} to {write} (mode 0600)")
    return 0


def _fresh(names: Sequence[str]) -> str:
    # 48 random bytes, URL-safe: well above the 32-byte minimum, and safe in a shell or .env file.
    return "".join(f"{name}={secrets.token_urlsafe(48)}\n" for name in names)


def _load(args: argparse.Namespace, *, require_secrets: bool = True) -> GatewayConfig:
    return load_config(config_path(args.config, os.environ), require_secrets=require_secrets)


def _serve(args: argparse.Namespace) -> int:
    path = config_path(args.config, os.environ).resolve()
    config = load_config(path)  # refuse to start before any worker is spawned
    warn_about_exposed(dotenv_paths(path.parent))
    os.environ["FRONTDESK_CONFIG"] = str(path)  # the workers load the same file
    exit_zero_after_sigterm()
    workers = args.workers or config.workers
    # The metrics listener runs here, in the one parent process, apart from the gateway's port. One worker
    # is this very process: it serves the app's own registry. Several workers share a directory of files.
    if workers > 1:
        app: Any = "frontdesk.gateway.asgi:app_factory"
        metrics = multiprocess_metrics(config.metrics)
    else:
        app = create_app(config)
        metrics = serve_metrics(config.metrics, app.metering.metrics.registry if app.metering else None)
    with metrics:
        uvicorn.run(
            app,
            factory=workers > 1,
            host=args.host or config.host,
            port=args.port or config.port,
            workers=workers,
            lifespan="on",
            **uvicorn_options(config, log_level=args.log_level, access_log=args.access_log),
        )
    return 0


def _users(args: argparse.Namespace) -> int:
    """Each password prompt runs before any event loop: ``asyncio.run`` turns the first Ctrl-C into a
    cancellation of its task, which a ``getpass`` blocked on the terminal never notices (it took two)."""
    config = _load(args, require_secrets=False)
    command = args.users_command
    if command == "list":
        return asyncio.run(_with_users(config, _list_users))
    if command == "add":
        password = _read_password(args.password_stdin)
        added = asyncio.run(_with_users(config, lambda users: _add_user(users, args.name, password)))
        if added is not None:
            record_events(config, [Event(Kind.USER_ADDED, time.time(), added, actor=admin_actor())])
        return 0 if added is not None else 1
    found = asyncio.run(_with_users(config, lambda users: users.get(args.name)))
    if found is None:
        print(f"frontdesk: no user named {args.name!r}", file=sys.stderr)
        return 1
    if command == "remove":
        asyncio.run(_with_users(config, lambda users: users.remove(found.username)))
        kind, reason, done = Kind.USER_REMOVED, "user removed", f"removed user {found.username}"
    else:
        password = _read_password(args.password_stdin)
        try:
            asyncio.run(_with_users(config, lambda users: users.set_password(found.username, password)))
        except ValueError as exc:
            print(f"frontdesk: {exc}", file=sys.stderr)
            return 1
        kind, reason, done = Kind.PASSWORD_CHANGED, "password changed", f"changed the password of {found.username}"
    # A removed user or a changed password must not leave sessions running for weeks.
    ended = asyncio.run(_revoke_user(config, found.id, reason))
    actor, now = admin_actor(), time.time()
    told = [Event(kind, now, found.username, actor=actor)]
    if ended:
        told.append(Event(Kind.SESSION_REVOKED, now, found.username, reason=reason, actor=actor))
    record_events(config, told)
    print(f"{done}; ended {ended} session(s)")
    return 0


async def _with_users(config: GatewayConfig, action: Callable[[UserDirectory], Awaitable[T]]) -> T:
    directory = users_for(config)
    await directory.open()
    try:
        return await action(directory)
    finally:
        await directory.close()


async def _list_users(directory: UserDirectory) -> int:
    for row in await directory.list():
        print(f"{row.username}\t{row.id}")
    return 0


async def _add_user(directory: UserDirectory, name: str, password: str) -> str | None:
    """The name as stored, or None (refused, and said why)."""
    try:
        row = await directory.add(name, password)
    except (UserExists, ValueError) as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return None
    print(f"added user {row.username} (id {row.id})")
    return row.username


async def _revoke_user(config: GatewayConfig, user_id: str, reason: str) -> int:
    store = store_for(config)
    await store.open()
    try:
        return await store.revoke_user(user_id, now=time.time(), reason=reason)
    finally:
        await store.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        # getpass would fall back to reading (and echoing) standard input, then fail with a traceback.
        raise SystemExit("frontdesk: no terminal to ask for the password on; pipe it in with --password-stdin")
    try:
        first = getpass.getpass("Password: ")
        again = getpass.getpass("Repeat password: ")
    except EOFError:  # Ctrl-D: the prompt's line is still open, so start a new one
        raise SystemExit("\nfrontdesk: no password given; nothing changed") from None
    if again != first:
        raise SystemExit("frontdesk: the passwords do not match")
    return first


async def _purge(args: argparse.Namespace) -> int:
    config = _load(args, require_secrets=False)
    store = store_for(config)
    await store.open()
    try:
        now = time.time()
        removed = await store.purge(now=now)
        audited = await store.purge_audit(before=now - config.audit.retention)
    finally:
        await store.close()
    print(f"purged {removed} expired rows")
    print(f"purged {audited} audit events older than audit.retention")
    return 0


if __name__ == "__main__":
    sys.exit(main())
