"""``frontdesk keys rotate`` and ``frontdesk keys list``: manage the access-token key directory.

These read only the ``[keys]`` table of the config file, not the whole configuration: the very first
``rotate`` must work before any key exists, which a full start-up check would refuse.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from collections.abc import Callable
from typing import Any

from frontdesk.middleware.events import Event, Kind
from frontdesk.middleware.key_directory import KeyFile, signing_index
from frontdesk.middleware.keys import ASYMMETRIC_ALGORITHMS

from .audit_cli import admin_actor, record_events
from .config import config_path, load_config
from .errors import ConfigError
from .key_settings import KeySettings, parse_key_settings

__all__ = ["add_keys_parser", "run_keys"]


def add_keys_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    keys = sub.add_parser("keys", help="manage the asymmetric keys that sign access tokens")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = with_config(keys_sub.add_parser("rotate", help="add a key; retire keys past their overlap"))
    rotate.add_argument("--algorithm", choices=ASYMMETRIC_ALGORITHMS, help="default: keys.algorithm")
    with_config(keys_sub.add_parser("list", help="list keys and how long each still verifies"))
    return keys


def run_keys(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    if settings is None:
        return 2
    if args.keys_command == "rotate":
        status = _rotate(settings, args.algorithm)
        if status == 0:
            _record_rotation(args.config)
        return status
    return _list(settings)


def _record_rotation(cli_path: str | None) -> None:
    """Add the rotation to the audit trail, which needs the whole configuration (the store's URL); a config that
    does not load yet is no reason to fail a rotation that is done, so that case only says so."""
    try:
        config = load_config(config_path(cli_path, os.environ), require_secrets=False)
    except ConfigError as exc:
        print(f"frontdesk: the rotation is not in the audit trail; the config does not load:\n{exc}", file=sys.stderr)
        return
    event = Event(Kind.KEY_ROTATED, time.time(), reason="keys rotate", actor=admin_actor())
    record_events(config, [event])


def _settings(cli_path: str | None) -> KeySettings | None:
    path = config_path(cli_path, os.environ)
    raw: dict[str, Any] = {}
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            print(f"frontdesk: {path} is not valid TOML: {exc}", file=sys.stderr)
            return None
    table = raw.get("keys", {})
    settings, problems = parse_key_settings(table if isinstance(table, dict) else {}, path.resolve().parent)
    for problem in problems:
        print(f"frontdesk: {problem}", file=sys.stderr)
    return None if problems else settings


def _rotate(settings: KeySettings, algorithm: str | None) -> int:
    chosen = algorithm or settings.algorithm
    if chosen not in ASYMMETRIC_ALGORITHMS:
        print(
            "frontdesk: keys.algorithm is HS256 (the shared FRONTDESK_ACCESS_SECRET): set keys.algorithm to"
            f" one of {', '.join(ASYMMETRIC_ALGORITHMS)} or pass --algorithm. To rotate the shared secret"
            " instead, move it to FRONTDESK_ACCESS_SECRET_PREVIOUS and set a new FRONTDESK_ACCESS_SECRET.",
            file=sys.stderr,
        )
        return 2
    directory = settings.key_directory()
    try:
        result = directory.rotate(chosen)
    except (OSError, ValueError) as exc:
        print(f"frontdesk: cannot rotate keys in {directory.path}: {exc}", file=sys.stderr)
        return 1
    added = result.added
    files = directory.files()
    if added.signs_from is None or added.signs_from <= time.time():
        when = "it signs from now on"
    else:
        when = (
            f"a running gateway publishes it within keys.reload_interval and signs with it from"
            f" {_when(added.signs_from)} (keys.publish_ahead = {settings.publish_ahead:g}s)"
        )
    print(f"added {added.algorithm} key {added.kid} ({added.path.name}); {when}")
    for path in result.retired:
        print(f"retired {path.name}: its overlap has ended")
    for item in files[1:]:
        print(f"key {item.kid} still verifies until {_when(item.not_after)}")
    if chosen != settings.algorithm:
        print(f'note: set keys.algorithm = "{chosen}" in the config, or the gateway will refuse to start')
    return 0


def _list(settings: KeySettings) -> int:
    try:
        files = settings.key_directory().files()
    except ValueError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 1
    if not files:
        print(f"no keys in {settings.directory} (keys.algorithm = {settings.algorithm})")
    now = time.time()
    signer = signing_index(files, now) if files else -1
    for index, item in enumerate(files):
        print(f"{item.kid}\t{item.algorithm}\tcreated {_when(item.created_at)}\t{_state(files, index, signer, now)}")
    return 0


def _state(files: list[KeyFile], index: int, signer: int, now: float) -> str:
    """Newest first: keys newer than the signer are published but wait for their ``signs_from``."""
    item = files[index]
    if index < signer:
        return f"published, not signing yet; signs from {_when(item.signs_from)}"
    if index == signer:
        if index == 0:
            return "signing"
        return f"signing until {_when(files[index - 1].signs_from)}, then verifies until {_when(item.not_after)}"
    if item.not_after is not None and now > item.not_after:
        return "retired (removed by the next rotate)"
    return f"verifies until {_when(item.not_after)}"


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))
