"""``frontdesk audit``: print the audit trail; and how the other commands (``users``, ``keys rotate``) add to it.

A running gateway writes its events through the audit sink (``frontdesk.middleware.audit``); a CLI command is
over in a moment and has no background writer, so it writes its few events to the store directly, and says
what it did on its own output (its "log").
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from collections.abc import Callable, Sequence

from frontdesk.middleware.audit import event_fields
from frontdesk.middleware.auth_api import iso8601
from frontdesk.middleware.errors import FrontdeskError
from frontdesk.middleware.events import Event

from .backends import store_for
from .config import GatewayConfig
from .validators import parse_duration

__all__ = ["add_audit_parser", "admin_actor", "print_audit", "record_events", "run_audit"]

DEFAULT_LIMIT = 1000


def add_audit_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    audit = with_config(sub.add_parser("audit", help="print the audit trail (logins, logouts, revocations, ...)"))
    audit.add_argument("--user", metavar="NAME", help="only this user's events")
    audit.add_argument("--since", metavar="AGE", help='only events younger than AGE, such as "1h" or "7d"')
    audit.add_argument("--json", action="store_true", help="one JSON object per line instead of text columns")
    audit.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"at most this many, the newest (default {DEFAULT_LIMIT})"
    )
    return audit


def run_audit(args: argparse.Namespace, config: GatewayConfig) -> int:
    since: float | None = None
    if args.since is not None:
        try:
            since = time.time() - parse_duration(args.since)
        except ValueError as exc:
            print(f"frontdesk: --since: {exc}", file=sys.stderr)
            return 2
    if args.limit < 1:
        print("frontdesk: --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        events = asyncio.run(_read(config, args.user, since, args.limit))
    except FrontdeskError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 1
    print_audit(events, as_json=args.json)
    if len(events) == args.limit:
        print(f"frontdesk: showing the newest {args.limit} events; pass --limit or --since for others", file=sys.stderr)
    return 0


async def _read(config: GatewayConfig, user: str | None, since: float | None, limit: int) -> list[Event]:
    store = store_for(config)
    await store.open()
    try:
        return await store.audit(user=user, since=since, limit=limit)
    finally:
        await store.close()


def print_audit(events: Sequence[Event], *, as_json: bool) -> None:
    for event in events:
        if as_json:
            print(json.dumps({"time": iso8601(event.at), **event_fields(event)}))
        else:
            columns = (event.user, event.session, event.address, event.reason, event.actor, event.user_agent)
            print("\t".join([iso8601(event.at), event.kind, *(_printable(c) for c in columns)]))


def _printable(value: str | None) -> str:
    """What a client chose (a user agent) may hold escape sequences that would drive the operator's terminal."""
    if value is None:
        return "-"
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in value)


def admin_actor() -> str:
    """Who ran the command: ``admin:<login name>`` (``admin`` when the system cannot tell)."""
    try:
        return f"admin:{getpass.getuser()}"
    except (KeyError, OSError):
        return "admin"


def record_events(config: GatewayConfig, events: Sequence[Event]) -> None:
    """Append a command's events to the audit table (not with ``memory://``: that store lives and dies inside
    one process, so a command's rows would vanish as it exits)."""
    if config.store_url == "memory://":
        return
    try:
        asyncio.run(_record(config, events))
    except (FrontdeskError, ValueError, OSError) as exc:
        # The change itself is done (a user added, a key rotated): say what is missing rather than fail it.
        print(f"frontdesk: done, but not recorded in the audit trail: {exc}", file=sys.stderr)


async def _record(config: GatewayConfig, events: Sequence[Event]) -> None:
    store = store_for(config)
    await store.open()
    try:
        await store.record_audit(events)
    finally:
        await store.close()
