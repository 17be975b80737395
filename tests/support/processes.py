"""A server in a subprocess: started in a process group of its own with its output in a log file, waited for
until it answers, stopped with SIGTERM (then SIGKILL), and its whole group reaped so no uvicorn worker keeps
the port or a database file. Every failure message carries the log."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from .waiting import WAIT_TIMEOUT, answers, wait_until

__all__ = ["STOP_TIMEOUT", "ServerProcess", "group_members"]

T = TypeVar("T")

STOP_TIMEOUT = 15.0


@dataclass
class ServerProcess:
    """``args`` run in ``cwd`` with ``env`` (this process's environment when None), output to ``log_path``."""

    args: Sequence[str]
    log_path: Path
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    name: str = "server"
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ServerProcess:
        assert not self.running, f"{self.name} is already running"
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                list(self.args),
                cwd=self.cwd,
                env=None if self.env is None else dict(self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() reaches the workers it spawns
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_until(self, condition: Callable[[], T], *, timeout: float = WAIT_TIMEOUT, what: str = "") -> T:
        """:func:`~tests.support.waiting.wait_until`, failing at once (with the log) if the process exits."""
        assert self.proc is not None, f"{self.name} was never started"
        proc = self.proc

        def alive_and_ready() -> T:
            if proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {proc.returncode}:\n{self.log()}")
            return condition()

        try:
            return wait_until(alive_and_ready, timeout=timeout, what=what or self.name)
        except pytest.fail.Exception as failed:
            if self.running:
                self.kill()
                pytest.fail(f"{failed}\n--- {self.name} log ---\n{self.log()}")
            raise

    def wait_answers(self, url: str, *, status: int | None = None, timeout: float = WAIT_TIMEOUT) -> None:
        """Until ``url`` answers (with ``status``, or anything)."""
        self.wait_until(lambda: answers(url, status), timeout=timeout, what=f"{self.name} to answer {url}")

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM to the whole group), escalating to SIGKILL if it hangs."""
        if not self.running:
            return
        assert self.proc is not None
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)
        self._reap_group()

    def kill(self) -> None:
        """``kill -9`` of the whole group: no shutdown hooks, no flush, nothing."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)
        self._reap_group()

    def _reap_group(self) -> None:
        # The group's other members (uvicorn workers) die with it; wait until none holds the port any more.
        assert self.proc is not None
        pgid = self.proc.pid
        wait_until(lambda: not group_members(pgid), timeout=STOP_TIMEOUT, what=f"{self.name}'s processes to exit")

    def __enter__(self) -> ServerProcess:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid`` (Linux ``/proc``)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry))
    return members
