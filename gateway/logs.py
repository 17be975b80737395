"""The gateway's log: JSON (one object per line) or text, every logger, each line with its request id.

``log_config`` builds the ``logging.config.dictConfig`` dict that uvicorn applies in every process it starts
(``Config.configure_logging`` runs in each worker), so workers log exactly like a single process.

What goes where:

- ``frontdesk.*`` at ``[log] level``; uvicorn's server and access loggers at the level uvicorn is given.
- Everything else (the root logger: aiosqlite, asyncio, websockets, httpx, ...) at WARNING whatever the level:
  their DEBUG output is noise at best and a leak at worst (aiosqlite prints every statement with its
  parameters, websockets prints frames). ``frontdesk serve --log-level debug`` therefore means frontdesk's and
  uvicorn's debug lines, nothing more.
- uvicorn's access line (``--access-log`` or ``[log] access_log``) and its WebSocket lines never carry a query
  string: one may hold a token, a code or a password (``?token=``, an OAuth ``code``, a reset link), and logs
  are kept long and read widely. The path is kept and ``?...`` marks that a query was there.
- The websockets library's DEBUG lines (every handshake header, the refresh cookie included, and every frame)
  are dropped even at ``--log-level debug``.

A JSON line: ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``, ``request_id``
when the line was written while handling a request, ``exc`` (the traceback) when there is one, the access
line's ``client``/``method``/``path``/``status``, and the audit trail's ``audit`` object.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from .request_ids import current_request_id

__all__ = ["JsonFormatter", "QueryStringFilter", "RequestIdFilter", "TEXT_FORMAT", "WireDebugFilter", "log_config"]

TEXT_FORMAT = "%(levelprefix)s %(name)s: %(message)s%(request_tag)s"  # "INFO:     frontdesk.keys: ... [rid]"
_ACCESS_TEXT_FORMAT = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s%(request_tag)s'
_THIRD_PARTY_LEVEL = "WARNING"


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (``request_id``, and `` [id]`` as ``request_tag`` for text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = current_request_id()
        record.request_id = rid
        record.request_tag = f" [{rid}]" if rid else ""
        return True


class QueryStringFilter(logging.Filter):
    """Cuts the query string out of uvicorn's request lines: the access line (args: client, method, path, HTTP
    version, status) and the WebSocket lines of ``uvicorn.error`` (``'%s - "WebSocket %s" ...'``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple):
            return True
        if len(args) == 5 and record.name == "uvicorn.access":
            index = 2
        elif len(args) >= 2 and isinstance(record.msg, str) and '"WebSocket %s"' in record.msg:
            index = 1
        else:
            return True
        path = args[index]
        if isinstance(path, str) and "?" in path:
            record.args = (*args[:index], path.split("?", 1)[0] + "?...", *args[index + 1 :])
        return True


_WEBSOCKETS_PACKAGE = f"{os.sep}websockets{os.sep}"


class WireDebugFilter(logging.Filter):
    """Drops the websockets library's DEBUG lines. uvicorn hands it its own ``uvicorn.error`` logger, and at DEBUG
    it writes every handshake header (the ``Cookie`` with the refresh token among them) and every frame's data."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.DEBUG and _WEBSOCKETS_PACKAGE in record.pathname)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso_millis(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            line["request_id"] = rid
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            line.update(client=client, method=method, path=path, http_version=version, status=status)
        audit = getattr(record, "audit", None)
        if isinstance(audit, dict):
            line["audit"] = audit
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def _iso_millis(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


def log_config(frontdesk_level: str, *, json_lines: bool = False) -> dict[str, Any]:
    """uvicorn's logging config, with the ``frontdesk`` logger at ``frontdesk_level`` ("info", ...), a root
    handler at WARNING, request ids on every line, query strings out of the access line, and every formatter
    JSON when ``json_lines``."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {
        "request_id": {"()": RequestIdFilter},
        "no_query": {"()": QueryStringFilter},
        "no_wire": {"()": WireDebugFilter},
    }
    every = ["request_id", "no_query", "no_wire"]
    if json_lines:
        for name in ("default", "access", "frontdesk"):
            config["formatters"][name] = {"()": JsonFormatter}
    else:
        config["formatters"]["default"]["fmt"] = TEXT_FORMAT.replace(" %(name)s:", "")
        config["formatters"]["access"]["fmt"] = _ACCESS_TEXT_FORMAT
        config["formatters"]["frontdesk"] = {
            "()": "uvicorn.logging.DefaultFormatter",
            "fmt": TEXT_FORMAT,
            "use_colors": None,
        }
    config["handlers"]["default"]["filters"] = every
    config["handlers"]["access"]["filters"] = every
    config["handlers"]["frontdesk"] = {
        "formatter": "frontdesk",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "filters": every,
    }
    config["loggers"]["frontdesk"] = {"handlers": ["frontdesk"], "level": frontdesk_level.upper(), "propagate": False}
    config["root"] = {"handlers": ["frontdesk"], "level": _THIRD_PARTY_LEVEL}
    return config
