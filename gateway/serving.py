"""How ``frontdesk serve`` and ``frontdesk demo`` run uvicorn: the options both share, a handler for frontdesk's
own loggers, and a WebSocket protocol under which a refused upgrade is not logged as an ERROR.

Logging: uvicorn configures only its own loggers, so without a config of ours every ``frontdesk.*`` INFO line
(key reloads, purges) was dropped by the root logger's WARNING default. ``logs.log_config`` gives every logger a
handler, in the ``[log] format`` (JSON or text), with request ids; the config travels to every spawned worker with
uvicorn's own (``Config.configure_logging`` runs in each process).

WebSockets: the gateway refuses an upgrade with a JSON body through ASGI's WebSocket denial response. uvicorn's
default implementation (websockets-sansio, 0.54) writes that response but never marks the handshake done, so
when the app returns it logs "ASGI callable returned without completing handshake." at ERROR, once per refused
attempt: log noise any unauthenticated client can generate, and a false alarm for anyone alerting on ERROR.
The subclass below marks the handshake done once the denial is on the wire, as uvicorn's wsproto
implementation already does (and as https://github.com/Kludex/uvicorn/pull/3138 proposes upstream); when
uvicorn fixes it, the override is a no-op.
"""

from __future__ import annotations

from typing import Any

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .config import GatewayConfig
from .logs import log_config

__all__ = ["DenialCompletesHandshake", "uvicorn_options"]


class DenialCompletesHandshake(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol, except that a complete denial response ends the handshake."""

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True


def uvicorn_options(
    config: GatewayConfig,
    *,
    log_level: str | None = None,
    frontdesk_log_level: str | None = None,
    access_log: bool | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` (besides the app, host, port and workers). The levels and the
    access log default to the ``[log]`` table; a command-line flag passes its value here and wins."""
    log_level = log_level or config.log.level
    json_lines = config.log.resolved_format() == "json"
    return {
        "http": "httptools",
        "loop": "uvloop",
        "ws": DenialCompletesHandshake,
        "proxy_headers": False,  # X-Forwarded-* are judged by frontdesk against server.trusted_proxies
        "server_header": False,
        "log_level": log_level,
        "log_config": log_config(frontdesk_log_level or log_level, json_lines=json_lines),
        "access_log": config.log.access_log if access_log is None else access_log,
        # uvicorn reads a whole WebSocket message before the proxy sees it (16 MiB by default): held to the
        # proxy's own limit, a socket cannot pin more than that per message (issue 8: 20 x 15 MiB grew 380 MB).
        "ws_max_size": config.proxy.max_websocket_message_size,
    }
