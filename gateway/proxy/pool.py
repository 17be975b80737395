"""The keep-alive pool: idle upstream connections per upstream, opened with a connect timeout (and TLS).

Most recently used first: the connection idle the shortest is the least likely to be closed by the
upstream under our feet. Idle connections older than ``keepalive_timeout`` are closed instead of reused.
"""

from __future__ import annotations

import asyncio
import ssl
import time

from .errors import UpstreamConnectTimeout, UpstreamUnavailable
from .routes import Upstream
from .settings import ProxySettings
from .upstream import UpstreamConnection

__all__ = ["UpstreamPool"]


class UpstreamPool:
    """Idle keep-alive connections per upstream, most recently used first (the least likely to be stale)."""

    def __init__(self, settings: ProxySettings) -> None:
        self._settings = settings
        self._idle: dict[tuple[str, str, int], list[UpstreamConnection]] = {}
        self._open: set[UpstreamConnection] = set()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            cafile = self._settings.tls_ca_file or None
            self._ssl = ssl.create_default_context(cafile=cafile)
        return self._ssl

    def take_idle(self, upstream: Upstream) -> UpstreamConnection | None:
        """A pooled connection that is still fresh, or None (then ``connect``)."""
        idle = self._idle.get(upstream.key)
        if idle:
            now = time.monotonic()
            limit = self._settings.keepalive_timeout
            while idle:
                conn = idle.pop()
                if conn.closed:
                    continue
                if now - conn.idle_since > limit:
                    conn.close()
                    continue
                return conn
        return None

    async def connect(self, upstream: Upstream) -> UpstreamConnection:
        if self._closed:
            raise UpstreamUnavailable("the gateway is shutting down")
        loop = asyncio.get_running_loop()
        tls = upstream.scheme == "https"
        settings = self._settings

        def factory() -> UpstreamConnection:
            return UpstreamConnection(
                upstream.key,
                read_timeout=settings.read_timeout,
                max_head=settings.max_response_header_size,
                on_close=self.forget,
            )

        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    factory,
                    upstream.host,
                    upstream.port,
                    ssl=self.ssl_context() if tls else None,
                    server_hostname=upstream.host if tls else None,
                ),
                self._settings.connect_timeout,
            )
        except TimeoutError:
            raise UpstreamConnectTimeout(
                f"could not connect to the upstream within {self._settings.connect_timeout:g} s"
            ) from None
        except ssl.SSLError as exc:
            raise UpstreamUnavailable(f"TLS with the upstream failed ({exc.reason or exc})") from None
        except ssl.CertificateError:
            raise UpstreamUnavailable("the upstream's TLS certificate was refused") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise UpstreamUnavailable(f"could not connect to the upstream ({reason})") from None
        self._open.add(conn)
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """Back to the pool if the exchange ended cleanly and the socket may be reused; else closed."""
        if conn.reusable and not conn.closed and not self._closed:
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < self._settings.pool_size:
                conn.park()
                idle.append(conn)
                return
        conn.close()

    def forget(self, conn: UpstreamConnection) -> None:
        self._open.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def aclose(self) -> None:
        """Close every idle connection now; busy ones close when their exchange ends."""
        self._closed = True
        for idle in list(self._idle.values()):
            for conn in list(idle):
                conn.close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports run connection_lost
