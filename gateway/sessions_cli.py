"""``frontdesk sessions list [--user U]``, ``frontdesk sessions revoke ID`` and ``frontdesk sessions revoke --user U``:
the operator's view of "your devices", for ending a stolen laptop's session without a database shell.

Revocations go through the same :class:`SessionEngine` the gateway builds (``build_engine``), so the events (audit
trail, metrics, log) see them exactly as they see a user's own sign-out, with ``actor="admin"``. A running gateway
honours them within about a second: its session watch re-reads the store and cuts the session's open streams.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from frontdesk.middleware.auth_api import iso8601
from frontdesk.middleware.sessions import SessionEngine
from frontdesk.middleware.store import SessionRecord

from .app import build_engine
from .backends import store_for, users_for
from .config import GatewayConfig
from .users import UserDirectory

__all__ = ["add_sessions_parser", "run_sessions", "ADMIN_REASON"]

T = TypeVar("T")

ADMIN_REASON = "revoked by an administrator"
_COLUMNS = ("id", "user", "created", "last_seen", "address", "user_agent", "remember")


def add_sessions_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    sessions = sub.add_parser("sessions", help="list or end live sessions")
    sessions_sub = sessions.add_subparsers(dest="sessions_command", required=True)
    listing = with_config(sessions_sub.add_parser("list", help="list live sessions (every user's, or one user's)"))
    listing.add_argument("--user", metavar="NAME", help="only this user's sessions")
    revoke = with_config(sessions_sub.add_parser("revoke", help="end one session, or every session of a user"))
    revoke.add_argument("id", nargs="?", help="the session id (first column of `frontdesk sessions list`)")
    revoke.add_argument("--user", metavar="NAME", help="end every session of this user instead")
    return sessions


def run_sessions(args: argparse.Namespace, config: GatewayConfig) -> int:
    if args.sessions_command == "revoke" and (args.id is None) == (args.user is None):
        print("frontdesk: name a session id, or --user NAME, not both", file=sys.stderr)
        return 2
    return asyncio.run(_with_engine(config, lambda engine, users: _run(args, engine, users)))


async def _with_engine(config: GatewayConfig, action: Callable[[SessionEngine, UserDirectory], Awaitable[T]]) -> T:
    store = store_for(config)
    users = users_for(config)
    engine = build_engine(config, store=store, authenticator=users)
    await store.open()
    try:
        await users.open()
        try:
            return await action(engine, users)
        finally:
            await users.close()
    finally:
        await store.close()


async def _run(args: argparse.Namespace, engine: SessionEngine, users: UserDirectory) -> int:
    user_ids: list[str] = []
    if args.user is not None:
        found = await users.get(args.user)
        if found is None:
            print(f"frontdesk: no user named {args.user!r}", file=sys.stderr)
            return 1
        user_ids = [found.id]
    if args.sessions_command == "list":
        if args.user is None:
            user_ids = [row.id for row in await users.list()]
        print("\t".join(_COLUMNS))
        for user_id in user_ids:
            for record in await engine.sessions_of(user_id):
                print("\t".join(_row(record)))
        return 0
    if args.user is not None:
        ended = await engine.revoke_user(user_ids[0], reason=ADMIN_REASON, actor="admin")
        print(f"ended {ended} session(s) of {args.user}")
        return 0
    target = await engine.store.get_session(args.id)
    if target is None or not target.is_usable(engine.clock()):
        print(f"frontdesk: no live session with id {args.id!r}", file=sys.stderr)
        return 1
    await engine.revoke(target.sid, reason=ADMIN_REASON, actor="admin")
    print(f"ended session {target.sid} of {target.username}")
    return 0


def _row(record: SessionRecord) -> tuple[str, ...]:
    return (
        record.sid,
        record.username,
        iso8601(record.created_at),
        iso8601(record.last_seen),
        record.client_address or "-",
        record.user_agent or "-",
        "yes" if record.remember else "no",
    )
