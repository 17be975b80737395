"""How ``frontdesk serve`` and ``frontdesk demo`` run uvicorn: the options both share, a handler for frontdesk's
own loggers, an HTTP protocol with the proxy's fast path, and a WebSocket protocol under which a refused upgrade
is not logged as an ERROR.

The fast path (``[server] fast_path``, on by default): :class:`FastHttp` is uvicorn's httptools protocol, except
that a plain request on a proxied route is answered by the proxy's request cycle as soon as its head is parsed,
writing bytes to the connection instead of passing ASGI messages through the app's layers (``proxy/fast.py``).
Everything else (``/auth/*``, health, static files, bad paths, upgrades) goes to the ASGI app unchanged.

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

Graceful shutdown (SIGTERM): uvicorn stops accepting, asks each connection to shut down, waits for the requests
in flight up to ``timeout_graceful_shutdown`` (``[server] shutdown_timeout``; uvicorn's default is to wait
forever, so one open event stream kept ``frontdesk serve`` running indefinitely), then runs the lifespan
shutdown (the store closes). The app hears of the stop only at that last step, too late to end the streams
that would hold it: so the protocols below call the gateway's ``begin_shutdown`` hook (left in the lifespan
state under :data:`BEGIN_SHUTDOWN`) as uvicorn asks the first connection to shut down, in every worker. The
gateway then ends its event streams cleanly and closes its WebSockets with 1001 Going Away itself, so the
WebSocket protocol skips uvicorn's own close (1012) for a socket that is open. Once stopped gracefully,
``frontdesk serve`` and ``frontdesk demo`` exit with status 0 (uvicorn re-raises the SIGTERM, which would kill
the process with it; :func:`exit_zero_after_sigterm` makes that a normal exit).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

import httptools
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .config import GatewayConfig
from .logs import log_config
from .proxy.fast import FastPath, ProtocolClient

__all__ = [
    "BEGIN_SHUTDOWN",
    "DenialCompletesHandshake",
    "DrainingHttp",
    "FastHttp",
    "exit_zero_after_sigterm",
    "uvicorn_options",
]

BEGIN_SHUTDOWN = "frontdesk.begin_shutdown"  # lifespan-state key of the gateway's "the server is stopping" hook


def _begin_shutdown(app_state: dict[str, Any]) -> bool:
    """Call the app's hook, if it left one; whether it did."""
    hook: Callable[[], None] | None = app_state.get(BEGIN_SHUTDOWN)
    if hook is None:
        return False
    try:
        hook()
    except Exception:  # inside uvicorn's shutdown: a failure here must not stop the rest of it
        logging.getLogger("frontdesk.gateway").exception("beginning the shutdown failed")
    return True


class DrainingHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, telling the app when the server starts to stop."""

    def shutdown(self) -> None:
        _begin_shutdown(self.app_state)
        super().shutdown()


class FastHttp(DrainingHttp):
    """``frontdesk serve``'s protocol: a plain request on a proxied route is answered on the fast path
    (``proxy/fast.py``) as soon as its head is parsed; every other request goes to the ASGI app as before.

    The app offers the fast path through its ``fast_path`` attribute (the gateway, with ``[server] fast_path``
    on, or a bare ``ProxyApp``). uvicorn wraps the app in middleware for some options (proxy headers, trace
    logging), which would be skipped: then there is no fast path.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fast = getattr(self.app, "fast_path", None)
        self._fast = fast if isinstance(fast, FastPath) else None
        self._idle_since: float | None = None  # when the last answer completed; None while a request is on
        self._idle_timer: asyncio.TimerHandle | None = None

    # -- keep-alive: one timer per connection ----------------------------------------------------------
    # uvicorn arms a keep-alive timer after every answer and cancels it when the next request's bytes come: a
    # timer handle made and torn down per request. Here one timer outlives the requests of a connection: when
    # it fires it closes the connection only if it has been idle for the whole timeout, else it waits out the
    # rest (the same rule: close after ``timeout_keep_alive`` seconds without a request).

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None  # bytes of a request: busy (a timer that fires now finds nothing to time)

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_since = None
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = now = self.loop.time()
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_at(now + self.timeout_keep_alive, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        since = self._idle_since
        if since is None or self.transport.is_closing():
            return  # busy: the answer re-arms it
        due = since + self.timeout_keep_alive
        if self.loop.time() >= due:
            self.timeout_keep_alive_handler()
        else:
            self._idle_timer = self.loop.call_at(due, self._idle_check)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def on_headers_complete(self) -> None:
        fast = self._fast
        if fast is None or self.root_path or self.parser.should_upgrade():
            super().on_headers_complete()
            return
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path
        path, route = fast.resolve(raw_path)
        limit = self.limit_concurrency
        if route is None or (limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit)):
            super().on_headers_complete()  # not ours, or the 503 of the concurrency limit: uvicorn's own way
            return
        # What uvicorn's on_headers_complete does, with the path already parsed and a fast cycle.
        parser = self.parser
        http_version = parser.get_http_version()
        scope = self.scope
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = parsed.query or b""
        existing = self.cycle
        self.cycle = ProtocolClient(  # positional: RequestResponseCycle's arguments in its order
            fast,
            route,
            scope,
            self.transport,
            self.flow,
            self.logger,
            self.access_logger,
            self.access_log,
            self.server_state.default_headers,
            asyncio.Event(),
            self.expect_100_continue,
            http_version != "1.0" and parser.should_keep_alive(),
            self.on_response_complete,
        )
        if existing is None or existing.response_complete:
            if not self.cycle.express(self):  # answered from callbacks when it can be, else in a task
                self._start_asgi_task(self.cycle, self.app)
        else:  # pipelined: queued behind the request being answered, as uvicorn queues its own
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, self.app))


class DenialCompletesHandshake(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol, except that a complete denial response ends the handshake."""

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True

    def shutdown(self) -> None:
        if _begin_shutdown(self.app_state) and self.handshake_complete and not self.close_sent:
            return  # the gateway closes its open sockets itself: with 1001, and the upstream's too
        super().shutdown()


def exit_zero_after_sigterm() -> None:
    """Make the SIGTERM that uvicorn re-raises after a graceful stop end the process with status 0, and one
    that arrives before uvicorn listens for it stop the process at once, also with 0. Main thread only."""
    signal.signal(signal.SIGTERM, _exit_zero)


def _exit_zero(sig: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


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
        "http": FastHttp if config.fast_path else DrainingHttp,
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
        # requests in flight may finish for this long after SIGTERM; then they are cut and the process exits
        "timeout_graceful_shutdown": config.shutdown_timeout,
    }
