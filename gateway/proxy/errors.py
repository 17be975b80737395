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
    "UpstreamProtocolError",
    "UpstreamClosed",
    "BrowserGone",
    "WebSocketRefused",
    "SessionEnded",
    "ServerStopping",
]


class BadPath(FrontdeskError):
    """A path with dot segments, encoded slashes/backslashes or control bytes on a proxied route."""

    status = 400
    code = "bad_path"


class BadFraming(FrontdeskError):
    """Request framing that proxies could disagree about (CL+TE, duplicate lengths...): smuggling shapes."""

    status = 400
    code = "bad_request"


class MethodNotAllowed(FrontdeskError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, detail: str, *, allow: str) -> None:
        self.allow = allow
        super().__init__(detail)


class PayloadTooLarge(FrontdeskError):
    status = 413
    code = "payload_too_large"


class HeadersTooLarge(FrontdeskError):
    status = 431
    code = "headers_too_large"


class UpstreamError(FrontdeskError):
    """Anything that went wrong talking to an upstream."""

    status = 502
    code = "bad_gateway"


class UpstreamUnavailable(UpstreamError):
    """Connection refused, unreachable host, DNS failure."""

    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    """No answer within the route timeout (nginx answers 504 here too)."""

    status = 504
    code = "upstream_timeout"


class UpstreamProtocolError(UpstreamError):
    """The upstream sent something that is not a valid HTTP/1.1 response."""


class UpstreamClosed(UpstreamError):
    """The upstream closed or reset the connection before the response was complete."""

    code = "upstream_closed"


class BrowserGone(UpstreamClosed):
    """The browser left mid-response; the upstream exchange is abandoned (not an upstream fault)."""

    code = "client_closed"


class SessionEnded(UpstreamClosed):
    """The session behind a streamed response ended (logout, password change, revocation): the stream is cut."""

    status = 401
    code = "session_ended"


class ServerStopping(UpstreamClosed):
    """The gateway is shutting down: an event stream, which never ends on its own, is ended (cleanly)."""

    status = 503
    code = "server_stopping"
