"""The proxy's own error leaves; each maps to a 4xx/5xx JSON answer through ``.status`` and ``.code``."""

from __future__ import annotations

from frontdesk.middleware.errors import FrontdeskError, WebSocketRefused

__all__ = [
    "BadPath",
    "BadFraming",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "HeadersTooLarge",
    "UpstreamError",
    "UpstreamUnavailable",
    "UpstreamTimeout",
    "UpstreamConnectTimeout",
    "UpstreamProtocolError",
    "UpstreamClosed",
    "BrowserGone",
    "WebSocketRefused",
    "SessionEnded",
    "ServerStopping",
]


class BadPath(FrontdeskError, status=400, code="bad_path"):
    """A path with dot segments, encoded slashes/backslashes or control bytes on a proxied route."""


class BadFraming(FrontdeskError, status=400, code="bad_request"):
    """Request framing that proxies could disagree about (CL+TE, duplicate lengths...): smuggling shapes."""


class MethodNotAllowed(FrontdeskError, status=405, code="method_not_allowed"):
    """A method the route does not take; ``allow`` goes out as the ``Allow`` header."""

    def __init__(self, detail: str, *, allow: str) -> None:
        self.allow = allow
        super().__init__(detail)


class PayloadTooLarge(FrontdeskError, status=413, code="payload_too_large"):
    """A request body over the route's ``max_body_size``."""


class HeadersTooLarge(FrontdeskError, status=431, code="headers_too_large"):
    """Request or response headers over the configured size."""


class UpstreamError(FrontdeskError, status=502, code="bad_gateway"):
    """Anything that went wrong talking to an upstream."""


class UpstreamUnavailable(UpstreamError, code="upstream_unavailable"):
    """Connection refused, unreachable host, DNS failure."""


class UpstreamTimeout(UpstreamError, status=504, code="upstream_timeout"):
    """No answer within the route timeout (nginx answers 504 here too)."""


class UpstreamConnectTimeout(UpstreamTimeout):
    """No connection (or TLS handshake) within ``proxy.connect_timeout``: a connect failure, answered as a timeout."""


class UpstreamProtocolError(UpstreamError):
    """The upstream sent something that is not a valid HTTP/1.1 response."""


class UpstreamClosed(UpstreamError, code="upstream_closed"):
    """The upstream closed or reset the connection before the response was complete."""


class BrowserGone(UpstreamClosed, code="client_closed"):
    """The browser left mid-response; the upstream exchange is abandoned (not an upstream fault)."""


class SessionEnded(UpstreamClosed, status=401, code="session_ended"):
    """The session behind a streamed response ended (logout, password change, revocation): the stream is cut."""


class ServerStopping(UpstreamClosed, status=503, code="server_stopping"):
    """The gateway is shutting down: an event stream, which never ends on its own, is ended (cleanly)."""
