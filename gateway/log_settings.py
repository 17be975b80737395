"""The ``[log]`` table: how the gateway writes its log (format, level, access log), parsed once.

Kept apart from :mod:`frontdesk.gateway.logs` (the formatters and uvicorn's logging config) so the configuration
loader imports no logging machinery.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from .validators import Problems, boolean, one_of

__all__ = ["FORMATS", "LEVELS", "LogSettings", "parse_log_settings"]

FORMATS = ("auto", "json", "text")
LEVELS = ("critical", "error", "warning", "info", "debug")


@dataclass(frozen=True, slots=True)
class LogSettings:
    # "auto": text on a terminal (someone is reading it), JSON otherwise (systemd, Docker and Kubernetes hand
    # the stream to a collector that wants one object per line).
    format: str = "auto"
    level: str = "info"
    access_log: bool = False  # one line per request; `frontdesk serve --access-log` turns it on too

    def resolved_format(self, stream: TextIO | None = None) -> str:
        """"json" or "text": "auto" decided by whether the log stream (stderr) is a terminal."""
        if self.format != "auto":
            return self.format
        stream = stream or sys.stderr
        return "text" if stream.isatty() else "json"


def parse_log_settings(table: Mapping[str, Any], problems: Problems) -> LogSettings:
    d = LogSettings()
    return LogSettings(
        format=problems.get(table, "log", "format", d.format, one_of(*FORMATS)),
        level=problems.get(table, "log", "level", d.level, one_of(*LEVELS)),
        access_log=problems.get(table, "log", "access_log", d.access_log, boolean),
    )
