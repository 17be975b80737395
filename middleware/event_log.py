"""The log's sink on the events: every event, mints and rotations included, as a DEBUG line of
``frontdesk.events`` (the audit trail logs its security events at INFO on its own, see ``audit.py``).

Off unless that logger is enabled for DEBUG, which costs one cached level check per event.
"""

from __future__ import annotations

import dataclasses
import logging

from .events import Event

__all__ = ["EventLog"]

log = logging.getLogger("frontdesk.events")


class EventLog:
    def emit(self, event: Event) -> None:
        if log.isEnabledFor(logging.DEBUG):
            fields = {k: v for k, v in dataclasses.asdict(event).items() if v is not None and k not in ("kind", "at")}
            log.debug("%s %s", event.kind, " ".join(f"{k}={v!r}" for k, v in fields.items()))
