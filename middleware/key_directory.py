"""A directory of PEM private keys that rotates: sign with the newest, verify older ones through an overlap.

Each file is named ``key-<UTC creation time>-<kid prefix>.pem``; the name carries the creation time so the
order survives copies and backups that reset file times. A key stops verifying ``overlap`` after its
successor was created; :meth:`KeyDirectory.rotate` adds a key and deletes keys past that point.
"""

from __future__ import annotations

import calendar
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .clock import Clock, system_clock
from .keys import (
    ASYMMETRIC_ALGORITHMS,
    PrivateKey,
    generate_private_key,
    load_private_key,
    private_key_pem,
    signing_key_from_private,
    thumbprint,
)
from .tokens import KeyRing

__all__ = ["KeyFile", "KeyDirectory", "RotationResult", "DirectoryKeyRing"]

log = logging.getLogger("frontdesk.keys")

_NAME = re.compile(r"^key-(\d{8}T\d{6}Z)-[A-Za-z0-9_-]+\.pem$")
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class KeyFile:
    path: Path
    created_at: float
    key: PrivateKey
    kid: str
    algorithm: str
    not_after: float | None  # None for the newest key: it signs


@dataclass(frozen=True, slots=True)
class RotationResult:
    added: KeyFile
    retired: list[Path]


class KeyDirectory:
    def __init__(self, path: Path, *, overlap: float) -> None:
        self.path = path
        self.overlap = overlap

    def files(self) -> list[KeyFile]:
        """Every key file, newest first, each with the end of its verification window.

        Raises ValueError naming the first file that cannot be used (a wrong name, not a key).
        """
        found: list[tuple[float, str, Path, PrivateKey]] = []
        for path in sorted(self.path.glob("*.pem")) if self.path.is_dir() else []:
            match = _NAME.match(path.name)
            if match is None:
                raise ValueError(f"{path}: name must look like key-20260101T000000Z-abcd.pem (keys rotate writes it)")
            created = _parse_stamp(match.group(1))
            try:
                key = load_private_key(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path}: {exc}") from exc
            found.append((created, path.name, path, key))
        found.sort(key=lambda item: (item[0], item[1]), reverse=True)
        out: list[KeyFile] = []
        successor_created: float | None = None
        for created, _, path, key in found:
            signing = signing_key_from_private(key)
            not_after = None if successor_created is None else successor_created + self.overlap
            out.append(KeyFile(path, created, key, signing.kid, signing.algorithm, not_after))
            successor_created = created
        return out

    def keyring(self, now: float) -> KeyRing:
        """Newest key signs; older keys verify until their window closes (retired ones are left out)."""
        ring = []
        for index, item in enumerate(self.files()):
            if item.not_after is not None and now > item.not_after:
                continue
            ring.append(signing_key_from_private(item.key, not_after=item.not_after, can_sign=index == 0))
        return KeyRing(ring)

    def fingerprint(self) -> tuple[tuple[str, int], ...]:
        """Cheap change detection (names and modification times) for reloading a running server."""
        if not self.path.is_dir():
            return ()
        return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in self.path.glob("*.pem")))

    def rotate(self, algorithm: str, *, now: float | None = None) -> RotationResult:
        """Add a fresh key (it signs from now on) and delete the keys whose overlap has ended."""
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise ValueError(f"{algorithm!r} is not one of {', '.join(ASYMMETRIC_ALGORITHMS)}")
        moment = int(time.time() if now is None else now)
        existing = self.files()
        if existing and moment <= existing[0].created_at:
            # File names have one-second resolution: keep creation times strictly ordered anyway.
            moment = int(existing[0].created_at) + 1
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = generate_private_key(algorithm)
        kid = thumbprint(key.public_key())
        stamp = time.strftime(_STAMP, time.gmtime(moment))
        path = self.path / f"key-{stamp}-{kid[:8]}.pem"
        partial = path.with_name(f".{path.name}.partial")
        # O_EXCL: never overwrite a key; 0o600: a private key is readable by its owner only. The rename makes
        # the key appear whole, so a running gateway that reloads never reads half a file.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_key_pem(key))
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            partial.unlink()
            raise FileExistsError(f"{path} already exists")
        partial.rename(path)
        created = _parse_stamp(stamp)
        retired = [
            item.path
            for item in self.files()
            if item.path != path and (item.not_after is not None and moment > item.not_after)
        ]
        for old in retired:
            old.unlink(missing_ok=True)
        added = KeyFile(path, created, key, kid, algorithm, None)
        return RotationResult(added=added, retired=retired)


@dataclass(slots=True)
class DirectoryKeyRing(KeyRing):
    """A key ring that follows a :class:`KeyDirectory`: :meth:`reload` picks up a rotation in a running server.

    The ring object never changes (token codecs hold it); only its ``keys`` list is swapped.
    """

    directory: KeyDirectory | None = None
    clock: Clock = system_clock
    _fingerprint: tuple[tuple[str, int], ...] = field(default=())

    @classmethod
    def load(cls, directory: KeyDirectory, *, clock: Clock = system_clock) -> DirectoryKeyRing:
        ring = cls(directory=directory, clock=clock)
        ring.reload()
        return ring

    def reload(self) -> bool:
        """Re-read the directory if it changed; True when the keys were replaced. A broken file keeps the
        current keys (and is logged): a half-finished manual edit must not stop token signing."""
        if self.directory is None:
            return False
        fingerprint = self.directory.fingerprint()
        if fingerprint == self._fingerprint and self.keys:
            return False
        try:
            fresh = self.directory.keyring(self.clock())
        except ValueError as exc:
            if not self.keys:
                raise
            log.error("key directory %s not reloaded: %s", self.directory.path, exc)
            return False
        self.keys = fresh.keys
        self._fingerprint = fingerprint
        return True


def _parse_stamp(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, _STAMP)))
