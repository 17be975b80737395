"""Files that hold secrets (``.env``): created 0600 from the first byte, and a warning when one is not private.

Writing with ``Path.write_text`` and then ``chmod`` leaves a window in which the file exists with the
umask's mode (usually 0644, readable by every local user) and the secrets already in it; opening with
``os.open(..., 0o600)`` has no such window.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PRIVATE_MODE", "create_private", "append_private", "exposed_secret_files", "warn_about_exposed"]

PRIVATE_MODE = 0o600


def create_private(path: Path, text: str) -> None:
    """Create ``path`` holding ``text``, mode 0600; refuse (``FileExistsError``) if it already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def append_private(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` (created if missing), making the file 0600 before anything is written.

    A missing trailing newline in the existing content is added first, so ``KEY=value`` lines stay whole.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, PRIVATE_MODE)
    with os.fdopen(fd, "r+") as file:
        os.fchmod(fd, PRIVATE_MODE)  # an existing file keeps its old mode otherwise
        existing = file.read()
        if existing and not existing.endswith("\n"):
            text = "\n" + text
        file.write(text)


def exposed_secret_files(paths: Iterable[Path]) -> list[tuple[Path, int]]:
    """Those of ``paths`` that exist and that group or other users may read or write, with their mode."""
    found = []
    for path in dict.fromkeys(p.resolve() for p in paths):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            found.append((path, mode))
    return found


def warn_about_exposed(paths: Iterable[Path]) -> None:
    """One line on stderr for each of ``paths`` (secrets files) that other local users can read or change."""
    for path, mode in exposed_secret_files(paths):
        print(
            f"frontdesk: warning: {path} holds secrets but other users can access it (mode {mode:04o});"
            f" run: chmod 600 {path}",
            file=sys.stderr,
        )
