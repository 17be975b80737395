"""The SPA's files, served with strict security headers.

Unknown paths without a file extension get ``index.html`` so client-side routes survive a reload; a
missing asset (``/app.js.map``) stays a 404. Nothing whose path has a segment starting with ``.`` is ever
served (``/.env``, ``/.git/config``, ``/ui/.secret``): it answers the very 404 a missing file does, so a
probe learns nothing. A directory without its trailing slash is redirected with a relative ``Location``
built from the request path, never from the client's ``Host``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from middleware.asgi_io import Message, Receive, Scope, Send, send_response
from middleware.http import HttpResponse, error_body

from .security_headers import FRAME_DENY, NOSNIFF

__all__ = ["SecureStaticFiles", "SECURITY_HEADERS"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# The SPA's own, stricter than what the gateway adds to every response (security_headers): its full CSP
# (frame-ancestors included) and no-referrer. Those present are left alone by that layer.
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    NOSNIFF,
    (b"referrer-policy", b"no-referrer"),
    FRAME_DENY,
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecureStaticFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files = StaticFiles(directory=directory, html=True, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # No route took this upgrade: refuse it properly instead of returning without a handshake.
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await send_response(send, error_body(405, "method_not_allowed", "static files are read-only"))
            return
        path = scope["path"]
        # ".." and "." are dot segments too: one rule keeps both traversal and hidden files out.
        if not self.directory.is_dir() or any(part.startswith(".") for part in path.split("/")):
            await send_response(send, _not_found())
            return
        if "." not in path.rsplit("/", 1)[-1] and not self._exists(path):
            scope = dict(scope, path="/")

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k not in names]
                message = {**message, "headers": headers + SECURITY_HEADERS}
                if scope["path"] in ("/", "/index.html"):
                    # The shell must always be revalidated so a deploy is picked up at once.
                    message["headers"].append((b"cache-control", b"no-cache"))
                if 300 <= message["status"] < 400:
                    # Starlette's directory redirect names the client's Host (and http://): use a path instead.
                    message["headers"] = [(k, v) for k, v in message["headers"] if k != b"location"]
                    message["headers"].append((b"location", _directory_location(scope)))
            await send(message)

        try:
            await self._files(scope, receive, send_secure)
        except HTTPException as exc:  # Starlette raises its 404/405 outside an app that would catch them
            if exc.status_code == 404:
                await send_response(send, _not_found())  # the same bytes as a refused dotfile
                return
            code = {405: "method_not_allowed"}.get(exc.status_code, "bad_request")
            await send_response(send, error_body(exc.status_code, code, str(exc.detail)))

    def _exists(self, path: str) -> bool:
        try:
            return (self.directory / path.lstrip("/")).exists()
        except OSError:  # a name too long for the filesystem is simply not there
            return False


def _not_found() -> HttpResponse:
    return error_body(404, "not_found", "no such file")


def _directory_location(scope: Scope) -> bytes:
    """``/dir/`` (plus the query) for a request of ``/dir``; one leading slash, so never ``//host/``."""
    location = "/" + quote(scope["path"].lstrip("/"), safe="/:@!$&'()*+,;=-._~") + "/"
    query = scope.get("query_string", b"")
    if query:
        location += "?" + quote(query.decode("latin-1"), safe="/?:@!$&'()*+,;=-._~%")
    return location.encode("ascii")
