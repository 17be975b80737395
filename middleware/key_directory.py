"""A directory of PEM private keys that rotates: publish a new key first, sign with it ``publish_ahead`` later,
verify older ones through an overlap.

Each file is named ``key-<UTC creation time>-<kid prefix>.pem``; the name carries the creation time so the
order survives copies and backups that reset file times. A new key is published (in the JWKS) as soon as a
running gateway sees it, but signs only from ``created + publish_ahead``: verifiers that fetched the JWKS just
before the rotation may refetch only so often, and must have had the chance to learn the key before the first
token signed with it reaches them. The oldest key in the directory signs from its creation (there is nothing
else to sign with). A key stops verifying ``overlap`` after its successor starts signing;
:meth:`KeyDirectory.rotate` adds a key and deletes keys past that point.
"""

from __future__ import annotations

import calendar
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
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
from .tokens import KeyRing, SigningKey

__all__ = ["KeyFile", "KeyDirectory", "RotationResult", "DirectoryKeyRing", "signing_index", "ring_at"]

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
    not_after: float | None  # end of verification: successor's signs_from + overlap; None for the newest key
    # created + publish_ahead; None: signs as soon as it is the newest key (publish_ahead 0, or the oldest key)
    signs_from: float | None


@dataclass(frozen=True, slots=True)
class RotationResult:
    added: KeyFile
    retired: list[Path]


class KeyDirectory:
    def __init__(self, path: Path, *, overlap: float, publish_ahead: float = 0.0) -> None:
        self.path = path
        self.overlap = overlap
        self.publish_ahead = publish_ahead

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
        successor_start: float | None = None  # when the next newer key starts signing
        for index, (created, _, path, key) in enumerate(found):
            signing = signing_key_from_private(key)
            not_after = None if successor_start is None else successor_start + self.overlap
            oldest = index == len(found) - 1
            signs_from = None if oldest or not self.publish_ahead else created + self.publish_ahead
            out.append(KeyFile(path, created, key, signing.kid, signing.algorithm, not_after, signs_from))
            successor_start = created if signs_from is None else signs_from
        return out

    def keyring(self, now: float) -> KeyRing:
        """The ring at ``now``: see :func:`ring_at`."""
        return ring_at(self.files(), now)

    def fingerprint(self) -> tuple[tuple[str, int], ...]:
        """Cheap change detection (names and modification times) for reloading a running server."""
        if not self.path.is_dir():
            return ()
        return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in self.path.glob("*.pem")))

    def rotate(self, algorithm: str, *, now: float | None = None) -> RotationResult:
        """Add a fresh key (published now, signing ``publish_ahead`` later) and delete the keys whose overlap
        has ended."""
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
        current = self.files()
        retired = [
            item.path
            for item in current
            if item.path != path and (item.not_after is not None and moment > item.not_after)
        ]
        for old in retired:
            old.unlink(missing_ok=True)
        added = next(item for item in current if item.path == path)
        return RotationResult(added=added, retired=retired)


def signing_index(files: Sequence[KeyFile], now: float) -> int:
    """Which of ``files`` (newest first) signs at ``now``: the newest whose ``signs_from`` has come (or that has
    none); the oldest if none has (a clock behind the file names), as it has been published longest."""
    for index, item in enumerate(files):
        if item.signs_from is None or item.signs_from <= now:
            return index
    return len(files) - 1


def ring_at(files: Sequence[KeyFile], now: float) -> KeyRing:
    """One key signs (:func:`signing_index`); every other key verifies until its window closes (retired ones
    are left out). Newer keys that do not sign yet are in the ring, so the JWKS publishes them ahead."""
    signer = signing_index(files, now)
    ring: list[SigningKey] = []
    for index, item in enumerate(files):
        if item.not_after is not None and now > item.not_after:
            continue
        ring.append(signing_key_from_private(item.key, not_after=item.not_after, can_sign=index == signer))
    return KeyRing(ring)


def _next_signer_change(files: Sequence[KeyFile], now: float) -> float | None:
    upcoming = [item.signs_from for item in files if item.signs_from is not None and item.signs_from > now]
    return min(upcoming) if upcoming else None


@dataclass(slots=True)
class DirectoryKeyRing(KeyRing):
    """A key ring that follows a :class:`KeyDirectory`: :meth:`reload` picks up a rotation in a running server,
    and :meth:`signing_key` switches to a published key once its ``signs_from`` has come (no file access).

    The ring object never changes (token codecs hold it); only its ``keys`` list is swapped.
    """

    directory: KeyDirectory | None = None
    clock: Clock = system_clock
    _fingerprint: tuple[tuple[str, int], ...] = field(default=())
    _files: list[KeyFile] = field(default_factory=list)
    _next_change: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)  # reload runs in a thread, signing on the loop

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
            files = self.directory.files()
        except ValueError as exc:
            if not self.keys:
                raise
            log.error("key directory %s not reloaded: %s", self.directory.path, exc)
            return False
        with self._lock:
            self._files = files
            self._rebuild(self.clock())
            self._fingerprint = fingerprint
        return True

    def signing_key(self) -> SigningKey:
        now = self.clock()
        if self._next_change is not None and now >= self._next_change:
            with self._lock:
                if self._next_change is not None and now >= self._next_change:
                    self._rebuild(now)
                    log.info("access tokens are now signed with the published key %s", KeyRing.signing_key(self).kid)
        return KeyRing.signing_key(self)  # (no super(): slots dataclasses break its zero-argument form)

    def _rebuild(self, now: float) -> None:
        self.keys = ring_at(self._files, now).keys
        self._next_change = _next_signer_change(self._files, now)


def _parse_stamp(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, _STAMP)))
